// One read transfer on its own socket (its TID): optional OACK handshake, then windows of DATA
// (RFC 7440; a window of 1 is RFC 1350 lock-step) until the short last block is acknowledged.

import type { Socket, RemoteInfo } from 'node:dgram';
import { DATA_HEADER_BYTES, type BlockReader } from './block-reader.ts';
import { TftpClientAbortError, TftpErrorCode, TftpSourceError, TftpTimeoutError, TftpTransferError } from './errors.ts';
import type { TftpLogger } from './logger.ts';
import { Opcode, encodeError, parsePacket } from './packet.ts';

export interface ReadTransferParams {
  /** Bound and owned by the transfer from now on; closed when it ends. */
  socket: Socket;
  peer: { address: string; port: number };
  /** Owned by the transfer; closed when it ends. */
  reader: BlockReader;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Retransmissions of an unanswered window (or OACK) before giving up. */
  retries: number;
  /** Sent first when options were accepted; DATA starts only after the client's ACK 0. */
  oack: Buffer | undefined;
  log: TftpLogger;
}

export interface TransferOutcome {
  /** Payload bytes the client acknowledged. */
  bytes: number;
  error: TftpTransferError | undefined;
}

export class ReadTransfer {
  /** Settles once the socket and the source are both closed; never rejects. */
  readonly done: Promise<TransferOutcome>;
  readonly #p: ReadTransferParams;
  /** A DATA packet shorter than this carries the last block. */
  readonly #fullPacket: number;
  #resolveDone!: (outcome: TransferOutcome) => void;
  #phase: 'oack' | 'data' | 'finished';
  /** Absolute (unwrapped) number of window[0]; the wire carries it modulo 65536. */
  #windowStart = 1;
  /** DATA packets in flight, block numbers stamped, kept for retransmission until acknowledged. */
  #window: Buffer[] = [];
  #lastBlockRead = false;
  /** Waiting for the source: the window is topped up when the next block arrives. */
  #waiting = false;
  #tries = 0;
  /**
   * When the unanswered window (or OACK) is due again; undefined while nothing waits for the client.
   * One timer checks it, instead of a timer re-armed per block: an ACK costs one clock read.
   */
  #deadline: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #bytes = 0;
  #acked = false;

  constructor(params: ReadTransferParams) {
    this.#p = params;
    this.#fullPacket = DATA_HEADER_BYTES + params.blksize;
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.#phase = params.oack ? 'oack' : 'data';
    params.socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
    params.socket.on('error', (err) => this.#finish(new TftpSourceError(`socket error: ${err.message}`), false));
    if (params.oack) {
      this.#send(params.oack);
      this.#arm();
    } else {
      this.#fill();
    }
  }

  /** True once the client has acknowledged anything, i.e. it is certainly talking to this TID. */
  get progressed(): boolean {
    return this.#acked;
  }

  /** Over, though `done` may not have settled yet (sockets and files still closing). */
  get ended(): boolean {
    return this.#phase === 'finished';
  }

  /** Ends the transfer from outside (server stop, superseded request); the client is told why. */
  abort(error: TftpTransferError): void {
    this.#finish(error, true);
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.#phase === 'finished') return;
    const { peer, log } = this.#p;
    if (rinfo.address !== peer.address || rinfo.port !== peer.port) {
      log.debug({ from: `${rinfo.address}:${rinfo.port}` }, 'tftp: packet from unknown transfer id');
      this.#p.socket.send(encodeError(TftpErrorCode.UnknownTransferId, 'Unknown transfer ID'), rinfo.port, rinfo.address);
      return;
    }
    // Nearly every packet of a transfer is an ACK: it is read in place, without parsing it into an object.
    if (msg.length >= 4 && msg[0] === 0 && msg[1] === Opcode.ACK) {
      this.#onAck(msg.readUInt16BE(2));
      return;
    }
    let packet;
    try {
      packet = parsePacket(msg);
    } catch {
      log.debug({ client: `${peer.address}:${peer.port}` }, 'tftp: ignoring malformed packet');
      return;
    }
    if (packet.opcode === Opcode.ERROR) this.#finish(new TftpClientAbortError(packet.code, packet.message), false);
    // Anything else from the client is ignored, as tftpd-hpa does; the timer still runs.
  }

  #onAck(block: number): void {
    if (this.#phase === 'oack') {
      if (block !== 0) return;
      this.#progress();
      this.#phase = 'data';
      this.#tries = 0;
      this.#deadline = undefined;
      this.#fill();
      return;
    }
    // Only an ACK inside the window that is in flight moves anything. Old and duplicate ACKs
    // fall outside it and are dropped, which is what prevents the Sorcerer's Apprentice bug.
    const window = this.#window;
    const index = (block - this.#windowStart) & 0xffff;
    if (index >= window.length) return;
    this.#progress();
    for (let i = 0; i <= index; i++) this.#bytes += (window[i] as Buffer).length - DATA_HEADER_BYTES;
    if (index + 1 === window.length) window.length = 0;
    else window.splice(0, index + 1);
    this.#windowStart += index + 1;
    this.#tries = 0;
    this.#deadline = undefined;
    if (this.#lastBlockRead && window.length === 0) {
      this.#finish(undefined, false);
      return;
    }
    // An ACK short of the window's end means the client dropped the rest: send it again
    // (RFC 7440 section 4), then top the window up.
    for (const packet of window) this.#send(packet);
    this.#fill();
  }

  /** The client acknowledged something: it is there, so the file is read ahead from now on. */
  #progress(): void {
    if (this.#acked) return;
    this.#acked = true;
    this.#p.reader.widen();
  }

  /**
   * Sends blocks until the window is full or the last block is out, in the same tick as the ACK that
   * made room; only when the source has nothing ready does it wait, and carry on when it has.
   */
  #fill(): void {
    if (this.#waiting) return;
    const { reader, windowsize } = this.#p;
    while (this.#phase === 'data' && !this.#lastBlockRead && this.#window.length < windowsize) {
      const packet = reader.nextBuffered();
      if (packet === undefined) {
        void this.#fillFromSource();
        break;
      }
      this.#push(packet);
    }
    this.#arm();
  }

  async #fillFromSource(): Promise<void> {
    this.#waiting = true;
    let packet: Buffer;
    try {
      packet = await this.#p.reader.next();
    } catch (err) {
      this.#finish(err instanceof TftpTransferError ? err : new TftpSourceError(String(err)), true);
      return;
    } finally {
      this.#waiting = false;
    }
    if (this.#phase !== 'data') return;
    this.#push(packet);
    this.#fill();
  }

  #push(packet: Buffer): void {
    packet.writeUInt16BE((this.#windowStart + this.#window.length) & 0xffff, 2);
    this.#window.push(packet);
    if (packet.length < this.#fullPacket) this.#lastBlockRead = true;
    this.#send(packet);
  }

  /** Starts the wait for the client's answer, unless nothing is in flight (a slow source is not the client's fault). */
  #arm(): void {
    if (this.#phase === 'finished') return;
    if (this.#phase === 'data' && this.#window.length === 0) {
      this.#deadline = undefined;
      return;
    }
    this.#deadline = performance.now() + this.#p.timeoutMs;
    this.#timer ??= setTimeout(() => this.#onTimer(), this.#p.timeoutMs);
  }

  #onTimer(): void {
    this.#timer = undefined;
    if (this.#phase === 'finished' || this.#deadline === undefined) return;
    const left = this.#deadline - performance.now();
    if (left > 0) {
      this.#timer = setTimeout(() => this.#onTimer(), Math.ceil(left));
      return;
    }
    if (++this.#tries > this.#p.retries) {
      this.#finish(new TftpTimeoutError(`no ACK after ${this.#p.retries} retransmissions`), true);
      return;
    }
    this.#p.log.debug({ client: `${this.#p.peer.address}:${this.#p.peer.port}`, block: this.#windowStart, try: this.#tries }, 'tftp: retransmitting');
    if (this.#phase === 'oack' && this.#p.oack) this.#send(this.#p.oack);
    else for (const packet of this.#window) this.#send(packet);
    this.#arm();
  }

  #send(packet: Buffer, then?: () => void): void {
    const { socket, peer } = this.#p;
    try {
      // A failed send surfaces as a missing ACK, and so as a retransmission.
      if (then) socket.send(packet, peer.port, peer.address, () => then());
      else socket.send(packet, peer.port, peer.address);
    } catch {
      then?.();
    }
  }

  #finish(error: TftpTransferError | undefined, tellClient: boolean): void {
    if (this.#phase === 'finished') return;
    this.#phase = 'finished';
    this.#deadline = undefined;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const close = (): void => {
      const closeSocket = new Promise<void>((resolve) => {
        try {
          this.#p.socket.close(() => resolve());
        } catch {
          resolve(); // already closed
        }
      });
      void Promise.all([closeSocket, this.#p.reader.close().catch(() => undefined)]).then(() => this.#resolveDone({ bytes: this.#bytes, error }));
    };
    if (error && tellClient) this.#send(encodeError(error.code, error.message), close);
    else close();
  }
}
