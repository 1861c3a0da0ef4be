import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import type { Metrics } from '../observe/metrics.ts';
import { parseStatusView, withSyncHealth, type StatusView } from '../status/status-view.ts';
import { DashboardAssets, isDashboardPath } from './dashboard/dashboard-route.ts';
import { StatusStream } from './dashboard/status-stream.ts';
import { createHttpServer, type HttpLimits } from './http/http-server.ts';
import { ChunkPool, sendFile, sendText } from './http/send-file.ts';
import { OPENAPI_PATH, openApiDocument } from './openapi-route.ts';
import { DEFAULT_MAX_INVENTORY_BYTES } from '../discover/inventory-report.ts';

/** What a machine asking for its iPXE script gets; `host`, `answer` and `refused` (why it got no script of its own) are for the log. */
export interface BootScript {
  script: string;
  host?: string;
  answer: string;
  refused?: string;
  /** The host's own script (install, chain, wipe), with its token: its fetch is the host's `script` step. */
  ownScript?: boolean;
}

/** What the boot HTTP service asks of the agent. Small on purpose: the HTTP layer knows no lab model. */
/** A file only its host may read (its config, its NoCloud seed), or why this request gets none. */
export type SecretFileAnswer = { status: 'ok'; content: string } | { status: 'forbidden'; reason: string } | { status: 'missing' };

export interface BootBackend {
  entryScript(): string;
  /** The iPXE script for a machine asking with this MAC (lower-case, colon form), from this address. */
  scriptFor(mac: string, remoteIp: string): BootScript;
  /** Disk path of a cached image file, or null if not in the current generation. */
  imagePath(sha256: string, remoteIp: string): string | null;
  /** A host's config: only to that host's own address, with the token of its provisioning attempt. */
  config(host: string, name: string, token: string, remoteIp: string): SecretFileAnswer;
  /** cloud-init NoCloud seed files of a host (user-data, meta-data, vendor-data), the token in the path. */
  nocloud?(host: string, file: string, token: string, remoteIp: string): SecretFileAnswer;
  /** The booted OS reports in: `token` from its kernel command line, `fields` from the form body. */
  phoneHome(token: string, fields: Record<string, string>, remoteIp: string): { status: number; message: string };
  /** An unknown machine's inventory report (discovery): `token` from its kernel command line, the JSON body as sent. */
  inventory?(mac: string, token: string, body: Uint8Array, remoteIp: string): Promise<{ status: number; message: string; retryAfter?: number }>;
  /** An installer's progress report (one JSON event), the attempt's token from the path; `target`: the installed system's. */
  installerReport?(token: string, target: boolean, body: string, remoteIp: string): { status: number; message: string };
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
  /** /healthz: why the service is wedged (503), or null (200). */
  health?(): string | null;
  /**
   * Whether the address is a host's reserved one: its connections are never refused by the cap of connections in
   * all (only by the one per address), so a flood from elsewhere cannot keep a host from its script.
   */
  isHostAddress?(remoteIp: string): boolean;
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
  /** Connection caps, timeouts and request limits (src/serve/http/http-server.ts); defaults for what is absent. */
  limits?: Partial<HttpLimits>;
  /** At most this many /v1/events streams at once (default in status-stream.ts). */
  maxEventStreams?: number;
  /** Applied to the status document as /v1/status and /v1/events send it: error texts may carry a secret. */
  redact?: <T>(value: T) => T;
  /** At most this many /v1/events streams at once from one address (default in status-stream.ts). */
  maxEventStreamsPerClient?: number;
}

const MAC_IN_PATH = /^\/v1\/boot\/([0-9a-fA-F]{2}(?:[-:][0-9a-fA-F]{2}){5})$/;
const IMAGE_PATH = /^\/images\/([0-9a-f]{64})\/[^/]+$/;
const CONFIG_PATH = /^\/v1\/hosts\/([a-z0-9-]+)\/config\/([^/]+)$/;
const NOCLOUD_PATH = /^\/v1\/hosts\/([a-z0-9-]+)\/nocloud\/([^/]{1,256})\/([a-z-]+)$/;
const PHONE_HOME_PATH = '/v1/phone-home';
const INVENTORY_PATH = /^\/v1\/discovery\/inventory\/([0-9a-fA-F]{2}(?:[-:][0-9a-fA-F]{2}){5})$/;
/** curtin, subiquity and cloud-init POST one JSON event per request here; they send no headers, so the token is in the path. */
const REPORT_PATH = /^\/v1\/report\/([^/]{1,256})(\/target)?$/;
/** curtin may attach its install log (base64) to a finish event. */
export const REPORT_MAX_BYTES = 4 * 1024 * 1024;
/** A phone-home is a few form fields; anything bigger is refused (413) before it is read whole. */
export const PHONE_HOME_MAX_BYTES = 64 * 1024;

export function createBootHttpServer(backend: BootBackend, log: Logger, options: BootHttpOptions = {}): Server {
  let warned = false;
  const redact = options.redact ?? ((value) => value);
  const status = (): unknown =>
    redact(
      statusDocument(backend, (err) => {
        if (!warned) log.warn({ err }, 'status document has an unexpected shape; served as is');
        warned = true;
      }),
    );
  const stream = new StatusStream({
    snapshot: () => JSON.stringify(status()),
    log,
    ...(options.eventsCheckMs ? { checkMs: options.eventsCheckMs } : {}),
    ...(options.maxEventStreams ? { maxClients: options.maxEventStreams } : {}),
    ...(options.maxEventStreamsPerClient ? { maxClientsPerAddress: options.maxEventStreamsPerClient } : {}),
  });
  backend.onStatusChange?.(() => stream.notify());
  const ipxe = options.ipxe ? { dir: options.ipxe.dir, names: new Set(options.ipxe.names.filter((n) => IPXE_NAME.test(n))) } : undefined;
  const ctx: Context = { backend, log, metrics: options.metrics, status, stream, webhook: options.webhook, ipxe, openapi: {}, dashboard: new DashboardAssets(), chunks: new ChunkPool() };
  const metrics = options.metrics;
  // Malformed requests, caps and a handler that throws are answered there, each in one log line.
  const server = createHttpServer((req, res) => handle(req, res, ctx), {
    log,
    ...(options.limits ? { limits: options.limits } : {}),
    // The webhook reads its body against its own limit (webhook.maxBodyBytes).
    bodyLimit: (path) => (options.webhook && path === options.webhook.path ? Number.POSITIVE_INFINITY : INVENTORY_PATH.test(path) ? DEFAULT_MAX_INVENTORY_BYTES : REPORT_PATH.test(path) ? REPORT_MAX_BYTES : undefined),
    ...(backend.isHostAddress ? { reserved: (address: string) => backend.isHostAddress?.(address) === true } : {}),
    // 'close' rather than 'finish': aborted downloads and ended event streams count too.
    ...(metrics ? { onRequest: (req: IncomingMessage, res: ServerResponse) => void res.once('close', () => metrics.countHttp(routeName(req), res.statusCode)) } : {}),
  });
  // Event streams never go idle, so close() would wait for them forever: end them first.
  const close = server.close.bind(server);
  server.close = ((callback?: (err?: Error) => void) => {
    stream.close();
    return close(callback);
  }) as Server['close'];
  return server;
}

interface Context {
  /** Spare read buffers of this server's file responses. */
  chunks: ChunkPool;
  backend: BootBackend;
  log: Logger;
  metrics: Metrics | undefined;
  status: () => unknown;
  stream: StatusStream;
  webhook: BootHttpOptions['webhook'];
  ipxe: { dir: string; names: ReadonlySet<string> } | undefined;
  openapi: { text?: string };
  dashboard: DashboardAssets;
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
  const remote = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const url = requestUrl(req);
  if (!url) return refuse(res, log, 400, { remote, url: redactUrl(req.url ?? '') }, 'malformed request target');
  const path = url.pathname;
  const isRead = req.method === 'GET' || req.method === 'HEAD';

  if (isRead && path === '/boot.ipxe') return sendText(res, 200, backend.entryScript());
  if (ctx.webhook && path === ctx.webhook.path) return ctx.webhook.route(req, res);

  const mac = MAC_IN_PATH.exec(path);
  if (isRead && mac?.[1]) {
    const answer = backend.scriptFor(mac[1].replace(/-/g, ':').toLowerCase(), remote);
    const fields = { mac: mac[1], host: answer.host, answer: answer.answer, remote };
    if (answer.refused) log.warn({ ...fields, reason: answer.refused }, 'ipxe script refused');
    else log.info(fields, 'ipxe script served');
    return sendText(res, 200, answer.script);
  }

  if (isRead && ctx.ipxe?.names.has(path.slice(1))) return sendIpxe(req, res, path.slice(1), ctx.ipxe.dir, remote, log, ctx.chunks);

  const image = IMAGE_PATH.exec(path);
  if (isRead && image?.[1]) {
    const file = backend.imagePath(image[1], remote);
    if (file && (await sendFile(req, res, file, undefined, { chunks: ctx.chunks }))) return;
    return sendText(res, 404, 'no such image file\n');
  }

  const config = CONFIG_PATH.exec(path);
  if (isRead && config?.[1] && config[2]) {
    const name = decodedName(config[2]);
    if (name === null) return refuse(res, log, 400, { host: config[1], remote }, 'config request refused: the name is not valid percent-encoding');
    const result = backend.config(config[1], name, url.searchParams.get('token') ?? '', remote);
    return sendSecretFile(res, log, result, 'application/yaml', { host: config[1], remote }, 'config');
  }

  const nocloud = NOCLOUD_PATH.exec(path);
  if (isRead && nocloud?.[1] && nocloud[2] && nocloud[3] && backend.nocloud) {
    const result = backend.nocloud(nocloud[1], nocloud[3], nocloud[2], remote);
    // cloud-init also asks for an optional network-config (util.read_seeded); its 404 is the normal answer.
    const expected = result.status === 'missing' && nocloud[3] === 'network-config';
    return sendSecretFile(res, log, result, 'text/plain', { host: nocloud[1], file: nocloud[3], remote }, 'NoCloud seed file', expected);
  }

  if (req.method === 'POST' && path === PHONE_HOME_PATH) {
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7).trim() : (url.searchParams.get('token') ?? '');
    const body = await bodyUpTo(req, PHONE_HOME_MAX_BYTES);
    if (body === 'aborted') {
      log.info({ remote }, 'phone-home ended by the client before its body was complete');
      return;
    }
    if (body === 'too-large') {
      res.setHeader('Connection', 'close');
      return refuse(res, log, 413, { remote, limit: PHONE_HOME_MAX_BYTES }, 'phone-home refused: body over the limit');
    }
    const result = backend.phoneHome(token, Object.fromEntries(new URLSearchParams(body)), remote);
    return sendText(res, result.status, `${result.message}\n`);
  }

  const inventory = INVENTORY_PATH.exec(path);
  if (req.method === 'POST' && inventory?.[1]) {
    const auth = req.headers.authorization ?? '';
    const body = await bytesUpTo(req, DEFAULT_MAX_INVENTORY_BYTES);
    if (body === 'aborted') return log.info({ remote }, 'inventory report ended by the client before its body was complete');
    if (body === 'too-large') {
      res.setHeader('Connection', 'close');
      return refuse(res, log, 413, { remote, limit: DEFAULT_MAX_INVENTORY_BYTES }, 'inventory report refused: body over the limit');
    }
    const result = backend.inventory ? await backend.inventory(inventory[1], auth.startsWith('Bearer ') ? auth.slice(7).trim() : '', body, remote) : { status: 404, message: 'discovery is not enabled' };
    if (result.retryAfter !== undefined) res.setHeader('Retry-After', String(result.retryAfter));
    return sendText(res, result.status, `${result.message}\n`);
  }

  const report = REPORT_PATH.exec(path);
  if (req.method === 'POST' && report?.[1] && backend.installerReport) {
    const body = await bodyUpTo(req, REPORT_MAX_BYTES);
    if (body === 'aborted') return;
    if (body === 'too-large') {
      res.setHeader('Connection', 'close');
      return refuse(res, log, 413, { remote, limit: REPORT_MAX_BYTES }, 'installer report refused: body over the limit');
    }
    const result = backend.installerReport(report[1], report[2] !== undefined, body, remote);
    return sendText(res, result.status, `${result.message}\n`);
  }

  const allowed = bootRouteMethods(path);
  if (allowed && !allowed.includes(req.method ?? '')) {
    res.setHeader('Allow', allowed.join(', '));
    return refuse(res, log, 405, { remote, method: req.method, route: routeOf(path) }, 'boot request refused: method not allowed');
  }

  if (isRead && path === OPENAPI_PATH) return sendText(res, 200, openApiDocument(ctx.openapi), 'application/json');
  if (isRead && path === '/v1/status') return sendText(res, 200, `${JSON.stringify(ctx.status(), null, 2)}\n`, 'application/json');
  if (req.method === 'GET' && path === '/v1/events') return ctx.stream.handle(req, res);
  if (isRead && isDashboardPath(path)) {
    ctx.dashboard.send(path, req.method ?? 'GET', res);
    return;
  }
  if (isRead && path === '/metrics') {
    if (!ctx.metrics) return sendText(res, 404, 'metrics are not enabled\n');
    return sendText(res, 200, await ctx.metrics.text(), ctx.metrics.contentType);
  }
  if (isRead && path === '/healthz') {
    const problem = backend.health?.() ?? null;
    return sendText(res, problem ? 503 : 200, problem ? `unhealthy: ${problem}\n` : 'ok\n');
  }
  if (isRead && path === '/readyz') {
    const ready = backend.ready?.() ?? true;
    return sendText(res, ready ? 200 : 503, ready ? 'ready\n' : 'not ready: no generation is being served yet\n');
  }
  sendText(res, 404, 'not found\n');
}

/** A plain file name: what an iPXE binary may be called (no separators, no leading dot). */
const IPXE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

async function sendIpxe(req: IncomingMessage, res: ServerResponse, name: string, dir: string, remote: string, log: Logger, chunks: ChunkPool): Promise<void> {
  res.once('close', () => {
    const fields = { file: name, remote, status: res.statusCode, complete: res.writableFinished };
    if (res.statusCode < 400) log.info(fields, 'ipxe binary served over http');
    else log.warn({ ...fields, dir }, 'ipxe binary requested but not found; UEFI HTTP boot cannot start iPXE');
  });
  if (await sendFile(req, res, join(dir, name), undefined, { chunks })) return;
  sendText(res, 404, 'no such iPXE binary\n');
}

const ROUTES: Array<[RegExp, string]> = [
  [/^\/boot\.ipxe$/, 'boot.ipxe'],
  [MAC_IN_PATH, 'boot-script'],
  [IMAGE_PATH, 'image'],
  [/^\/[^/]+\.(efi|kpxe)$/, 'ipxe'],
  [CONFIG_PATH, 'config'],
  [NOCLOUD_PATH, 'nocloud'],
  [/^\/v1\/phone-home$/, 'phone-home'],
  [INVENTORY_PATH, 'discovery-inventory'],
  [REPORT_PATH, 'installer-report'],
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
  return routeOf(requestUrl(req)?.pathname ?? '');
}

function routeOf(path: string): string {
  return ROUTES.find(([re]) => re.test(path))?.[1] ?? 'other';
}

/** The methods a boot route answers; undefined for paths that are not boot routes. */
function bootRouteMethods(path: string): readonly string[] | undefined {
  if (path === PHONE_HOME_PATH || INVENTORY_PATH.test(path) || REPORT_PATH.test(path)) return ['POST'];
  return [MAC_IN_PATH, IMAGE_PATH, CONFIG_PATH, NOCLOUD_PATH].some((re) => re.test(path)) ? ['GET', 'HEAD'] : undefined;
}

/** The request target as a URL; null when it is not one (an absolute-form target with a bad host, say). */
function requestUrl(req: IncomingMessage): URL | null {
  try {
    return new URL(req.url ?? '/', 'http://agent');
  } catch {
    return null;
  }
}

/** A config name from the path; null when its %-escapes are not valid UTF-8 (`%E0%A4%A`). */
function decodedName(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

/** A client error: one warn line with the reason (never a stack trace), and the status with the reason as body. */
/** A secret file, or 403 / 404 with a warn line saying why (a debug line when the 404 is an `expected` ask). */
function sendSecretFile(res: ServerResponse, log: Logger, result: SecretFileAnswer, type: string, fields: Record<string, unknown>, what: string, expected = false): void {
  if (result.status === 'ok') return sendText(res, 200, result.content, type);
  const line = `${what} request refused: ${result.status === 'forbidden' ? result.reason : `no such ${what}`}`;
  if (expected) log.debug({ ...fields, status: result.status }, line);
  else log.warn({ ...fields, status: result.status }, line);
  return sendText(res, result.status === 'forbidden' ? 403 : 404, `${result.status}\n`);
}

function refuse(res: ServerResponse, log: Logger, status: number, fields: Record<string, unknown>, reason: string): void {
  log.warn({ ...fields, status }, reason);
  sendText(res, status, `${reason}\n`);
}

/**
 * The request body as text, at most `limit` bytes: 'too-large' as soon as it (or its declared Content-Length)
 * passes the limit, the rest then read and dropped; 'aborted' when the client goes away first.
 */
async function bodyUpTo(req: IncomingMessage, limit: number): Promise<string | 'too-large' | 'aborted'> {
  const bytes = await bytesUpTo(req, limit);
  return typeof bytes === 'string' ? bytes : bytes.toString('utf8');
}

/** The request body as bytes, bounded as bodyUpTo's. */
function bytesUpTo(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  if (Number(req.headers['content-length']) > limit) {
    req.resume();
    return Promise.resolve('too-large');
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (result: Buffer | 'too-large' | 'aborted'): void => {
      req.off('data', onData);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) done('too-large');
      else chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => done(Buffer.concat(chunks)));
    req.once('error', () => done('aborted'));
    req.once('close', () => done(req.complete ? Buffer.concat(chunks) : 'aborted'));
  });
}

function redactUrl(url: string): string {
  return url.replace(/token=[^&]*/g, 'token=[redacted]').replace(/^\/v1\/report\/[^/?]*/, '/v1/report/[redacted]').replace(/\/nocloud\/[^/?]*/, '/nocloud/[redacted]');
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
