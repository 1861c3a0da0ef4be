import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-forseti-signature';

/** `sha256=<hex HMAC-SHA256 of the body>`, the value of X-Forseti-Signature. */
export function signBody(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** For receivers (and tests): constant-time check of X-Forseti-Signature against the raw body. */
export function verifyBody(secret: string, body: string | Buffer, header: string | undefined): boolean {
  if (!header) return false;
  const a = createHash('sha256').update(signBody(secret, body)).digest();
  const b = createHash('sha256').update(header).digest();
  return timingSafeEqual(a, b);
}
