// The native transfer engine (native/*.c, built by node-gyp at `npm ci`): a few worker threads, each
// running the data phase of many read transfers on one epoll instance. Node pays a fixed cost per
// datagram (an event-loop wake-up, a JS callback, a buffer) that makes lock-step TFTP on a fast link
// ~20 % slower than tftpd-hpa's blocking loop; the engine has none of it, and unlike a thread per
// transfer, its threads, memory and wake-ups do not grow with the number of clients. It serves files
// under the root; generated content, netascii and machines where it did not build go through
// ReadTransfer, which follows the same protocol rules.

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { TftpClientAbortError, TftpShutdownError, TftpSourceError, TftpTimeoutError, type TftpTransferError } from './errors.ts';
import type { TransferOutcome } from './read-transfer.ts';

interface EngineResult {
  result: 'ok' | 'timeout' | 'client-abort' | 'source' | 'aborted' | 'socket';
  bytes: number;
  retransmits: number;
  clientCode: number;
  message: Buffer;
}

/** Opaque handles from the addon (napi externals). */
type EngineHandle = object;
type TransferHandle = object;

interface EngineBinding {
  createEngine(threads: number): EngineHandle;
  closeEngine(engine: EngineHandle): void;
  start(engine: EngineHandle, params: EngineParams & { timeoutMessage: string }, onDone: (r: EngineResult) => void): TransferHandle;
  abort(handle: TransferHandle, code: number, message: string): void;
  /** Bit 0: the client acknowledged something; bit 1: the transfer is over. */
  state(handle: TransferHandle): number;
}

export interface EngineParams {
  /** The server's listening address: the transfer's socket (its TID) binds there, port chosen by the kernel. */
  local: string;
  peer: string;
  peerPort: number;
  /** Read with preadv only; stays the caller's to close, after `done`. */
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

const ADDON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../build/Release/tftp_engine.node');

/** The addon, loaded once when this module is first imported and never changed after: the process's own, like its code. */
const ADDON_LOAD: Readonly<{ binding?: EngineBinding; error?: string }> = loadAddon();

function loadAddon(): { binding?: EngineBinding; error?: string } {
  // A worker's environment can be torn down under a running engine thread; the JS pump has no such edge.
  if (!isMainThread) return { error: 'the native engine runs on the main thread only' };
  try {
    return { binding: createRequire(import.meta.url)(ADDON) as EngineBinding };
  } catch (err) {
    return { error: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  }
}

/** Why the native engine is not there (not built, or failed to load); undefined when it is. */
export function nativeEngineUnavailable(): string | undefined {
  return ADDON_LOAD.binding ? undefined : `${ADDON_LOAD.error ?? 'not loaded'} (run npm ci with a C compiler to build it)`;
}

/** A running engine: its worker threads exist from construction to close(). */
export class NativeEngine {
  readonly #binding: EngineBinding;
  readonly #engine: EngineHandle;

  /** Throws when the engine is unavailable or its threads cannot be started. */
  constructor(threads: number) {
    const binding = ADDON_LOAD.binding;
    if (!binding) throw new Error(`native TFTP engine unavailable: ${nativeEngineUnavailable()}`);
    this.#binding = binding;
    this.#engine = binding.createEngine(threads);
  }

  /** Throws when the transfer's socket cannot be opened (e.g. out of file descriptors). */
  start(params: EngineParams): NativeTransfer {
    return new NativeTransfer(this.#binding, this.#engine, params);
  }

  /** Aborts whatever still runs (each is reported, as a shutdown) and joins the threads. */
  close(): void {
    this.#binding.closeEngine(this.#engine);
  }
}

/** One transfer on the engine; the same shape as ReadTransfer for the server. */
export class NativeTransfer {
  readonly done: Promise<NativeTransferOutcome>;
  readonly #binding: EngineBinding;
  readonly #handle: TransferHandle;
  #abortError: TftpTransferError | undefined;

  constructor(engineBinding: EngineBinding, engine: EngineHandle, params: EngineParams) {
    this.#binding = engineBinding;
    let resolveDone!: (outcome: NativeTransferOutcome) => void;
    this.done = new Promise((resolve) => (resolveDone = resolve));
    const timeoutMessage = `no ACK after ${params.retries} retransmissions`;
    this.#handle = engineBinding.start(engine, { ...params, timeoutMessage }, (r) => resolveDone({ bytes: r.bytes, retransmits: r.retransmits, error: this.#error(r, timeoutMessage) }));
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

  #error(r: EngineResult, timeoutMessage: string): TftpTransferError | undefined {
    const message = r.message.toString('utf8');
    switch (r.result) {
      case 'ok':
        return undefined;
      case 'timeout':
        return new TftpTimeoutError(timeoutMessage);
      case 'client-abort':
        return new TftpClientAbortError(r.clientCode, message);
      case 'aborted':
        // Without an abort of its own, the engine was closed under it.
        return this.#abortError ?? new TftpShutdownError(message || 'Server shutting down');
      case 'source':
      case 'socket':
        return new TftpSourceError(message);
    }
  }
}
