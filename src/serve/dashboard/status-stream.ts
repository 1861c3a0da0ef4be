import type { IncomingMessage, ServerResponse } from 'node:http';
import { LogThrottle, type ThrottledLog } from '../http/log-throttle.ts';

/** Streams open at once unless the agent configuration says otherwise (serve.http.maxEventStreams). */
export const DEFAULT_MAX_EVENT_STREAMS = 32;
/** Streams open at once from one address (serve.http.maxEventStreamsPerClient): a browser tab is one. */
export const DEFAULT_MAX_EVENT_STREAMS_PER_CLIENT = 8;
/** How long a write to a stream may wait for its client to read before the stream is closed. */
export const DEFAULT_EVENT_STREAM_WRITE_TIMEOUT_MS = 60_000;
/** How long one stream lasts before it is ended (the browser reconnects by itself). */
export const DEFAULT_EVENT_STREAM_LIFETIME_MS = 30 * 60_000;

export interface StatusStreamOptions {
  /** The current status document, serialized. Compared as text: a push happens only when it changed. */
  snapshot: () => string;
  /** How often the document is compared while someone listens; default 1000 ms. Also the fallback without `notify`. */
  checkMs?: number;
  /** Comment line sent to idle connections so proxies do not close them; default 15 s. */
  heartbeatMs?: number;
  /** Streams open at once; one more is answered 503. Default DEFAULT_MAX_EVENT_STREAMS. */
  maxClients?: number;
  /** Streams open at once from one address; one more is answered 503. Default DEFAULT_MAX_EVENT_STREAMS_PER_CLIENT. */
  maxClientsPerAddress?: number;
  /**
   * A stream whose client has not read what was written within this long is closed (the heartbeat makes sure there
   * is always something to read). Default DEFAULT_EVENT_STREAM_WRITE_TIMEOUT_MS.
   */
  writeTimeoutMs?: number;
  /**
   * A stream is ended after this long whatever its client does; EventSource reconnects by itself (`retry: 2000`) and
   * gets the current document. Bounds how long a client that reads nothing holds a stream while the socket's buffers
   * still take the heartbeats (hours at 15 bytes a heartbeat). Default DEFAULT_EVENT_STREAM_LIFETIME_MS.
   */
  lifetimeMs?: number;
  /** Where "the cap is reached" goes, once a minute at most. */
  log?: ThrottledLog;
}

/** One open stream: whether its client is behind (a write waits for 'drain') and whether a newer document waits. */
interface Listener {
  readonly res: ServerResponse;
  readonly remote: string;
  /** Closes the stream if the client has not read by then; set while a write waits for 'drain'. */
  stalled: NodeJS.Timeout | null;
  /** A document changed while the client was behind: it gets the latest one when it catches up. */
  missed: boolean;
  /** Ends the stream at the end of its lifetime. */
  expires: NodeJS.Timeout | null;
}

/**
 * Server-Sent Events for `/v1/events`: each client gets the status document when it connects and again
 * whenever it changes (`event: status`). Changes are found by comparing the document on a timer that runs
 * only while clients are connected, and at once when the agent calls `notify()`.
 *
 * What a client that does not read can hold is bounded: once the socket's buffer is full, nothing more is written
 * to it until it drains, and then only the latest document, never the ones in between; a client that has not read
 * within `writeTimeoutMs` is closed. Streams are capped in all and per address.
 */
export class StatusStream {
  private readonly clients = new Map<ServerResponse, Listener>();
  private last = '';
  private checkTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private pending = false;
  private readonly capReached: LogThrottle | null;
  private readonly dropped: LogThrottle | null;

  constructor(private readonly options: StatusStreamOptions) {
    this.capReached = options.log ? new LogThrottle(options.log, { intervalMs: 60_000, perInterval: 1 }) : null;
    this.dropped = options.log ? new LogThrottle(options.log, { intervalMs: 60_000, perInterval: 1 }) : null;
  }

  get size(): number {
    return this.clients.size;
  }

  /** Bytes written to streams that their clients have not taken yet, over all streams. */
  get buffered(): number {
    let bytes = 0;
    for (const res of this.clients.keys()) bytes += res.writableLength;
    return bytes;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const remote = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const refusal = this.overCap(remote);
    if (refusal) {
      this.capReached?.warn({ remote, open: this.clients.size, ...refusal.fields }, `event stream refused: the cap of /v1/events streams at once is reached (${refusal.which})`);
      res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '10' }).end(`too many event streams (${refusal.which}); try again later\n`);
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      // nginx and similar proxies would otherwise hold events back in their buffers.
      'X-Accel-Buffering': 'no',
    });
    // The server's idle timeout would close a stream between heartbeats; a client that stops reading is closed by
    // writeTimeoutMs instead (see send).
    res.socket?.setTimeout(0);
    res.write('retry: 2000\n\n');
    // Clients already listening get a change first, so none of them misses one when `last` moves here.
    this.check();
    this.last = this.options.snapshot();
    const listener: Listener = { res, remote, stalled: null, missed: false, expires: null };
    this.clients.set(res, listener);
    this.send(listener, frame(this.last));
    this.startTimers();
    listener.expires = setTimeout(() => {
      // A client that is behind would not take the end either.
      if (listener.stalled) res.destroy();
      else res.end();
    }, this.options.lifetimeMs ?? DEFAULT_EVENT_STREAM_LIFETIME_MS).unref();
    res.once('close', () => {
      stopListenerTimers(listener);
      this.clients.delete(res);
      if (this.clients.size === 0) this.stopTimers();
    });
  }

  /** Something may have changed: compare soon (coalesced), push if it did. */
  notify(): void {
    if (this.pending || this.clients.size === 0) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.check();
    });
  }

  /** Ends every open stream (the server is stopping). */
  close(): void {
    for (const listener of this.clients.values()) {
      stopListenerTimers(listener);
      listener.res.end();
    }
    this.clients.clear();
    this.stopTimers();
  }

  private overCap(remote: string): { which: string; fields: Record<string, number> } | null {
    const max = this.options.maxClients ?? DEFAULT_MAX_EVENT_STREAMS;
    if (this.clients.size >= max) return { which: `all clients: ${max}`, fields: { maxEventStreams: max } };
    const perAddress = this.options.maxClientsPerAddress ?? DEFAULT_MAX_EVENT_STREAMS_PER_CLIENT;
    let fromRemote = 0;
    for (const l of this.clients.values()) if (l.remote === remote) fromRemote++;
    return fromRemote >= perAddress ? { which: `one client: ${perAddress}`, fields: { maxEventStreamsPerClient: perAddress } } : null;
  }

  /**
   * Writes unless the client is behind; a document it could not take is remembered as missed (only the latest is
   * sent when it catches up), a heartbeat is simply skipped.
   */
  private send(listener: Listener, data: string, isDocument = true): void {
    if (listener.stalled) {
      if (isDocument) listener.missed = true;
      return;
    }
    if (listener.res.write(data)) return;
    const timeoutMs = this.options.writeTimeoutMs ?? DEFAULT_EVENT_STREAM_WRITE_TIMEOUT_MS;
    listener.stalled = setTimeout(() => {
      this.dropped?.warn({ remote: listener.remote, buffered: listener.res.writableLength, writeTimeoutMs: timeoutMs }, 'event stream closed: its client read nothing of what was written to it in time');
      listener.res.destroy();
    }, timeoutMs).unref();
    listener.res.once('drain', () => {
      if (listener.stalled) clearTimeout(listener.stalled);
      listener.stalled = null;
      if (!listener.missed || !this.clients.has(listener.res)) return;
      listener.missed = false;
      this.send(listener, frame(this.last));
    });
  }

  private check(): void {
    if (this.clients.size === 0) return;
    let next: string;
    try {
      next = this.options.snapshot();
    } catch {
      // Runs from a timer: a backend that throws must not take the agent down; the next check tries again.
      return;
    }
    if (next === this.last) return;
    this.last = next;
    const data = frame(next);
    for (const listener of this.clients.values()) this.send(listener, data);
  }

  private startTimers(): void {
    if (this.checkTimer) return;
    this.checkTimer = setInterval(() => this.check(), this.options.checkMs ?? 1000).unref();
    this.heartbeatTimer = setInterval(() => {
      for (const listener of this.clients.values()) this.send(listener, ': keep-alive\n\n', false);
    }, this.options.heartbeatMs ?? 15_000).unref();
  }

  private stopTimers(): void {
    if (this.checkTimer) clearInterval(this.checkTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.checkTimer = null;
    this.heartbeatTimer = null;
  }
}

function stopListenerTimers(listener: Listener): void {
  if (listener.stalled) clearTimeout(listener.stalled);
  if (listener.expires) clearTimeout(listener.expires);
}

/** One event; the JSON is on a single line, so one `data:` line carries it. */
function frame(json: string): string {
  return `event: status\ndata: ${json}\n\n`;
}
