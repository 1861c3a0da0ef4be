// The native data pump (native/pump.c, built by node-gyp at `npm ci`): the data phase of one read
// transfer on a thread of its own. Node pays a fixed cost per datagram (an event-loop wake-up, a JS
// callback, a buffer) that makes lock-step TFTP on a fast link ~20 % slower than tftpd-hpa's blocking
// loop; the pump has none of it. It serves files under the root; generated content, netascii and
// machines where it did not build go through ReadTransfer, which follows the same protocol rules.

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { TftpClientAbortError, TftpSourceError, TftpTimeoutError, type TftpTransferError } from './errors.ts';
import type { TransferOutcome } from './read-transfer.ts';

interface PumpResult {
  result: 'ok' | 'timeout' | 'client-abort' | 'source' | 'aborted' | 'socket';
  bytes: number;
  retransmits: number;
  clientCode: number;
  message: Buffer;
}

/** An opaque handle from the addon (a napi external). */
type PumpHandle = object;

interface PumpBinding {
  start(params: PumpParams & { timeoutMessage: string }, onDone: (r: PumpResult) => void): PumpHandle;
  abort(handle: PumpHandle, code: number, message: string): void;
  /** Bit 0: the client acknowledged something; bit 1: the transfer is over. */
  state(handle: PumpHandle): number;
}

export interface PumpParams {
  /** The server's listening address: the transfer's socket (its TID) binds there, port chosen by the kernel. */
  local: string;
  peer: string;
  peerPort: number;
  /** Read with pread only; stays the caller's to close, after `done`. */
  fd: number;
  size: number;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  oack: Buffer | undefined;
}

export interface NativeTransferOutcome extends TransferOutcome {
  retransmits: number;
}

const ADDON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../build/Release/tftp_pump.node');

let binding: PumpBinding | undefined;
let loadError: string | undefined;
if (!isMainThread) {
  // A worker's environment can be torn down under a running pump thread; the JS pump has no such edge.
  loadError = 'the native pump runs on the main thread only';
} else {
  try {
    binding = createRequire(import.meta.url)(ADDON) as PumpBinding;
  } catch (err) {
    loadError = err instanceof Error ? err.message.split('\n')[0] : String(err);
  }
}

/** Why the native pump is not there (not built, or failed to load); undefined when it is. */
export function nativePumpUnavailable(): string | undefined {
  return binding ? undefined : `${loadError ?? 'not loaded'} (run npm ci with a C compiler to build it)`;
}

/** One transfer on the native pump; the same shape as ReadTransfer for the server. */
export class NativeTransfer {
  readonly done: Promise<NativeTransferOutcome>;
  readonly #binding: PumpBinding;
  readonly #handle: PumpHandle;
  #abortError: TftpTransferError | undefined;

  /** Throws when the pump is unavailable or cannot open the transfer's socket. */
  constructor(params: PumpParams) {
    if (!binding) throw new Error(`native TFTP pump unavailable: ${nativePumpUnavailable()}`);
    this.#binding = binding;
    let resolveDone!: (outcome: NativeTransferOutcome) => void;
    this.done = new Promise((resolve) => (resolveDone = resolve));
    const timeoutMessage = `no ACK after ${params.retries} retransmissions`;
    this.#handle = binding.start({ ...params, timeoutMessage }, (r) => resolveDone({ bytes: r.bytes, retransmits: r.retransmits, error: this.#error(r, timeoutMessage) }));
  }

  get progressed(): boolean {
    return (this.#binding.state(this.#handle) & 1) !== 0;
  }

  /** Over, though `done` may not have settled yet. */
  get ended(): boolean {
    return (this.#binding.state(this.#handle) & 2) !== 0;
  }

  /** Ends the transfer from outside; the client is sent `error`'s code and message. */
  abort(error: TftpTransferError): void {
    this.#abortError ??= error;
    this.#binding.abort(this.#handle, error.code, error.message);
  }

  #error(r: PumpResult, timeoutMessage: string): TftpTransferError | undefined {
    const message = r.message.toString('utf8');
    switch (r.result) {
      case 'ok':
        return undefined;
      case 'timeout':
        return new TftpTimeoutError(timeoutMessage);
      case 'client-abort':
        return new TftpClientAbortError(r.clientCode, message);
      case 'aborted':
        return this.#abortError ?? new TftpSourceError('transfer aborted');
      case 'source':
      case 'socket':
        return new TftpSourceError(message);
    }
  }
}
