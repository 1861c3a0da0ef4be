import { read } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { closeQuietly, openRegularFile, type OpenFile } from './open-regular.ts';
import { ifRangeHolds, noneMatchHits, notModifiedSince, validatorsOf } from './conditional.ts';
import { sendfileBody, sendfileSocket } from './native-sendfile.ts';
import { parseRange } from './range.ts';

/**
 * Read size per chunk. Larger chunks mean fewer read and write system calls per byte; the bytes a
 * slow client can make the server hold stay bounded by two chunks (one being written, one read
 * ahead), because the next chunk is only handed to the socket once the previous one has drained.
 */
export const CHUNK_BYTES = 1024 * 1024;

/**
 * Full-size chunk buffers given back by finished writes, owned by one server. Reusing them spares a fresh 1 MiB
 * allocation per chunk, which glibc serves with mmap: 256 page faults and an munmap each. On this path (TLS, or no
 * sendfile addon) every byte is copied once into user space and once into the socket.
 */
export class ChunkPool {
  readonly #spare: Buffer[] = [];
  constructor(private readonly max = 4) {}

  take(size: number): Buffer {
    if (size === CHUNK_BYTES) return this.#spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
    return Buffer.allocUnsafeSlow(size);
  }

  giveBack(buf: Buffer): void {
    if (buf.length === CHUNK_BYTES && this.#spare.length < this.max) this.#spare.push(buf);
  }
}

export interface SendOptions {
  /** Body by sendfile(2) where the socket allows it (native-sendfile.ts). Default true. */
  sendfile?: boolean;
  /** The server's spare read buffers; without it each chunk is a fresh allocation. */
  chunks?: ChunkPool;
}

export interface SendOutcome {
  status: number;
  /** Body bytes read from the file and handed to the socket. */
  bytes: number;
  /** False when the client went away (or the read failed) before the body was complete. */
  complete: boolean;
  /** The body went by sendfile(2) rather than through the read-and-write path. */
  sendfile?: boolean;
}

/**
 * Answers GET or HEAD with an opened regular file: Content-Length, ETag and Last-Modified, one byte
 * Range (including suffix and open ranges; 416 when unsatisfiable), If-Range, If-None-Match and
 * If-Modified-Since. Owns `file.fd` and closes it on every path, including a client that
 * disconnects mid-body.
 */
export async function sendOpenFile(req: IncomingMessage, res: ServerResponse, file: OpenFile, contentType = 'application/octet-stream', options: SendOptions = {}): Promise<SendOutcome> {
  const { fd, info } = file;
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
    const socketFd = options.sendfile === false ? undefined : sendfileSocket(res);
    const { bytes, complete } = socketFd !== undefined ? await sendfileBody(res, socketFd, fd, start, length) : await streamBody(fd, res, start, length, options.chunks ?? new ChunkPool(0));
    return { status: res.statusCode, bytes, complete, sendfile: socketFd !== undefined };
  } finally {
    closeQuietly(fd);
  }
}

interface Chunk {
  buf: Buffer;
  bytesRead: number;
  error?: unknown;
}

/** A positional read that never rejects (an abandoned read-ahead must not become an unhandled rejection). */
function readChunk(fd: number, position: number, size: number, pool: ChunkPool): Promise<Chunk> {
  const buf = pool.take(size);
  return new Promise((resolve) => {
    read(fd, buf, 0, size, position, (error, bytesRead) => resolve(error ? { buf, bytesRead: 0, error } : { buf, bytesRead }));
  });
}

/**
 * Writes bytes [start, start + length) of the file to the response, reading the next chunk while the
 * previous one drains. Ends the response when all is sent; destroys it when the file ends early or a
 * read fails (the status line is gone by then, so a cut connection is the only honest signal).
 */
async function streamBody(fd: number, res: ServerResponse, start: number, length: number, pool: ChunkPool): Promise<{ bytes: number; complete: boolean }> {
  const end = start + length;
  let position = start;
  let bytes = 0;
  let closed = false;
  const onClose = (): void => {
    closed = true;
  };
  res.once('close', onClose);
  let next: Promise<Chunk> | undefined = readChunk(fd, position, Math.min(CHUNK_BYTES, end - position), pool);
  try {
    while (next) {
      const chunk: Chunk = await next;
      next = undefined;
      if (closed || res.destroyed || chunk.error !== undefined || chunk.bytesRead === 0) {
        pool.giveBack(chunk.buf);
        // The file shrank or could not be read: the client must not take a short body for the whole.
        if (!closed) res.destroy();
        break;
      }
      position += chunk.bytesRead;
      if (position < end) next = readChunk(fd, position, Math.min(CHUNK_BYTES, end - position), pool);
      const data = chunk.bytesRead === chunk.buf.length ? chunk.buf : chunk.buf.subarray(0, chunk.bytesRead);
      bytes += chunk.bytesRead;
      const drained = res.write(data, (err) => {
        if (!err) pool.giveBack(chunk.buf);
      });
      if (!drained && position < end) await drainOrClose(res);
    }
    if (closed || res.destroyed || position < end) return { bytes, complete: false };
    const finished = new Promise<void>((resolve) => {
      res.once('finish', resolve);
      res.once('close', resolve);
    });
    res.end();
    await finished;
    return { bytes, complete: res.writableFinished };
  } finally {
    res.off('close', onClose);
  }
}

function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Serves the file at `path` (see sendOpenFile); false when it is not a readable regular file, and
 * nothing has been sent then. Symlinks are followed (Debian's ipxe.efi points into /boot); a FIFO or a
 * device is refused without being opened (openRegularFile).
 */
export async function sendFile(req: IncomingMessage, res: ServerResponse, path: string, contentType = 'application/octet-stream', options: SendOptions = {}): Promise<boolean> {
  let file: OpenFile | null;
  try {
    file = openRegularFile(path, { followSymlinks: true });
  } catch {
    file = null;
  }
  if (!file) return false;
  await sendOpenFile(req, res, file, contentType, options);
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
