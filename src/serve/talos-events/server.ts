// The gRPC server Talos nodes publish their runtime events to: events.EventSinkService/Publish over HTTP/2
// without TLS (how Talos dials it: grpc.WithTransportCredentials(insecure.NewCredentials()) in
// internal/app/machined/pkg/controllers/runtime/events_sink.go). Every call is answered OK with an empty
// EventResponse: a Publish error makes the node restart its sink and replay, and a slow answer holds up its
// events (Publish has no deadline), so nothing here waits or fails a call.
//
// Connections come through our own TCP listener and are handed to grpc-js (Server.createConnectionInjector), so
// the number of connections, in all and per address, is capped here with a log line; grpc-js caps message size,
// streams per connection, idle time and keepalive.
import { createServer, isIP, type Server as NetServer, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { createTalosCodec, type TalosCodec } from './codec.ts';
import { TalosEventDecodeError, TalosEventSinkBindError, TalosEventSinkConfigError } from './errors.ts';
import { normaliseAddress, peerAddress } from './peer.ts';
import type { ReceivedTalosEvent, TalosEventSink, TalosEventSinkLimits, TalosEventSinkOptions, TalosEventsLogger } from './types.ts';

export const PUBLISH_PATH = '/events.EventSinkService/Publish';

export const DEFAULT_LIMITS: Readonly<TalosEventSinkLimits> = {
  maxMessageBytes: 64 * 1024,
  maxConnections: 512,
  maxConnectionsPerPeer: 4,
  maxConcurrentStreams: 8,
  idleTimeoutMs: 15 * 60_000,
  keepaliveTimeMs: 2 * 60_000,
  keepaliveTimeoutMs: 20_000,
  firstCallTimeoutMs: 30_000,
  maxIdLength: 64,
  maxStringLength: 2048,
  maxListItems: 64,
};

/** Printable ASCII without spaces: what an xid, an actor id (a UUID) and a type URL are made of. */
const ID_TEXT = /^[\x21-\x7e]*$/;
/** How often one kind of cap log line may repeat while a cap keeps being hit. */
const CAP_LOG_INTERVAL_MS = 10_000;

const silentLogger: TalosEventsLogger = { info() {}, warn() {}, debug() {} };

export async function startTalosEventSink(options: TalosEventSinkOptions): Promise<TalosEventSink> {
  const limits = checkedLimits(options);
  const log = options.log ?? silentLogger;
  const now = options.now ?? Date.now;
  const codec = createTalosCodec();
  const capLog = capLogger(log, now);
  const grpcServer = new grpc.Server({
    'grpc.max_receive_message_length': limits.maxMessageBytes,
    'grpc.max_send_message_length': 1024,
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    'grpc.max_connection_idle_ms': limits.idleTimeoutMs,
    'grpc.keepalive_time_ms': limits.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    interceptors: [oversizeLogger(limits, capLog)],
  });
  const sockets = new Map<string, Socket>();
  const perPeer = new Map<string, number>();
  const waitingForCall = new Map<string, NodeJS.Timeout>();

  grpcServer.addService(
    {
      Publish: {
        path: PUBLISH_PATH,
        requestStream: false,
        responseStream: false,
        // The request stays bytes until the handler, so a message that does not decode is still answered OK.
        requestDeserialize: (bytes: Buffer) => bytes,
        requestSerialize: (bytes: Buffer) => bytes,
        responseSerialize: () => Buffer.from(codec.encodeResponse()),
        responseDeserialize: () => ({}),
      },
    },
    {
      Publish: (call: grpc.ServerUnaryCall<Buffer, object>, callback: grpc.sendUnaryData<object>) => {
        const peer = call.getPeer();
        const timer = waitingForCall.get(peer);
        if (timer !== undefined) {
          clearTimeout(timer);
          waitingForCall.delete(peer);
        }
        try {
          receive(peer, call.request);
        } finally {
          callback(null, {});
        }
      },
    },
  );

  function receive(rawPeer: string, bytes: Buffer): void {
    const peer = peerAddress(rawPeer);
    if (peer === undefined) {
      log.warn({ peer: rawPeer }, 'Talos event from a peer without a readable address: dropped');
      return;
    }
    const event = decodeEvent(codec, peer, bytes, limits, now, log);
    if (event === undefined) return;
    log.debug({ peer, id: event.id, type: event.payload.type }, 'Talos event');
    try {
      options.onEvent(event);
    } catch (err) {
      log.warn({ peer, id: event.id, err: err instanceof Error ? err.message : String(err) }, 'Talos event handler failed; the event is answered OK all the same');
    }
  }

  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const netServer = createServer((socket) => accept(socket));
  netServer.maxConnections = limits.maxConnections;
  netServer.on('drop', (data) => {
    capLog('connections', { peer: data?.remoteAddress, limit: limits.maxConnections }, `Talos event sink: ${limits.maxConnections} connections open (maxConnections); refusing a new one`);
  });

  function accept(socket: Socket): void {
    const address = normaliseAddress(socket.remoteAddress ?? '') ?? 'unknown';
    const count = perPeer.get(address) ?? 0;
    if (count >= limits.maxConnectionsPerPeer) {
      capLog(`per-peer ${address}`, { peer: address, limit: limits.maxConnectionsPerPeer }, `Talos event sink: ${address} already has ${count} connections (maxConnectionsPerPeer); refusing another`);
      socket.destroy();
      return;
    }
    perPeer.set(address, count + 1);
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    sockets.set(key, socket);
    const timer = setTimeout(() => {
      waitingForCall.delete(key);
      log.info({ peer: address, afterMs: limits.firstCallTimeoutMs }, 'Talos event sink: a connection made no call in time (firstCallTimeoutMs); closed');
      socket.destroy();
    }, limits.firstCallTimeoutMs);
    timer.unref();
    waitingForCall.set(key, timer);
    socket.once('close', () => {
      const t = waitingForCall.get(key);
      if (t !== undefined) clearTimeout(t);
      waitingForCall.delete(key);
      sockets.delete(key);
      const left = (perPeer.get(address) ?? 1) - 1;
      if (left <= 0) perPeer.delete(address);
      else perPeer.set(address, left);
    });
    socket.on('error', (err) => log.debug({ peer: address, err: err.message }, 'Talos event sink connection error'));
    injector.injectConnection(socket);
  }

  const address = await new Promise<{ host: string; port: number }>((resolve, reject) => {
    const onError = (err: Error): void => reject(new TalosEventSinkBindError(`Talos event sink cannot listen on ${options.host}:${options.port}: ${err.message}`));
    netServer.once('error', onError);
    netServer.listen({ host: options.host, port: options.port }, () => {
      netServer.off('error', onError);
      const bound = netServer.address();
      resolve({ host: options.host, port: typeof bound === 'object' && bound !== null ? bound.port : options.port });
    });
  });
  netServer.on('error', (err) => log.warn({ err: err.message }, 'Talos event sink listener error'));
  log.info({ host: address.host, port: address.port }, 'Talos event sink listening (gRPC, HTTP/2 without TLS)');

  return {
    address,
    connections: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of waitingForCall.values()) clearTimeout(t);
        waitingForCall.clear();
        injector.destroy();
        grpcServer.forceShutdown();
        for (const socket of sockets.values()) socket.destroy();
        netServer.close(() => resolve());
      }),
  };
}

/** One event from the bytes of one Publish call, or undefined (logged) when they are not an event worth passing on. */
function decodeEvent(codec: TalosCodec, peer: string, bytes: Buffer, limits: TalosEventSinkLimits, now: () => number, log: TalosEventsLogger): ReceivedTalosEvent | undefined {
  let request;
  try {
    request = codec.decodeRequest(bytes);
  } catch (err) {
    if (!(err instanceof TalosEventDecodeError)) throw err;
    log.warn({ peer, bytes: bytes.length, err: err.message }, 'Talos event dropped: not an EventRequest');
    return undefined;
  }
  const { id, actorId } = request;
  const badId = (v: string): boolean => v.length > limits.maxIdLength || !ID_TEXT.test(v);
  if (id === '' || badId(id) || badId(actorId)) {
    log.warn({ peer, idLength: id.length, actorIdLength: actorId.length }, `Talos event dropped: its id or actor id is empty, longer than ${limits.maxIdLength} or not printable ASCII`);
    return undefined;
  }
  const receivedAt = now();
  if (request.data === undefined) return { peer, id, actorId, receivedAt, payload: { type: 'unknown', typeUrl: '', bytes: 0, reason: 'no payload' } };
  const { typeUrl, value } = request.data;
  if (badId(typeUrl)) {
    return { peer, id, actorId, receivedAt, payload: { type: 'unknown', typeUrl: typeUrl.slice(0, limits.maxIdLength).replace(/[^\x21-\x7e]/g, '?'), bytes: value.length, reason: 'unreadable type URL' } };
  }
  return { peer, id, actorId, receivedAt, payload: codec.decodePayload(typeUrl, value, limits) };
}

/**
 * grpc-js refuses a message over max_receive_message_length itself (RESOURCE_EXHAUSTED) before any handler runs;
 * this interceptor sees such a call end without a message and logs it.
 */
function oversizeLogger(limits: TalosEventSinkLimits, capLog: CapLog): grpc.ServerInterceptor {
  return (_method, call) => {
    let received = false;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMessage: (message, pass) => {
            received = true;
            pass(message);
          },
          onCancel: () => {
            if (received) return;
            const peer = peerAddress(call.getPeer()) ?? call.getPeer();
            capLog(`message ${peer}`, { peer, limit: limits.maxMessageBytes }, `Talos event sink: a call from ${peer} ended before its message arrived: over the ${limits.maxMessageBytes}-byte cap (maxMessageBytes, answered RESOURCE_EXHAUSTED) or cancelled`);
          },
        }),
    });
  };
}

type CapLog = (kind: string, fields: object, message: string) => void;

/** Cap lines are warnings, each kind at most once per interval with the count of those left out since. */
function capLogger(log: TalosEventsLogger, now: () => number): CapLog {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (kind, fields, message) => {
    const t = now();
    const seen = last.get(kind);
    if (seen !== undefined && t - seen.at < CAP_LOG_INTERVAL_MS) {
      seen.suppressed += 1;
      return;
    }
    if (last.size > 1024) last.clear();
    log.warn({ ...fields, ...(seen?.suppressed ? { suppressedSinceLast: seen.suppressed } : {}) }, message);
    last.set(kind, { at: t, suppressed: 0 });
  };
}

function checkedLimits(options: TalosEventSinkOptions): TalosEventSinkLimits {
  if (isIP(options.host) === 0) throw new TalosEventSinkConfigError(`Talos event sink host must be an IP address, not ${JSON.stringify(options.host)}`);
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) throw new TalosEventSinkConfigError(`Talos event sink port ${options.port} is not a TCP port`);
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) throw new TalosEventSinkConfigError(`Talos event sink limit ${name} must be a positive integer, not ${value}`);
  }
  return limits;
}
