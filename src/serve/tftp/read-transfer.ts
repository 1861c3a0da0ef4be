// One read transfer on its own socket (its TID): optional OACK handshake, then windows of DATA
// (RFC 7440; a window of 1 is RFC 1350 lock-step) until the short last block is acknowledged.

import type { Socket, RemoteInfo } from 'node:dgram';
import type { BlockReader } from './block-reader.ts';
import { TftpClientAbortError, TftpErrorCode, TftpSourceError, TftpTimeoutError, TftpTransferError } from './errors.ts';
import type { TftpLogger } from './logger.ts';
import { Opcode, encodeDataParts, encodeError, parsePacket } from './packet.ts';

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
  #resolveDone!: (outcome: TransferOutcome) => void;
  #phase: 'oack' | 'data' | 'finished';
  /** Absolute (unwrapped) number of window[0]; the wire carries it modulo 65536. */
  #windowStart = 1;
  #window: Buffer[] = [];
  #lastBlockRead = false;
  #pumping = false;
  #tries = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerArmed = false;
  #bytes = 0;
  #acked = false;

  constructor(params: ReadTransferParams) {
    this.#p = params;
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.#phase = params.oack ? 'oack' : 'data';
    params.socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
    params.socket.on('error', (err) => this.#finish(new TftpSourceError(`socket error: ${err.message}`), false));
    if (params.oack) {
      this.#send(params.oack);
      this.#armTimer();
    } else {
      void this.#pump();
    }
  }

  /** True once the client has acknowledged anything, i.e. it is certainly talking to this TID. */
  get progressed(): boolean {
    return this.#acked;
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
    let packet;
    try {
      packet = parsePacket(msg);
    } catch {
      log.debug({ client: `${peer.address}:${peer.port}` }, 'tftp: ignoring malformed packet');
      return;
    }
    if (packet.opcode === Opcode.ERROR) this.#finish(new TftpClientAbortError(packet.code, packet.message), false);
    else if (packet.opcode === Opcode.ACK) this.#onAck(packet.block);
    // Anything else from the client is ignored, as tftpd-hpa does; the timer still runs.
  }

  #onAck(block: number): void {
    if (this.#phase === 'oack') {
      if (block !== 0) return;
      this.#acked = true;
      this.#phase = 'data';
      this.#tries = 0;
      this.#clearTimer();
      void this.#pump();
      return;
    }
    // Only an ACK inside the window that is in flight moves anything. Old and duplicate ACKs
    // fall outside it and are dropped, which is what prevents the Sorcerer's Apprentice bug.
    const index = this.#window.findIndex((_, i) => ((this.#windowStart + i) & 0xffff) === block);
    if (index === -1) return;
    this.#acked = true;
    for (const data of this.#window.splice(0, index + 1)) this.#bytes += data.length;
    this.#windowStart += index + 1;
    this.#tries = 0;
    this.#clearTimer();
    if (this.#lastBlockRead && this.#window.length === 0) {
      this.#finish(undefined, false);
      return;
    }
    // An ACK short of the window's end means the client dropped the rest: send it again
    // (RFC 7440 section 4), then top the window up.
    this.#sendWindow();
    void this.#pump();
  }

  /** Reads and sends blocks until the window is full or the last block is out. */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#phase === 'data' && !this.#lastBlockRead && this.#window.length < this.#p.windowsize) {
        // Most blocks are already buffered: taking them synchronously saves a promise per block.
        const data = this.#p.reader.nextBuffered() ?? (await this.#p.reader.next());
        if (this.#phase !== 'data') return;
        this.#window.push(data);
        if (data.length < this.#p.blksize) this.#lastBlockRead = true;
        this.#sendBlock(this.#windowStart + this.#window.length - 1, data);
      }
    } catch (err) {
      this.#finish(err instanceof TftpTransferError ? err : new TftpSourceError(String(err)), true);
      return;
    } finally {
      this.#pumping = false;
    }
    this.#armTimer();
  }

  #onTimeout(): void {
    this.#timer = undefined;
    if (this.#phase === 'finished' || !this.#timerArmed) return;
    // Nothing in flight (a slow source is still producing the next block): not the client's fault.
    if (this.#phase === 'data' && this.#window.length === 0) {
      this.#armTimer();
      return;
    }
    if (++this.#tries > this.#p.retries) {
      this.#finish(new TftpTimeoutError(`no ACK after ${this.#p.retries} retransmissions`), true);
      return;
    }
    this.#p.log.debug({ client: `${this.#p.peer.address}:${this.#p.peer.port}`, block: this.#windowStart, try: this.#tries }, 'tftp: retransmitting');
    if (this.#phase === 'oack' && this.#p.oack) this.#send(this.#p.oack);
    else this.#sendWindow();
    this.#armTimer();
  }

  #sendWindow(): void {
    this.#window.forEach((data, i) => this.#sendBlock(this.#windowStart + i, data));
  }

  #sendBlock(block: number, data: Buffer): void {
    this.#send(encodeDataParts(block, data));
  }

  #send(packet: Buffer | Buffer[], then?: () => void): void {
    const { socket, peer } = this.#p;
    try {
      // A failed send surfaces as a missing ACK, and so as a retransmission.
      if (then) socket.send(packet, peer.port, peer.address, () => then());
      else socket.send(packet, peer.port, peer.address);
    } catch {
      then?.();
    }
  }

  #armTimer(): void {
    if (this.#phase === 'finished') return;
    // Re-arming the same timer is much cheaper than a new one per block.
    if (this.#timer !== undefined) this.#timer.refresh();
    else this.#timer = setTimeout(() => this.#onTimeout(), this.#p.timeoutMs);
    this.#timerArmed = true;
  }

  /** Disarms the retransmission timer; it is kept for re-arming, and really cleared only at the end. */
  #clearTimer(): void {
    this.#timerArmed = false;
  }

  #dropTimer(): void {
    this.#timerArmed = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #finish(error: TftpTransferError | undefined, tellClient: boolean): void {
    if (this.#phase === 'finished') return;
    this.#phase = 'finished';
    this.#dropTimer();
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
