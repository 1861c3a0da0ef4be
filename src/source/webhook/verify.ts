import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Hex HMAC-SHA256 of the raw body, as GitHub, Gitea and forseti's own alerts compute it. */
export function hmacSha256Hex(secret: string, body: Buffer | string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/**
 * Constant-time equality of two strings of any length: both sides are hashed first, so neither the content nor
 * the length of the expected value leaks through timing.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

/** `sha256=<hex>` (GitHub's X-Hub-Signature-256) against the body. */
export function verifyPrefixedSignature(secret: string, body: Buffer, header: string | undefined): boolean {
  if (!header?.startsWith('sha256=')) return false;
  return verifyHexSignature(secret, body, header.slice('sha256='.length));
}

/** Bare hex HMAC-SHA256 (Gitea's X-Gitea-Signature) against the body. */
export function verifyHexSignature(secret: string, body: Buffer, hex: string | undefined): boolean {
  if (!hex || !/^[0-9a-fA-F]{64}$/.test(hex)) return false;
  return constantTimeEqual(hmacSha256Hex(secret, body), hex.toLowerCase());
}
