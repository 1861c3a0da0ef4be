// Cuts a ByteSource into ready-to-send DATA packets: the 4-byte header (opcode written, block number
// left for the transfer to stamp) followed by exactly `blockSize` payload bytes; the first shorter
// packet (possibly with no payload at all) is the last one of the transfer.
//
// Two things keep the disk off the per-block path. Packets are carved out of shared slabs, so a block
// costs neither an allocation nor a header buffer of its own, and goes out as one buffer. And the next
// chunk of the source is read while the packets already buffered are being sent, so a lock-step
// transfer almost never waits for the thread pool between an ACK and the DATA it releases. That
// read-ahead starts once the client has acknowledged something (widen()): until then only the first
// window is read, so a storm of requests nobody acknowledges costs a window each, not 128 KiB.

import type { ByteSource } from './byte-source.ts';
import { Opcode } from './packet.ts';

export const DATA_HEADER_BYTES = 4;
/** Slabs hold at least this many bytes of packets (and at least one packet). */
const SLAB_BYTES = 64 * 1024;
/** A new source read starts once fewer payload bytes than this are ready. */
const READ_AHEAD_BYTES = 128 * 1024;

export class BlockReader {
  readonly #source: ByteSource;
  readonly #blockSize: number;
  readonly #packetBytes: number;
  #readAhead: number;
  #widened = false;
  /** Complete packets, oldest first, from #head on (a queue without shifting). */
  #ready: Buffer[] = [];
  #head = 0;
  #readyBytes = 0;
  /** The packet being filled, and how many payload bytes it has. */
  #partial: Buffer | undefined;
  #partialFill = 0;
  #slab: Buffer | undefined;
  #slabUsed = 0;
  /** The source returned its end; the last (short) packet is then in #ready. */
  #ended = false;
  #failure: unknown;
  #reading: Promise<void> | undefined;
  #closed = false;

  /** `firstWindow`: payload bytes read before widen(); default one block. */
  constructor(source: ByteSource, blockSize: number, firstWindow = blockSize) {
    this.#source = source;
    this.#blockSize = blockSize;
    this.#packetBytes = DATA_HEADER_BYTES + blockSize;
    this.#readAhead = Math.max(1, firstWindow);
    this.#readMore();
  }

  /** The client is there: read ahead in earnest from now on. */
  widen(): void {
    if (this.#widened) return;
    this.#widened = true;
    this.#readAhead = Math.max(READ_AHEAD_BYTES, 2 * this.#blockSize);
    this.#readMore();
  }

  /** The next packet if one is ready, else undefined (then await next()). Also keeps the read-ahead going. */
  nextBuffered(): Buffer | undefined {
    if (this.#head === this.#ready.length) {
      this.#readMore();
      return undefined;
    }
    return this.#shift();
  }

  /** The next packet; rejects with the source's error once every packet before the failure was taken. */
  async next(): Promise<Buffer> {
    for (;;) {
      if (this.#head < this.#ready.length) return this.#shift();
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#ended || this.#closed) throw new Error('BlockReader: read past the last block or after close');
      this.#readMore();
      await this.#reading;
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#ready = [];
    this.#head = 0;
    this.#partial = undefined;
    this.#slab = undefined;
    return this.#source.close();
  }

  #shift(): Buffer {
    const packet = this.#ready[this.#head] as Buffer;
    this.#ready[this.#head++] = EMPTY;
    this.#readyBytes -= packet.length - DATA_HEADER_BYTES;
    if (this.#head === this.#ready.length) {
      this.#ready.length = 0;
      this.#head = 0;
    }
    this.#readMore();
    return packet;
  }

  /** Starts one source read unless one is running, enough is buffered, or the source is done. */
  #readMore(): void {
    if (this.#reading || this.#ended || this.#closed || this.#failure !== undefined || this.#readyBytes >= this.#readAhead) return;
    // Before widen(), just what the first window lacks; after it, whole chunks (the source's own size),
    // not the few bytes the last packet taken left missing: a read per block would cost a thread-pool trip each.
    this.#reading = this.#source.read(this.#widened ? undefined : this.#readAhead - this.#readyBytes).then(
      (chunk) => {
        this.#reading = undefined;
        if (this.#closed) return;
        if (chunk === undefined) this.#end();
        else this.#append(chunk);
        this.#readMore();
      },
      (err: unknown) => {
        this.#reading = undefined;
        this.#failure = err;
      },
    );
  }

  /** Copies a chunk into packets; the source may reuse the chunk's memory after this. */
  #append(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const packet = this.#partial ?? this.#newPacket();
      const copied = chunk.copy(packet, DATA_HEADER_BYTES + this.#partialFill, offset, Math.min(chunk.length, offset + this.#blockSize - this.#partialFill));
      offset += copied;
      this.#partialFill += copied;
      if (this.#partialFill === this.#blockSize) this.#complete(packet);
      else this.#partial = packet;
    }
  }

  #end(): void {
    this.#ended = true;
    const packet = this.#partial ?? this.#newPacket();
    this.#complete(packet.subarray(0, DATA_HEADER_BYTES + this.#partialFill));
  }

  #complete(packet: Buffer): void {
    this.#ready.push(packet);
    this.#readyBytes += packet.length - DATA_HEADER_BYTES;
    this.#partial = undefined;
    this.#partialFill = 0;
  }

  #newPacket(): Buffer {
    if (!this.#slab || this.#slabUsed + this.#packetBytes > this.#slab.length) {
      // Slabs no bigger than the read-ahead: before widen(), a block or a window.
      const bytes = Math.min(SLAB_BYTES, Math.max(this.#readAhead, this.#blockSize));
      this.#slab = Buffer.allocUnsafeSlow(Math.max(1, Math.floor(bytes / this.#packetBytes)) * this.#packetBytes);
      this.#slabUsed = 0;
    }
    const packet = this.#slab.subarray(this.#slabUsed, this.#slabUsed + this.#packetBytes);
    this.#slabUsed += this.#packetBytes;
    packet.writeUInt16BE(Opcode.DATA, 0);
    return packet;
  }
}

const EMPTY = Buffer.alloc(0);
