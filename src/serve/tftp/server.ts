// The read-only TFTP server: a listening socket that only accepts requests, and one transfer
// (NativeTransfer or ReadTransfer) on a fresh ephemeral socket (a new TID) per request, as RFC 1350
// prescribes, within the caps of limits.ts. What one request can hold is bounded whatever it asks:
//   - its retransmission timeout: a `timeout` option over maxClientTimeoutS is not granted (options.ts);
//   - its life: a transfer running longer than maxTransferMs is ended;
//   - its place under a cap: when a cap is reached, the oldest transfer whose client has acknowledged nothing
//     within the server's own retransmission timeout is ended for the new request (a client that is there answers
//     within a round trip), so requests nobody acknowledges cannot keep a host that is there from booting.
//     Only when none is that old is the new request dropped (see limits.ts for why silence).

import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { availableParallelism } from 'node:os';
import { BlockReader } from './block-reader.ts';
import { bufferSource, fileSource, netasciiSource, streamSource, type ByteSource } from './byte-source.ts';
import {
  TftpAccessViolationError, TftpClientAbortError, TftpErrorCode, TftpFileNotFoundError, TftpIllegalOperationError, TftpParseError,
  TftpShutdownError, TftpSourceError, TftpSupersededError, TftpTimeoutError, TftpTransferError, type TftpFailureKind,
} from './errors.ts';
import { checkLimits, RefusalLog, type TftpLimits } from './limits.ts';
import { silentLogger, type TftpLogger } from './logger.ts';
import { DEFAULT_MAX_CLIENT_TIMEOUT_S, negotiate } from './options.ts';
import { Opcode, encodeError, encodeOack, parsePacket, type RequestPacket } from './packet.ts';
import { NativeEngine, nativeEngineUnavailable, type NativeTransfer } from './native-engine.ts';
import { ReadTransfer } from './read-transfer.ts';
import { confineName, openInRoot } from './root-path.ts';

/** Content for a name the resolve hook generates instead of a file under the root. */
export type TftpSource = { size: number; open(): NodeJS.ReadableStream } | { data: Buffer };

export interface TftpClientAddress {
  address: string;
  port: number;
}

export interface TftpTransferEvent {
  /** "address:port" of the client. */
  client: string;
  /** The name as the client requested it. */
  file: string;
  /** Payload bytes the client acknowledged. */
  bytes: number;
  ok: boolean;
  error?: string;
  /** Which failure, when not ok. A client abort with no bytes is usually a size probe (tsize, then ERROR). */
  failure?: TftpFailureKind;
  /** Negotiated block and window size; absent when the request failed before a transfer started. */
  blksize?: number;
  windowsize?: number;
  /** Which pump moved the data (see TftpServerOptions.pump); absent when no transfer started. */
  pump?: 'native' | 'js';
  /** From the request to the transfer's end. */
  ms: number;
}

export interface TftpServerOptions {
  /** Directory files are served from; a function is called per request, so the root can switch between transfers. */
  root: string | (() => string);
  /** Default 0.0.0.0. */
  address?: string;
  /** Default 69; 0 picks an ephemeral port. */
  port?: number;
  /** Generated per-host content; it sees the name already confined (no `..`, no leading slash). null falls back to the root. */
  resolve?: (name: string, client: TftpClientAddress) => Promise<TftpSource | null>;
  log?: TftpLogger;
  /** Called once per request with its outcome; when given, the server does not log outcomes itself. */
  onTransfer?: (e: TftpTransferEvent) => void;
  /** Retransmissions of an unanswered window before the transfer is abandoned. Default 5. */
  retries?: number;
  /** Retransmission timeout; a client's `timeout` option overrides it. Default 1000. */
  timeoutMs?: number;
  /**
   * Who moves the data of files under the root: `native` (the C engine, see native-engine.ts; start()
   * fails without it), `js` (ReadTransfer) or `auto` (native when it was built). Default auto.
   * Generated content and netascii always use ReadTransfer.
   */
  pump?: TftpPump;
  /** Worker threads of the native engine, each running many transfers. Default: 2, or 1 on one core. */
  engineThreads?: number;
  /** Concurrent transfers over all clients and per client address (defaults in limits.ts); a request past either is dropped unanswered. */
  limits?: Partial<TftpLimits>;
  /** The longest RFC 2349 `timeout` (seconds) granted to a client; a larger ask is left out of the OACK. Default 10. */
  maxClientTimeoutS?: number;
  /** The longest a transfer may run, whatever its options; it is then ended with an ERROR. Default 300000 (5 minutes). */
  maxTransferMs?: number;
}

/** A boot file over TFTP takes seconds; five minutes is an installer image on a slow, lossy link. */
export const DEFAULT_MAX_TRANSFER_MS = 300_000;

export type TftpPump = 'auto' | 'native' | 'js';

export interface TftpServer {
  start(): Promise<TftpClientAddress>;
  /** Closes the listening socket, aborts running transfers and resolves once every socket and file is closed. */
  stop(): Promise<void>;
  /** Requests being served now, and requests dropped by a cap since start. */
  stats(): { transfers: number; dropped: number };
  /**
   * Since start: transfers ended at a cap to serve a new request (their client acknowledged nothing in time), and
   * transfers ended for running longer than maxTransferMs.
   */
  reclaimed(): { evicted: number; overtime: number };
  /** The caps in force. */
  readonly limits: TftpLimits;
}

/** What the server needs of a running transfer, whichever pump moves it. */
interface RunningTransfer {
  readonly progressed: boolean;
  readonly ended: boolean;
  abort(error: TftpTransferError): void;
}

interface ActiveRequest {
  file: string;
  /** The client's address (all its ports count together) and when the request was taken (performance.now()). */
  address: string;
  started: number;
  /** Ends the request once it has run maxTransferMs. */
  overtime: NodeJS.Timeout | undefined;
  transfer: RunningTransfer | undefined;
  /** Set when the request must end before its transfer exists. */
  cancelled: TftpTransferError | undefined;
  /** The latest copy of this request that arrived before the client acknowledged anything. */
  repeat: { msg: Buffer; rinfo: RemoteInfo } | undefined;
}

export function createTftpServer(options: TftpServerOptions): TftpServer {
  const address = options.address ?? '0.0.0.0';
  const socketType = isIPv6(address) ? 'udp6' : 'udp4';
  const log = options.log ?? silentLogger;
  const retries = options.retries ?? 5;
  const defaultTimeoutMs = options.timeoutMs ?? 1000;
  const limits = checkLimits(options.limits ?? {});
  const maxClientTimeoutS = options.maxClientTimeoutS ?? DEFAULT_MAX_CLIENT_TIMEOUT_S;
  const maxTransferMs = options.maxTransferMs ?? DEFAULT_MAX_TRANSFER_MS;
  const refusals = new RefusalLog(log);
  /** The latest request per client address:port. */
  const active = new Map<string, ActiveRequest>();
  /** Every request holding a place, oldest first, for stop() and the global cap. */
  const entries = new Set<ActiveRequest>();
  /** Requests holding a place per client address, oldest first, for the per-client cap. */
  const perClient = new Map<string, Set<ActiveRequest>>();
  /**
   * Requests whose client had not acknowledged anything when last looked at, oldest first: where the global cap looks
   * for one to end. One found acknowledged leaves for good, so each request is passed over at most once.
   */
  const unacknowledged = new Set<ActiveRequest>();
  let dropped = 0;
  let evicted = 0;
  let overtime = 0;
  const running = new Set<Promise<void>>();
  let listener: Socket | undefined;
  let stopping = false;
  const pump = options.pump ?? 'auto';
  const engineThreads = options.engineThreads ?? Math.min(2, availableParallelism());
  let engine: NativeEngine | undefined;

  async function bindSocket(port: number): Promise<Socket> {
    // Peers are always IP literals: a lookup that answers at once spares dns.lookup's deferral on every send.
    const socket = createSocket({ type: socketType, lookup: (host, _family, callback) => callback(null, host, socketType === 'udp6' ? 6 : 4) });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port, address }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return socket;
  }

  function onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    if (stopping || !listener) return;
    let packet;
    try {
      packet = parsePacket(msg);
    } catch (err) {
      const message = err instanceof TftpParseError ? err.message : 'Malformed packet';
      log.debug({ from: `${rinfo.address}:${rinfo.port}`, err: message }, 'tftp: malformed request');
      if (msg.length < 2 || msg.readUInt16BE(0) !== Opcode.ERROR) listener.send(encodeError(TftpErrorCode.IllegalOperation, message), rinfo.port, rinfo.address);
      return;
    }
    if (packet.opcode === Opcode.ERROR) return; // never answer an error with an error
    if (packet.opcode !== Opcode.RRQ && packet.opcode !== Opcode.WRQ) {
      listener.send(encodeError(TftpErrorCode.IllegalOperation, 'Expected a read request'), rinfo.port, rinfo.address);
      return;
    }
    const key = `${rinfo.address}:${rinfo.port}`;
    const existing = active.get(key);
    // `ended`: the transfer is over though its outcome is still being reported, e.g. a client that
    // aborted a size probe and asks again from the same port: the new request is simply served. One that
    // was ended at a cap holds no place any more: what comes from its port is a new request.
    const holding = existing !== undefined && entries.has(existing);
    const busy = holding && !existing.transfer?.ended;
    // Within the caps, except a request that takes the place of the one from its port (one that
    // ended but is still being reported, or one it ends below) and a repeat that is held (it starts nothing).
    const replaces = holding && (!busy || existing.file !== packet.filename);
    const held = busy && !replaces && !existing.transfer?.progressed;
    if (!replaces && !held && !withinCaps(rinfo.address)) return;
    if (existing && busy) {
      if (existing.file === packet.filename) {
        // A client repeats its request when our first reply is slow: until it has acknowledged
        // something, the first transfer answers it. After that, a copy that arrives late (or a
        // client that restarted on the same port) gets a transfer of its own on a new TID, as with
        // tftpd-hpa, and the first is left alone: the client refuses the TID it does not use.
        if (!existing.transfer?.progressed) {
          // Held rather than dropped: when the client aborts the first transfer instead (a size
          // probe: ERROR after the OACK, then the real request from the same port), this request
          // can be here before that ERROR is read on the transfer's socket, by another thread with
          // the native pump. It is served once the abort is (see the end of the job below).
          existing.repeat = { msg, rinfo };
          log.debug({ client: key, file: packet.filename }, 'tftp: holding repeated request');
          return;
        }
      } else {
        const superseded = new TftpSupersededError('client sent a new request');
        existing.cancelled = superseded;
        existing.transfer?.abort(superseded);
      }
    }
    const entry: ActiveRequest = {
      file: packet.filename, address: rinfo.address, started: performance.now(), overtime: undefined, transfer: undefined, cancelled: undefined, repeat: undefined,
    };
    active.set(key, entry);
    hold(entry);
    const job = serve(packet, { address: rinfo.address, port: rinfo.port }, entry)
      .catch((err: unknown) => {
        log.warn({ client: key, err: String(err) }, 'tftp: request failed unexpectedly');
        return undefined;
      })
      .then((error) => {
        const latest = active.get(key) === entry;
        if (latest) active.delete(key);
        release(entry);
        running.delete(job);
        if (!entry.repeat) return;
        if (latest && error instanceof TftpClientAbortError && !entry.transfer?.progressed) onDatagram(entry.repeat.msg, entry.repeat.rinfo);
        else log.debug({ client: key, file: entry.file }, 'tftp: ignoring repeated request: the first transfer answered it');
      });
    running.add(job);
  }

  /** The request takes its place under the caps, and its bound in time. */
  function hold(entry: ActiveRequest): void {
    entries.add(entry);
    unacknowledged.add(entry);
    let mine = perClient.get(entry.address);
    if (!mine) perClient.set(entry.address, (mine = new Set()));
    mine.add(entry);
    entry.overtime = setTimeout(() => {
      overtime++;
      const error = new TftpTimeoutError(`the transfer ran longer than ${maxTransferMs / 1000} s, the most one may`);
      log.warn({ client: entry.address, file: entry.file, maxTransferMs }, `tftp: ${error.message}; ended`);
      entry.cancelled = error;
      entry.transfer?.abort(error);
    }, maxTransferMs);
    entry.overtime.unref();
  }

  /** The request gives its place back (at its end, or when it is ended for a new one); twice is harmless. */
  function release(entry: ActiveRequest): void {
    clearTimeout(entry.overtime);
    entries.delete(entry);
    unacknowledged.delete(entry);
    const mine = perClient.get(entry.address);
    mine?.delete(entry);
    if (mine?.size === 0) perClient.delete(entry.address);
  }

  /** Whether a new request from `address` may start now, making room if it can; counts and reports the drop when not. */
  function withinCaps(address: string): boolean {
    if (entries.size >= limits.maxTransfers && !makeRoom(unacknowledged, 'global', limits.maxTransfers, address)) {
      dropped++;
      refusals.dropped('global', limits.maxTransfers, address);
      return false;
    }
    const mine = perClient.get(address);
    if (mine && mine.size >= limits.maxTransfersPerClient && !makeRoom(mine, 'per-client', limits.maxTransfersPerClient, address)) {
      dropped++;
      refusals.dropped('per-client', limits.maxTransfersPerClient, address);
      return false;
    }
    return true;
  }

  /**
   * Ends the oldest request of `among` whose client has acknowledged nothing though it has had the server's own
   * retransmission timeout to (whatever timeout it asked for); false when there is none.
   */
  function makeRoom(among: Set<ActiveRequest>, cap: 'global' | 'per-client', limit: number, address: string): boolean {
    const before = performance.now() - defaultTimeoutMs;
    for (const entry of among) {
      if (entry.transfer?.progressed || entry.transfer?.ended || entry.cancelled) {
        if (entry.transfer?.progressed) unacknowledged.delete(entry);
        continue;
      }
      if (entry.started > before) return false; // the rest are younger still
      const error = new TftpTimeoutError(`no acknowledgement within ${defaultTimeoutMs} ms while the transfer cap was reached; its place went to a new request`);
      release(entry);
      entry.cancelled = error;
      entry.transfer?.abort(error);
      evicted++;
      refusals.evicted(cap, limit, address, defaultTimeoutMs);
      return true;
    }
    return false;
  }

  /** Resolves with what ended the request, once it is reported. */
  async function serve(request: RequestPacket, client: TftpClientAddress, entry: ActiveRequest): Promise<TftpTransferError | undefined> {
    const clientId = `${client.address}:${client.port}`;
    const started = performance.now();
    let shape: { blksize: number; windowsize: number; pump: 'native' | 'js' } | undefined;
    const report = (bytes: number, error: TftpTransferError | undefined): void => {
      const event: TftpTransferEvent = { client: clientId, file: request.filename, bytes, ok: !error, ...shape, ms: Math.round(performance.now() - started) };
      if (error) {
        event.error = error.message;
        event.failure = error.kind;
      }
      if (!options.onTransfer) {
        const fields = { client: clientId, file: request.filename, bytes };
        if (!error) log.info(fields, 'tftp: transfer complete');
        else if (error instanceof TftpFileNotFoundError || error instanceof TftpShutdownError) log.debug({ ...fields, err: error.message }, 'tftp: request failed');
        else log.warn({ ...fields, err: error.message }, 'tftp: request failed');
        return;
      }
      try {
        options.onTransfer(event);
      } catch (err) {
        log.warn({ err: String(err) }, 'tftp: onTransfer hook threw');
      }
    };

    let source: ByteSource | undefined;
    let fd: number | undefined;
    try {
      if (request.opcode === Opcode.WRQ) throw new TftpAccessViolationError('Read-only server');
      if (request.mode === 'mail') throw new TftpIllegalOperationError('Mail mode is not supported');
      const name = confineName(request.filename);
      ({ source, fd } = await openSource(name, client));
      if (request.mode === 'netascii') {
        source = netasciiSource(source);
        fd = undefined;
      }
      if (entry.cancelled) throw entry.cancelled;
    } catch (err) {
      await source?.close();
      const error = asTransferError(err);
      const socket = await bindSocket(0);
      await new Promise<void>((resolve) => socket.send(encodeError(error.code, error.message), client.port, client.address, () => resolve()));
      await new Promise<void>((resolve) => socket.close(() => resolve()));
      report(0, error);
      return error;
    }

    const negotiated = negotiate(request.options, source.size, maxClientTimeoutS);
    shape = { blksize: negotiated.blksize, windowsize: negotiated.windowsize, pump: 'js' };
    const shared = {
      blksize: negotiated.blksize,
      windowsize: negotiated.windowsize,
      timeoutMs: negotiated.timeoutMs ?? defaultTimeoutMs,
      retries,
      oack: negotiated.accepted.length > 0 ? encodeOack(negotiated.accepted) : undefined,
    };
    log.debug({ client: clientId, file: request.filename, blksize: negotiated.blksize, windowsize: negotiated.windowsize }, 'tftp: transfer started');
    // The pump takes IP literals only: a scoped IPv6 address (fe80::1%eth0) goes through ReadTransfer.
    if (engine && fd !== undefined && source.size !== undefined && !client.address.includes('%')) {
      let transfer: NativeTransfer | undefined;
      try {
        transfer = engine.start({ ...shared, local: address, peer: client.address, peerPort: client.port, fd, size: source.size });
      } catch (err) {
        log.warn({ client: clientId, err: err instanceof Error ? err.message : String(err) }, 'tftp: native engine refused the transfer; using the JavaScript pump');
      }
      if (transfer) {
        shape.pump = 'native';
        entry.transfer = transfer;
        const outcome = await transfer.done;
        await source.close();
        if (outcome.retransmits > 0) log.debug({ client: clientId, retransmits: outcome.retransmits }, 'tftp: retransmitted');
        report(outcome.bytes, outcome.error);
        return outcome.error;
      }
    }
    let socket: Socket;
    try {
      socket = await bindSocket(0);
    } catch (err) {
      await source.close();
      throw err;
    }
    const transfer = new ReadTransfer({ ...shared, socket, peer: client, reader: new BlockReader(source, negotiated.blksize, negotiated.blksize * negotiated.windowsize), log });
    entry.transfer = transfer;
    // Cancelled (stop, or a new request from this port) while the socket was being bound.
    if (entry.cancelled) transfer.abort(entry.cancelled);
    const outcome = await transfer.done;
    report(outcome.bytes, outcome.error);
    return outcome.error;
  }

  /** `fd` is set for files under the root: what the native pump reads. */
  async function openSource(name: string, client: TftpClientAddress): Promise<{ source: ByteSource; fd: number | undefined }> {
    if (options.resolve) {
      let generated: TftpSource | null;
      try {
        generated = await options.resolve(name, client);
        if (generated) return { source: 'data' in generated ? bufferSource(generated.data) : streamSource(generated.open(), generated.size), fd: undefined };
      } catch (err) {
        throw new TftpSourceError(`resolve hook failed for ${JSON.stringify(name)}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const root = typeof options.root === 'function' ? options.root() : options.root;
    const file = await openInRoot(root, name);
    return { source: fileSource(file.handle, file.size), fd: file.handle.fd };
  }

  return {
    async start() {
      if (listener) throw new Error('TFTP server already started');
      const unavailable = pump === 'js' ? undefined : nativeEngineUnavailable();
      if (pump === 'native' && unavailable) throw new Error(`native TFTP engine unavailable: ${unavailable}`);
      if (unavailable && pump === 'auto') log.warn({ reason: unavailable }, 'tftp: native engine unavailable; lock-step transfers will be slower on fast links');
      stopping = false;
      dropped = 0;
      evicted = 0;
      overtime = 0;
      let socket: Socket;
      engine = pump !== 'js' && !unavailable ? new NativeEngine(engineThreads) : undefined;
      try {
        socket = await bindSocket(options.port ?? 69);
      } catch (err) {
        engine?.close();
        engine = undefined;
        throw err;
      }
      socket.on('message', onDatagram);
      socket.on('error', (err) => log.warn({ err: err.message }, 'tftp: listening socket error'));
      listener = socket;
      const bound = socket.address();
      log.info({ address: bound.address, port: bound.port, pump: engine ? 'native' : 'js', ...(engine ? { engineThreads } : {}), ...limits }, 'tftp: listening');
      return { address: bound.address, port: bound.port };
    },
    async stop() {
      stopping = true;
      const socket = listener;
      listener = undefined;
      if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
      const shutdown = new TftpShutdownError('Server shutting down');
      for (const entry of entries) {
        entry.cancelled = shutdown;
        entry.transfer?.abort(shutdown);
      }
      await Promise.all(running);
      engine?.close();
      engine = undefined;
    },
    stats: () => ({ transfers: entries.size, dropped }),
    reclaimed: () => ({ evicted, overtime }),
    limits,
  };
}

function asTransferError(err: unknown): TftpTransferError {
  if (err instanceof TftpTransferError) return err;
  return new TftpSourceError(err instanceof Error ? err.message : String(err));
}
