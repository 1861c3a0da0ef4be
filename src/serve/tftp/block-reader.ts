// Cuts a ByteSource into DATA payloads of exactly `blockSize` bytes; the first shorter payload
// (possibly empty) is the last block of the transfer.

import type { ByteSource } from './byte-source.ts';

export class BlockReader {
  readonly #source: ByteSource;
  readonly #blockSize: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #ended = false;

  constructor(source: ByteSource, blockSize: number) {
    this.#source = source;
    this.#blockSize = blockSize;
  }

  async next(): Promise<Buffer> {
    while (this.#pendingBytes < this.#blockSize && !this.#ended) {
      const chunk = await this.#source.read();
      if (chunk === undefined) this.#ended = true;
      else if (chunk.length > 0) {
        this.#pending.push(chunk);
        this.#pendingBytes += chunk.length;
      }
    }
    return this.#take(Math.min(this.#blockSize, this.#pendingBytes));
  }

  /** The next block if it is already buffered (never the last, short one); otherwise undefined, and next() must be awaited. */
  nextBuffered(): Buffer | undefined {
    return this.#pendingBytes >= this.#blockSize && this.#blockSize > 0 ? this.#take(this.#blockSize) : undefined;
  }

  close(): Promise<void> {
    this.#pending = [];
    this.#pendingBytes = 0;
    return this.#source.close();
  }

  /** Takes n bytes off the front, slicing (not copying) when the first chunk holds them all. */
  #take(n: number): Buffer {
    this.#pendingBytes -= n;
    const first = this.#pending[0];
    if (first === undefined || n === 0) return Buffer.alloc(0);
    if (first.length >= n) {
      if (first.length === n) this.#pending.shift();
      else this.#pending[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#pending[0];
      if (chunk === undefined) break;
      const used = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.#pending.shift();
      else this.#pending[0] = chunk.subarray(used);
    }
    return out;
  }
}
