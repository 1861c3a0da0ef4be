import type { Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { ifRangeHolds, noneMatchHits, notModifiedSince, validatorsOf } from './conditional.ts';
import { parseRange } from './range.ts';

/**
 * Read size per chunk. Larger chunks mean fewer read and write system calls per byte; the bytes a
 * slow client can make the server hold stay bounded by about two chunks (read-ahead plus the
 * response's buffer), because `pipeline` stops reading while the socket is full.
 */
export const CHUNK_BYTES = 1024 * 1024;

export interface OpenFile {
  handle: FileHandle;
  info: Stats;
}

export interface SendOutcome {
  status: number;
  /** Body bytes read from the file and handed to the socket. */
  bytes: number;
  /** False when the client went away (or the read failed) before the body was complete. */
  complete: boolean;
}

/**
 * Answers GET or HEAD with an opened regular file: Content-Length, ETag and Last-Modified, one byte
 * Range (including suffix and open ranges; 416 when unsatisfiable), If-Range, If-None-Match and
 * If-Modified-Since. Owns `file.handle` and closes it on every path, including a client that
 * disconnects mid-body.
 */
export async function sendOpenFile(req: IncomingMessage, res: ServerResponse, file: OpenFile, contentType = 'application/octet-stream'): Promise<SendOutcome> {
  const { handle, info } = file;
  let streaming = false;
  try {
    const size = info.size;
    const v = validatorsOf(info);
    res.setHeader('ETag', v.etag);
    res.setHeader('Last-Modified', v.lastModified);
    res.setHeader('Accept-Ranges', 'bytes');
    const notModified = req.headers['if-none-match'] !== undefined ? noneMatchHits(req.headers['if-none-match'], v.etag) : notModifiedSince(req.headers['if-modified-since'], info);
    if (notModified) {
      res.writeHead(304).end();
      return { status: 304, bytes: 0, complete: true };
    }
    res.setHeader('Content-Type', contentType);
    const range = ifRangeHolds(single(req.headers['if-range']), v) ? parseRange(req.headers.range, size) : null;
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'Content-Range': `bytes */${size}`, 'Content-Length': '0' }).end();
      return { status: 416, bytes: 0, complete: true };
    }
    const start = range?.start ?? 0;
    const length = range ? range.end - range.start + 1 : size;
    if (range) res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
    res.writeHead(range ? 206 : 200, { 'Content-Length': String(length) });
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return { status: res.statusCode, bytes: 0, complete: true };
    }
    streaming = true;
    // The stream owns the handle from here on and closes it when it ends or is destroyed.
    const body = handle.createReadStream({ start, end: start + length - 1, highWaterMark: CHUNK_BYTES, autoClose: true });
    const complete = await pipeline(body, res).then(() => true, () => false);
    return { status: res.statusCode, bytes: body.bytesRead, complete };
  } finally {
    if (!streaming) await handle.close().catch(() => undefined);
  }
}

/**
 * Serves the file at `path` (see sendOpenFile); false when it is not a readable regular file, and
 * nothing has been sent then.
 */
export async function sendFile(req: IncomingMessage, res: ServerResponse, path: string, contentType = 'application/octet-stream'): Promise<boolean> {
  const handle = await open(path, 'r').catch(() => null);
  if (!handle) return false;
  const info = await handle.stat().catch(() => null);
  if (!info?.isFile()) {
    await handle.close().catch(() => undefined);
    return false;
  }
  await sendOpenFile(req, res, { handle, info }, contentType);
  return true;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function sendText(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
}

export async function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
