import type { IncomingMessage } from 'node:http';

export class WebhookBodyTooLargeError extends Error {
  override readonly name = 'WebhookBodyTooLargeError';
  constructor(readonly limit: number) {
    super(`webhook body larger than ${limit} bytes`);
  }
}

/** The raw request body, stopping as soon as it passes `limit` bytes (declared or actual). */
export async function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new WebhookBodyTooLargeError(limit);
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new WebhookBodyTooLargeError(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
