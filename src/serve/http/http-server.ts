// The HTTP server every forseti HTTP service runs on (the agent's boot HTTP, `serve http`): what a client can do
// to it is bounded and every refusal is an answer, never a stack trace.
//   - connections: at most `maxConnections` in all and `maxConnectionsPerClient` from one address; a connection over
//     either cap gets 503 to its first request and is closed; one log line per interval says the cap was reached.
//     What the caps are kind to: at the cap in all, a new connection takes the place of the oldest one that has had
//     no request in progress for `headlessGraceMs` (no whole head sent yet, or idle between kept-alive requests: a
//     client that is there sends its head within a round trip, so heads held open are what a flood holds, while a
//     younger connection's head is most likely on its way: closing it would fail a machine that did nothing wrong),
//     and connections from the addresses `reserved` names (the lab's hosts) are never refused by the cap in all, only
//     by the one per address, so no flood from other addresses keeps a host from its script;
//   - slow clients: the request head must arrive within `headersTimeoutMs`, the whole request within
//     `requestTimeoutMs` (408), an idle connection is closed after `idleTimeoutMs`;
//   - malformed requests: a bad request line or header (400), a header block over `maxHeaderBytes` (431), a target
//     with a bad percent-escape (400), a method not served (405), a declared body over the
//     route's limit (413); each is answered and logged in one line, without a stack;
//   - a handler that throws: 500 (or the 4xx its error carries), the client sees no stack, the log one line.
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { LogThrottle } from './log-throttle.ts';

export interface HttpLimits {
  maxConnections: number;
  maxConnectionsPerClient: number;
  /** How long a connection must have had no request in progress before the cap in all may close it to make room. */
  headlessGraceMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaderBytes: number;
  /** A request declaring a larger body is refused (413) before any handler runs, unless its route says otherwise. */
  maxBodyBytes: number;
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = {
  maxConnections: 512,
  maxConnectionsPerClient: 32,
  headlessGraceMs: 1_000,
  headersTimeoutMs: 15_000,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 120_000,
  keepAliveTimeoutMs: 5_000,
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: 64 * 1024,
};

export interface HttpLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Thrown by a handler for an answer other than 500; `message` is what the client and the log are told. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export interface HttpServerOptions {
  log: HttpLog;
  limits?: Partial<HttpLimits>;
  /** Methods served at all; any other gets 405. Default GET, HEAD, POST. */
  methods?: readonly string[];
  /** The body limit of a route (by decoded path), when it is not `limits.maxBodyBytes`. */
  bodyLimit?: (path: string) => number | undefined;
  /** Called for every request first, refused or not (metrics). */
  onRequest?: (req: IncomingMessage, res: ServerResponse) => void;
  /** How often a cap or a flood of malformed requests is logged again; default 60 s. */
  logIntervalMs?: number;
  /**
   * Addresses the cap in all does not apply to (the lab's hosts, at their reserved addresses): they are held to the
   * cap per address only. Asked only when the cap in all is reached.
   */
  reserved?: (address: string) => boolean;
}

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** Malformed requests logged one line each, up to this many per interval (a flood is counted, not logged). */
const MALFORMED_LINES_PER_INTERVAL = 50;
/** A connection over a cap waits this long for its request (to be told 503) before it is closed. */
const REFUSED_GRACE_MS = 5_000;

export function createHttpServer(handler: HttpHandler, options: HttpServerOptions): Server {
  const limits = { ...DEFAULT_HTTP_LIMITS, ...options.limits };
  const methods = options.methods ?? ['GET', 'HEAD', 'POST'];
  const log = options.log;
  const intervalMs = options.logIntervalMs ?? 60_000;
  const refusals = new LogThrottle(log, { intervalMs, perInterval: MALFORMED_LINES_PER_INTERVAL });
  const capReached = {
    total: new LogThrottle(log, { intervalMs, perInterval: 1 }),
    client: new LogThrottle(log, { intervalMs, perInterval: 1 }),
    evicted: new LogThrottle(log, { intervalMs, perInterval: 1 }),
  };
  const overCap = new WeakSet<Socket>();
  /**
   * Admitted connections with no request in progress (no whole head yet, or idle after an answer), longest so first:
   * what the cap in all may close; each with what counts it out of the caps and since when it has been so.
   */
  const headless = new Map<Socket, { countOut: () => void; since: number }>();
  /** What counts each admitted connection out of the caps. */
  const admitted = new WeakMap<Socket, () => void>();
  /** Requests each connection has in progress (more than one when pipelined). */
  const inProgress = new WeakMap<Socket, number>();

  const refuse = (req: IncomingMessage, res: ServerResponse, path: string, err: HttpError): void => {
    refusals.warn({ remote: remoteOf(req.socket), method: req.method, path: shorten(path), status: err.status }, `http request refused: ${err.message}`);
    answer(res, err.status, `${err.message}\n`, err.headers);
  };

  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often the timeouts above are checked; Node's default (30 s) would let a slow client stay much longer.
      connectionsCheckingInterval: Math.max(250, Math.min(5_000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    (req, res) => {
      const socket = req.socket;
      headless.delete(socket);
      const countOut = admitted.get(socket);
      inProgress.set(socket, (inProgress.get(socket) ?? 0) + 1);
      // Answered (and any pipelined request after it) and kept alive: idle again until its next head.
      res.once('finish', () => {
        const left = (inProgress.get(socket) ?? 1) - 1;
        inProgress.set(socket, left);
        if (left === 0 && countOut && !socket.destroyed) headless.set(socket, { countOut, since: performance.now() });
      });
      options.onRequest?.(req, res);
      if (overCap.has(req.socket)) return answer(res, 503, 'too many connections; try again later\n', { 'Retry-After': '5', Connection: 'close' });
      const target = originForm(req.url ?? '');
      if (target instanceof HttpError) return refuse(req, res, req.url ?? '', target);
      req.url = target.url;
      const method = req.method ?? '';
      if (!methods.includes(method)) return refuse(req, res, target.path, new HttpError(405, `method ${method} is not served`, { Allow: methods.join(', ') }));
      const limit = options.bodyLimit?.(target.path) ?? limits.maxBodyBytes;
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > limit) return refuse(req, res, target.path, new HttpError(413, `request body of ${declared} bytes is over the limit of ${limit}`, { Connection: 'close' }));
      let pending: void | Promise<void>;
      try {
        pending = handler(req, res);
      } catch (err) {
        return failed(req, res, target.path, err);
      }
      if (pending) pending.catch((err: unknown) => failed(req, res, target.path, err));
    },
  );
  server.timeout = limits.idleTimeoutMs;

  const failed = (req: IncomingMessage, res: ServerResponse, path: string, err: unknown): void => {
    const status = statusOf(err);
    if (status < 500) return refuse(req, res, path, err instanceof HttpError ? err : new HttpError(status, STATUS_CODES[status] ?? 'refused'));
    const error = err instanceof Error ? { type: err.name, message: err.message, stack: err.stack } : { message: String(err) };
    log.error({ remote: remoteOf(req.socket), method: req.method, path: shorten(path), status, err: error }, 'http handler failed');
    if (res.headersSent) res.destroy();
    else answer(res, 500, 'internal error\n', { Connection: 'close' });
  };

  const open = { total: 0, refused: 0, byClient: new Map<string, number>() };
  /** Closes the oldest admitted connection with no request in progress for the grace; false when there is none. */
  const evictHeadless = (newcomer: string): boolean => {
    const [first] = headless;
    if (first === undefined || performance.now() - first[1].since < limits.headlessGraceMs) return false;
    const [oldest, { countOut }] = first;
    // Counted out now: destroy() emits 'close' only on a later tick.
    countOut();
    capReached.evicted.warn({ remote: newcomer, closed: remoteOf(oldest), maxConnections: limits.maxConnections }, `http connection closed: the cap of connections at once is reached (all clients: ${limits.maxConnections}); the oldest with no request in progress made room for a new one`);
    oldest.destroy();
    return true;
  };
  server.on('connection', (socket: Socket) => {
    const client = remoteOf(socket);
    const fromClient = open.byClient.get(client) ?? 0;
    const perClientFull = fromClient >= limits.maxConnectionsPerClient;
    // The cap in all: make room by closing a headless connection (the socket being closed is counted out at once),
    // or let a reserved address in. Asked in this order: a host does not need room made for it.
    const totalFull = !perClientFull && open.total >= limits.maxConnections && !options.reserved?.(client) && !evictHeadless(client);
    if (perClientFull || totalFull) {
      // Past twice the cap, connections are closed at once instead of waiting to be told 503.
      if (open.refused >= limits.maxConnections) {
        capReached.total.warn({ remote: client, maxConnections: limits.maxConnections }, 'http connection dropped: twice the cap of connections at once are open');
        socket.destroy();
        return;
      }
      overCap.add(socket);
      open.refused++;
      socket.once('close', () => open.refused--);
      socket.setTimeout(REFUSED_GRACE_MS);
      const which = totalFull ? `all clients: ${limits.maxConnections}` : `one client: ${limits.maxConnectionsPerClient}`;
      capReached[totalFull ? 'total' : 'client'].warn({ remote: client, open: open.total, fromClient, maxConnections: limits.maxConnections, maxConnectionsPerClient: limits.maxConnectionsPerClient }, `http connection refused: the cap of connections at once is reached (${which})`);
      return;
    }
    open.total++;
    open.byClient.set(client, fromClient + 1);
    let counted = true;
    const countOut = (): void => {
      headless.delete(socket);
      if (!counted) return;
      counted = false;
      open.total--;
      const left = (open.byClient.get(client) ?? 1) - 1;
      if (left > 0) open.byClient.set(client, left);
      else open.byClient.delete(client);
    };
    headless.set(socket, { countOut, since: performance.now() });
    admitted.set(socket, countOut);
    socket.once('close', countOut);
  });

  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) => {
    const responding = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable || responding?.headersSent) {
      socket.destroy();
      return;
    }
    const { status, reason } = clientErrorAnswer(err);
    refusals.warn({ remote: remoteOf(socket), code: err.code, status }, `http request refused: ${reason}`);
    const headers: Record<string, string> = status === 405 ? { Allow: methods.join(', ') } : {};
    socket.end(rawResponse(status, `${reason}\n`, headers), () => socket.destroy());
  });
  // CONNECT is not served; without a listener Node would drop the connection without an answer or a log line.
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    refusals.warn({ remote: remoteOf(socket), method: 'CONNECT', status: 405 }, 'http request refused: method CONNECT is not served');
    socket.end(rawResponse(405, 'method CONNECT is not served\n', { Allow: methods.join(', ') }), () => socket.destroy());
  });
  return server;
}

/**
 * The request target as origin-form (RFC 9112 section 3.2): a path that starts with one `/` and whose
 * percent-escapes decode; an absolute-form target is taken by its path and query. What a decoded path may hold is
 * each route's business.
 */
export function originForm(target: string): { url: string; path: string } | HttpError {
  let url = target;
  if (/^https?:\/\//i.test(target)) {
    try {
      const parsed = new URL(target);
      url = `${parsed.pathname}${parsed.search}`;
    } catch {
      return new HttpError(400, 'malformed request target');
    }
  }
  if (!url.startsWith('/')) return new HttpError(400, 'the request target must be a path');
  if (url.startsWith('//')) return new HttpError(400, 'the request path must not begin with //');
  const query = url.indexOf('?');
  const rawPath = query < 0 ? url : url.slice(0, query);
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return new HttpError(400, 'the request path has a malformed percent-escape');
  }
  return { url, path };
}

function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof URIError) return 400;
  const status = typeof err === 'object' && err !== null ? (err as { status?: unknown; statusCode?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode : undefined;
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500;
}

/** A request token (RFC 9110 section 5.6.2) followed by a space: a method we do not know, rather than garbage. */
const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ /;

function clientErrorAnswer(err: NodeJS.ErrnoException & { rawPacket?: Buffer }): { status: number; reason: string } {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, reason: 'request header fields too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return { status: 408, reason: 'the request did not arrive in time' };
    case 'HPE_INVALID_METHOD':
      if (METHOD_TOKEN.test(err.rawPacket?.subarray(0, 64).toString('latin1') ?? '')) return { status: 405, reason: 'method is not served' };
      return { status: 400, reason: 'malformed request' };
    case 'HPE_INVALID_URL':
      return { status: 400, reason: 'malformed request target' };
    default:
      return { status: 400, reason: `malformed request${err.code ? ` (${err.code})` : ''}` };
  }
}

function rawResponse(status: number, body: string, headers: Record<string, string>): string {
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`, 'Content-Type: text/plain; charset=utf-8', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

function answer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function remoteOf(socket: Socket): string {
  return (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
}

/** Paths in log lines: bounded, query dropped (tokens travel there). */
function shorten(path: string): string {
  const bare = path.split('?')[0] ?? '';
  return bare.length > 200 ? `${bare.slice(0, 200)}…` : bare;
}
