import type { IncomingMessage, ServerResponse } from 'node:http';
import { LogThrottle, type ThrottledLog } from '../http/log-throttle.ts';

/** Streams open at once unless the agent configuration says otherwise (serve.http.maxEventStreams). */
export const DEFAULT_MAX_EVENT_STREAMS = 32;

export interface StatusStreamOptions {
  /** The current status document, serialized. Compared as text: a push happens only when it changed. */
  snapshot: () => string;
  /** How often the document is compared while someone listens; default 1000 ms. Also the fallback without `notify`. */
  checkMs?: number;
  /** Comment line sent to idle connections so proxies do not close them; default 15 s. */
  heartbeatMs?: number;
  /** Streams open at once; one more is answered 503. Default DEFAULT_MAX_EVENT_STREAMS. */
  maxClients?: number;
  /** Where "the cap is reached" goes, once a minute at most. */
  log?: ThrottledLog;
}

/**
 * Server-Sent Events for `/v1/events`: each client gets the status document when it connects and again
 * whenever it changes (`event: status`). Changes are found by comparing the document on a timer that runs
 * only while clients are connected, and at once when the agent calls `notify()`.
 */
export class StatusStream {
  private readonly clients = new Set<ServerResponse>();
  private last = '';
  private checkTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private pending = false;
  private readonly capReached: LogThrottle | null;

  constructor(private readonly options: StatusStreamOptions) {
    this.capReached = options.log ? new LogThrottle(options.log, { intervalMs: 60_000, perInterval: 1 }) : null;
  }

  get size(): number {
    return this.clients.size;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const max = this.options.maxClients ?? DEFAULT_MAX_EVENT_STREAMS;
    if (this.clients.size >= max) {
      const remote = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
      this.capReached?.warn({ remote, open: this.clients.size, maxEventStreams: max }, 'event stream refused: the cap of /v1/events streams at once is reached');
      res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '10' }).end(`too many event streams (${max}); try again later\n`);
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      // nginx and similar proxies would otherwise hold events back in their buffers.
      'X-Accel-Buffering': 'no',
    });
    res.socket?.setTimeout(0);
    res.write('retry: 2000\n\n');
    // Clients already listening get a change first, so none of them misses one when `last` moves here.
    this.check();
    this.last = this.options.snapshot();
    res.write(frame(this.last));
    this.clients.add(res);
    this.startTimers();
    req.on('close', () => {
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
    for (const res of this.clients) res.end();
    this.clients.clear();
    this.stopTimers();
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
    for (const res of this.clients) res.write(data);
  }

  private startTimers(): void {
    if (this.checkTimer) return;
    this.checkTimer = setInterval(() => this.check(), this.options.checkMs ?? 1000).unref();
    this.heartbeatTimer = setInterval(() => {
      for (const res of this.clients) res.write(': keep-alive\n\n');
    }, this.options.heartbeatMs ?? 15_000).unref();
  }

  private stopTimers(): void {
    if (this.checkTimer) clearInterval(this.checkTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.checkTimer = null;
    this.heartbeatTimer = null;
  }
}

/** One event; the JSON is on a single line, so one `data:` line carries it. */
function frame(json: string): string {
  return `event: status\ndata: ${json}\n\n`;
}
