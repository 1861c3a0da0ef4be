// Everything a transfer can send (a file under the root, a buffer or a stream from the resolve
// hook) as one shape: an optional size and a pull-based sequence of chunks, plus close().

import type { promises as fsp } from 'node:fs';
import { TftpSourceError } from './errors.ts';

export interface ByteSource {
  /** Bytes the transfer will carry, when known in advance (reported as tsize). */
  size: number | undefined;
  /**
   * Next chunk; `undefined` at the end. Never called again after it returns undefined, and never while a
   * read is pending. A chunk is only valid until the next read(): a source may reuse its memory.
   * `max`: the most bytes the caller wants now; a file reads no more, other sources may ignore it.
   */
  read(max?: number): Promise<Buffer | undefined>;
  /** Releases the file or stream. Safe to call more than once and before any read. */
  close(): Promise<void>;
}

const FILE_CHUNK = 128 * 1024;

/** Exactly `size` bytes, the size the client was told (tsize): a file that shrinks mid-transfer is an error, one that grows is cut. */
export function fileSource(handle: fsp.FileHandle, size: number): ByteSource {
  let closed: Promise<void> | undefined;
  let position = 0;
  // One buffer, reused: the reader copies each chunk into packets before it reads again. It grows to
  // what is asked for, so a transfer the client never acknowledges costs a block, not FILE_CHUNK.
  let buf: Buffer | undefined;
  return {
    size,
    async read(max = FILE_CHUNK) {
      if (position === size) return undefined;
      const want = Math.max(1, Math.min(max, FILE_CHUNK, size - position));
      if (!buf || buf.length < want) buf = Buffer.allocUnsafeSlow(want);
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buf, 0, want, position));
      } catch (err) {
        throw new TftpSourceError(`reading file failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (bytesRead === 0) throw new TftpSourceError('reading file failed: the file is shorter than when the transfer started');
      position += bytesRead;
      return buf.subarray(0, bytesRead);
    },
    close() {
      closed ??= handle.close().catch(() => undefined);
      return closed;
    },
  };
}

export function bufferSource(data: Buffer): ByteSource {
  let sent = false;
  return {
    size: data.length,
    read: async () => {
      if (sent) return undefined;
      sent = true;
      return data;
    },
    close: async () => undefined,
  };
}

export function streamSource(stream: NodeJS.ReadableStream, size: number | undefined): ByteSource {
  // Listen for errors at once: the async iterator only subscribes on its first next(), and an
  // unhandled 'error' event before that would take the whole process down.
  let failure: unknown;
  const onError = (err: unknown): void => {
    failure ??= err;
  };
  stream.on('error', onError);
  const chunks = stream[Symbol.asyncIterator]();
  let closed = false;
  return {
    size,
    async read() {
      try {
        if (failure !== undefined) throw failure;
        const next = await chunks.next();
        if (next.done) return undefined;
        return typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
      } catch (err) {
        throw new TftpSourceError(`source stream failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      // NodeJS.ReadableStream does not declare destroy(), but every real Readable has it.
      const destroyable = stream as NodeJS.ReadableStream & { destroy?: () => void };
      if (typeof destroyable.destroy === 'function') destroyable.destroy();
      else await chunks.return?.();
    },
  };
}

/**
 * RFC 764 netascii as tftpd-hpa sends it: LF becomes CR LF and a bare CR becomes CR NUL. The
 * converted size is unknown in advance, so no tsize is offered for netascii transfers.
 */
export function netasciiSource(inner: ByteSource): ByteSource {
  return {
    size: undefined,
    async read(max) {
      const chunk = await inner.read(max);
      if (chunk === undefined) return undefined;
      const out = Buffer.allocUnsafe(chunk.length * 2);
      let n = 0;
      for (const byte of chunk) {
        if (byte === 0x0a) { out[n++] = 0x0d; out[n++] = 0x0a; }
        else if (byte === 0x0d) { out[n++] = 0x0d; out[n++] = 0x00; }
        else out[n++] = byte;
      }
      return out.subarray(0, n);
    },
    close: () => inner.close(),
  };
}
