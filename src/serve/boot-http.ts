import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import type { Metrics } from '../observe/metrics.ts';
import { parseStatusView, withSyncHealth, type StatusView } from '../status/status-view.ts';
import { isDashboardPath, sendDashboard } from './dashboard/dashboard-route.ts';
import { StatusStream } from './dashboard/status-stream.ts';
import { readBody, sendFile, sendText } from './http/send-file.ts';
import { OPENAPI_PATH, openApiDocument } from './openapi-route.ts';

/** What the boot HTTP service asks of the agent. Small on purpose: the HTTP layer knows no lab model. */
export interface BootBackend {
  entryScript(): string;
  /** The iPXE script for a machine asking with this MAC (lower-case, colon form). */
  scriptFor(mac: string, remoteIp: string): { script: string; host?: string; answer: string };
  /** Disk path of a cached image file, or null if not in the current generation. */
  imagePath(sha256: string, remoteIp: string): string | null;
  /** A host's secret-bearing config: only to that host's own address, with its token. */
  config(host: string, name: string, token: string, remoteIp: string): { status: 'ok'; content: string } | { status: 'forbidden'; reason: string } | { status: 'missing' };
  phoneHome(token: string, fields: Record<string, string>, remoteIp: string): { status: number; message: string };
  statusJson(): unknown;
  /**
   * The status document with what the dashboard shows beyond statusJson(): site revision and rejection,
   * enclosure, labels, drift and recent events. When present it is what /v1/status and /v1/events serve.
   */
  statusView?(): StatusView;
  /** Registers a callback for "status may have changed", so /v1/events pushes at once instead of at its next check. */
  onStatusChange?(listener: () => void): void;
  /** /readyz: true once a generation is being served. Without it the server is ready when it listens. */
  ready?(): boolean;
}

export interface BootHttpOptions {
  /** Serves /metrics and counts every request by route. */
  metrics?: Metrics;
  /** How often /v1/events compares the status document while clients listen; default 1000 ms. */
  eventsCheckMs?: number;
  /** A push-webhook endpoint (signature checks live in the route). */
  webhook?: { path: string; route: (req: IncomingMessage, res: ServerResponse) => Promise<void> };
  /**
   * iPXE binaries served at /<name> (UEFI HTTP boot fetches /ipxe.efi): only these names, from this directory,
   * nothing else in it. A name that is a symlink is followed (Debian's ipxe.efi points into /boot).
   */
  ipxe?: { dir: string; names: readonly string[] };
}

const MAC_IN_PATH = /^\/v1\/boot\/([0-9a-fA-F]{2}(?:[-:][0-9a-fA-F]{2}){5})$/;
const IMAGE_PATH = /^\/images\/([0-9a-f]{64})\/[^/]+$/;
const CONFIG_PATH = /^\/v1\/hosts\/([a-z0-9-]+)\/config\/([^/]+)$/;

export function createBootHttpServer(backend: BootBackend, log: Logger, options: BootHttpOptions = {}): Server {
  let warned = false;
  const status = (): unknown =>
    statusDocument(backend, (err) => {
      if (!warned) log.warn({ err }, 'status document has an unexpected shape; served as is');
      warned = true;
    });
  const stream = new StatusStream({ snapshot: () => JSON.stringify(status()), ...(options.eventsCheckMs ? { checkMs: options.eventsCheckMs } : {}) });
  backend.onStatusChange?.(() => stream.notify());
  const ipxe = options.ipxe ? { dir: options.ipxe.dir, names: new Set(options.ipxe.names.filter((n) => IPXE_NAME.test(n))) } : undefined;
  const ctx: Context = { backend, log, metrics: options.metrics, status, stream, webhook: options.webhook, ipxe, openapi: {} };
  const server = createServer((req, res) => {
    if (options.metrics) {
      const metrics = options.metrics;
      // 'close' rather than 'finish': aborted downloads and ended event streams count too.
      res.once('close', () => metrics.countHttp(routeName(req), res.statusCode));
    }
    handle(req, res, ctx).catch((err: unknown) => {
      log.error({ err, url: redactUrl(req.url ?? '') }, 'http handler failed');
      if (!res.headersSent) sendText(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  // Event streams never go idle, so close() would wait for them forever: end them first.
  const close = server.close.bind(server);
  server.close = ((callback?: (err?: Error) => void) => {
    stream.close();
    return close(callback);
  }) as Server['close'];
  return server;
}

interface Context {
  backend: BootBackend;
  log: Logger;
  metrics: Metrics | undefined;
  status: () => unknown;
  stream: StatusStream;
  webhook: BootHttpOptions['webhook'];
  ipxe: { dir: string; names: ReadonlySet<string> } | undefined;
  openapi: { text?: string };
}

/**
 * statusView() when the backend has it, else statusJson(); either way with sync and health filled in. A
 * document that does not have the expected shape is served as the backend gave it.
 */
function statusDocument(backend: BootBackend, onMalformed: (err: unknown) => void): unknown {
  const raw = backend.statusView ? backend.statusView() : backend.statusJson();
  try {
    const filled = withSyncHealth(parseStatusView(raw, 'the agent'));
    // parseStatusView checked the shape. Every field the backend gave stays (clients may read more than the
    // view knows); only the computed sync and health are added.
    const given = raw as { hosts: Record<string, object> };
    const hosts = Object.fromEntries(Object.entries(given.hosts).map(([name, host]) => [name, { ...host, sync: filled.hosts[name]?.sync, health: filled.hosts[name]?.health }]));
    return { ...given, hosts };
  } catch (err) {
    onMalformed(err);
    return raw;
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, ctx: Context): Promise<void> {
  const { backend, log } = ctx;
  const url = new URL(req.url ?? '/', 'http://agent');
  const remote = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const path = url.pathname;
  const isRead = req.method === 'GET' || req.method === 'HEAD';

  if (isRead && path === '/boot.ipxe') return sendText(res, 200, backend.entryScript());
  if (ctx.webhook && path === ctx.webhook.path) return ctx.webhook.route(req, res);

  const mac = MAC_IN_PATH.exec(path);
  if (isRead && mac?.[1]) {
    const answer = backend.scriptFor(mac[1].replace(/-/g, ':').toLowerCase(), remote);
    log.info({ mac: mac[1], host: answer.host, answer: answer.answer, remote }, 'ipxe script served');
    return sendText(res, 200, answer.script);
  }

  if (isRead && ctx.ipxe?.names.has(path.slice(1))) return sendIpxe(req, res, path.slice(1), ctx.ipxe.dir, remote, log);

  const image = IMAGE_PATH.exec(path);
  if (isRead && image?.[1]) {
    const file = backend.imagePath(image[1], remote);
    if (file && (await sendFile(req, res, file))) return;
    return sendText(res, 404, 'no such image file\n');
  }

  const config = CONFIG_PATH.exec(path);
  if (isRead && config?.[1] && config[2]) {
    const result = backend.config(config[1], decodeURIComponent(config[2]), url.searchParams.get('token') ?? '', remote);
    if (result.status === 'ok') return sendText(res, 200, result.content, 'application/yaml');
    log.warn({ host: config[1], remote, status: result.status }, `config request refused: ${result.status === 'forbidden' ? result.reason : 'no such config'}`);
    return sendText(res, result.status === 'forbidden' ? 403 : 404, `${result.status}\n`);
  }

  if (req.method === 'POST' && path === '/v1/phone-home') {
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7).trim() : (url.searchParams.get('token') ?? '');
    const body = await readBody(req);
    const fields = Object.fromEntries(new URLSearchParams(body));
    const result = backend.phoneHome(token, fields, remote);
    return sendText(res, result.status, `${result.message}\n`);
  }

  if (isRead && path === OPENAPI_PATH) return sendText(res, 200, openApiDocument(ctx.openapi), 'application/json');
  if (isRead && path === '/v1/status') return sendText(res, 200, `${JSON.stringify(ctx.status(), null, 2)}\n`, 'application/json');
  if (req.method === 'GET' && path === '/v1/events') return ctx.stream.handle(req, res);
  if (isRead && isDashboardPath(path)) {
    sendDashboard(path, req.method ?? 'GET', res);
    return;
  }
  if (isRead && path === '/metrics') {
    if (!ctx.metrics) return sendText(res, 404, 'metrics are not enabled\n');
    return sendText(res, 200, await ctx.metrics.text(), ctx.metrics.contentType);
  }
  if (isRead && path === '/healthz') return sendText(res, 200, 'ok\n');
  if (isRead && path === '/readyz') {
    const ready = backend.ready?.() ?? true;
    return sendText(res, ready ? 200 : 503, ready ? 'ready\n' : 'not ready: no generation is being served yet\n');
  }
  sendText(res, 404, 'not found\n');
}

/** A plain file name: what an iPXE binary may be called (no separators, no leading dot). */
const IPXE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

async function sendIpxe(req: IncomingMessage, res: ServerResponse, name: string, dir: string, remote: string, log: Logger): Promise<void> {
  res.once('close', () => {
    const fields = { file: name, remote, status: res.statusCode, complete: res.writableFinished };
    if (res.statusCode < 400) log.info(fields, 'ipxe binary served over http');
    else log.warn({ ...fields, dir }, 'ipxe binary requested but not found; UEFI HTTP boot cannot start iPXE');
  });
  if (await sendFile(req, res, join(dir, name))) return;
  sendText(res, 404, 'no such iPXE binary\n');
}

const ROUTES: Array<[RegExp, string]> = [
  [/^\/boot\.ipxe$/, 'boot.ipxe'],
  [MAC_IN_PATH, 'boot-script'],
  [IMAGE_PATH, 'image'],
  [/^\/[^/]+\.(efi|kpxe)$/, 'ipxe'],
  [CONFIG_PATH, 'config'],
  [/^\/v1\/phone-home$/, 'phone-home'],
  [/^\/v1\/webhook$/, 'webhook'],
  [/^\/v1\/openapi\.json$/, 'openapi'],
  [/^\/v1\/status$/, 'status'],
  [/^\/v1\/events$/, 'events'],
  [/^\/dashboard(\/.*)?$/, 'dashboard'],
  [/^\/metrics$/, 'metrics'],
  [/^\/(healthz|readyz)$/, 'health'],
];

/** A bounded label for metrics: the route, never the path (MACs, hashes and host names would each be a series). */
function routeName(req: IncomingMessage): string {
  const path = new URL(req.url ?? '/', 'http://agent').pathname;
  return ROUTES.find(([re]) => re.test(path))?.[1] ?? 'other';
}

function redactUrl(url: string): string {
  return url.replace(/token=[^&]*/g, 'token=[redacted]');
}

export async function listen(server: Server, address: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}
