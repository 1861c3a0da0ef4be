// A Redfish HTTP client over undici: a session (X-Auth-Token) when the service root offers one, HTTP Basic auth
// when it offers none or refuses the login, one new login on a 401, bounded retries on an unreachable BMC and on busy
// answers (503/429, Retry-After honoured), and every single HTTP exchange handed to `schedule` (the caller's per-BMC
// queue). DSP0266 (Redfish specification) §13.3: a service supports both Basic auth and sessions, the service root
// is readable without authentication and names the session collection in Links.Sessions.
import { setTimeout as delay } from 'node:timers/promises';
import { Agent, request as undiciRequest } from 'undici';
import type { Dispatcher } from 'undici';
import { readBoundedJsonText } from './bounded-answer.ts';
import { RedfishAnswerRefusedError, RedfishAuthError, RedfishHttpError, RedfishTlsError, RedfishUnreachableError } from './errors.ts';

export const SESSIONS_PATH = '/redfish/v1/SessionService/Sessions';
export const SERVICE_ROOT = '/redfish/v1';

export interface RedfishEndpoint {
  /** `https://10.0.0.5` or `https://10.0.0.5:8443`. */
  baseUrl: string;
  username: string;
  password: string;
}

export interface RedfishClientOptions {
  /** Carries TLS verification (CA, pin); default: an Agent verifying against the system's CAs. */
  dispatcher?: Dispatcher;
  /** Runs each HTTP exchange; default: run it now. */
  schedule?: <T>(exchange: () => Promise<T>) => Promise<T>;
  /**
   * `auto`: a session if the service root offers one, else Basic; Basic too when the service refuses the session
   * login (401/403, 404/405, no token). `session` and `basic`: that method only.
   */
  auth?: 'auto' | 'session' | 'basic';
  /**
   * Per request, default 20 s: the connect, the headers (from the request's write), and the complete answer from the
   * exchange's start, however slowly its body trickles. An exchange holds its slot at most about twice this long.
   */
  timeoutMs?: number;
  /** Extra attempts when the BMC is unreachable; default 2. */
  retries?: number;
  /** Pause before the first retry of an unreachable BMC, doubling; default 1000 ms. */
  retryDelayMs?: number;
  /** Extra attempts on a busy answer; default 5. */
  busyRetries?: number;
  /** Pause before the first busy retry without Retry-After, doubling; default 1000 ms. */
  busyDelayMs?: number;
  /** Upper bound of any one pause, including Retry-After; default 30 s. */
  maxDelayMs?: number;
  /** An answer's body larger than this is refused (RedfishAnswerRefusedError) as it streams in; default 4 MiB. */
  maxAnswerBytes?: number;
  /** JSON nested deeper than this (objects and arrays) is refused as it streams in; default 64. */
  maxJsonDepth?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** The largest Redfish resource of the DMTF mockups is a few hundred KiB (a message registry): 4 MiB leaves room. */
export const DEFAULT_MAX_ANSWER_BYTES = 4 * 1024 * 1024;
/** Redfish resources nest a dozen levels at most (Oem sections included). */
export const DEFAULT_MAX_JSON_DEPTH = 64;

export interface RedfishResponse<T = unknown> {
  status: number;
  headers: Record<string, string>;
  body: T;
  /** ETag header, else the body's @odata.etag. */
  etag?: string;
}

type Json = Record<string, unknown>;
/** `tried`: what was tried before Basic ("session login (HTTP 401)"), named when Basic is refused too. */
type Auth = { kind: 'session'; token: string; location: string | undefined } | { kind: 'basic'; tried: string[] };

/** Where the service takes session logins; null: it offers none. */
type SessionOffer = { path: string } | null;

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Safe to send again when the outcome of an attempt is unknown (a reset action is not). */
  idempotent?: boolean;
}

/** The answer's body was not complete within the request timeout (the request was sent: the headers came back). */
const DEADLINE_CODE = 'ERR_FORSETI_EXCHANGE_DEADLINE';

class ExchangeDeadlineError extends Error {
  override readonly name = 'ExchangeDeadlineError';
  readonly code = DEADLINE_CODE;
}

/** Codes of errors raised before anything was sent: a retry cannot repeat a command. */
const NOT_SENT: ReadonlySet<string> = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
const MAYBE_SENT: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED', 'ETIMEDOUT', DEADLINE_CODE]);

export class RedfishClient {
  readonly bmc: string;
  private readonly opts: Required<Omit<RedfishClientOptions, 'dispatcher'>>;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private auth: Promise<Auth> | undefined;
  private root: Promise<Record<string, unknown> | undefined> | undefined;

  constructor(
    private readonly endpoint: RedfishEndpoint,
    options: RedfishClientOptions = {},
  ) {
    const url = new URL(endpoint.baseUrl);
    this.bmc = `${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
    this.opts = {
      schedule: options.schedule ?? ((exchange) => exchange()),
      auth: options.auth ?? 'auto',
      timeoutMs: options.timeoutMs ?? 20_000,
      retries: options.retries ?? 2,
      retryDelayMs: options.retryDelayMs ?? 1000,
      busyRetries: options.busyRetries ?? 5,
      busyDelayMs: options.busyDelayMs ?? 1000,
      maxDelayMs: options.maxDelayMs ?? 30_000,
      maxAnswerBytes: options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES,
      maxJsonDepth: options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH,
      sleep: options.sleep ?? ((ms) => delay(ms)),
    };
    this.ownsDispatcher = options.dispatcher === undefined;
    this.dispatcher = options.dispatcher ?? new Agent({ connect: { timeout: this.opts.timeoutMs } });
  }

  /** How this client logs in (`session` or `basic`, and what was tried before Basic); undefined before the first request. */
  async loginMethod(): Promise<{ kind: Auth['kind']; tried: string[] } | undefined> {
    const auth = this.auth ? await this.auth.catch(() => undefined) : undefined;
    if (auth === undefined) return undefined;
    return { kind: auth.kind, tried: auth.kind === 'basic' ? [...auth.tried] : [] };
  }

  async get<T = Json>(path: string): Promise<RedfishResponse<T>> {
    return this.request<T>('GET', path, { idempotent: true });
  }

  async patch<T = Json>(path: string, body: unknown, ifMatch?: string): Promise<RedfishResponse<T>> {
    return this.request<T>('PATCH', path, { body, idempotent: true, ...(ifMatch ? { headers: { 'if-match': ifMatch } } : {}) });
  }

  async post<T = Json>(path: string, body: unknown): Promise<RedfishResponse<T>> {
    return this.request<T>('POST', path, { body, idempotent: false });
  }

  /** An authenticated request; a 2xx answer, else a RedfishError. */
  async request<T = Json>(method: string, path: string, options: RequestOptions = {}): Promise<RedfishResponse<T>> {
    let auth = await this.login();
    let response = await this.send(method, path, options, auth);
    if (response.status === 401 && auth.kind === 'session') {
      // Sessions expire (idle timeout, BMC reboot, another client's logout-all): log in anew, once.
      auth = await this.login(auth);
      response = await this.send(method, path, options, auth);
    }
    if (response.status === 401 && auth.kind === 'basic') {
      throw new RedfishAuthError(this.bmc, `${method} ${path}`, this.refused([...auth.tried, 'Basic auth (HTTP 401)']));
    }
    if (response.status === 401) {
      throw new RedfishAuthError(this.bmc, `${method} ${path}`, 'credentials refused (HTTP 401 after a new login)');
    }
    if (response.status < 200 || response.status > 299) {
      throw new RedfishHttpError(this.bmc, `${method} ${path}`, response.status, this.scrub(errorDetail(response.body)));
    }
    return response as RedfishResponse<T>;
  }

  /** Logs the session out (best effort) and releases the connections. */
  async close(): Promise<void> {
    const auth = this.auth ? await this.auth.catch(() => undefined) : undefined;
    this.auth = undefined;
    if (auth?.kind === 'session' && auth.location) {
      await this.send('DELETE', auth.location, { idempotent: true }, auth).catch(() => undefined);
    }
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  /** The current login; with `stale`, replaces that one by a new login (shared by concurrent callers). */
  private login(stale?: Auth): Promise<Auth> {
    if (this.auth === undefined || stale !== undefined) {
      const current = this.auth;
      const fresh = (async () => {
        if (stale !== undefined && current !== undefined) {
          const now = await current.catch(() => undefined);
          if (now !== undefined && now !== stale) return now; // someone else logged in anew already
        }
        return this.createSession();
      })();
      this.auth = fresh;
      // A failed login must not stick: the next request tries again.
      fresh.catch(() => {
        if (this.auth === fresh) this.auth = undefined;
      });
    }
    return this.auth;
  }

  private async createSession(): Promise<Auth> {
    if (this.opts.auth === 'basic') return { kind: 'basic', tried: [] };
    const offer = this.opts.auth === 'session' ? { path: SESSIONS_PATH } : await this.sessionOffer();
    if (offer === null) return { kind: 'basic', tried: ['no session service in the service root'] };
    const request = `POST ${offer.path}`;
    const body = { UserName: this.endpoint.username, Password: this.endpoint.password };
    // Repeating a login whose answer was lost costs at most one idle session on the BMC, which expires.
    const response = await this.send('POST', offer.path, { body, idempotent: true }, undefined);
    const fallback = (why: string): Auth => {
      if (this.opts.auth === 'auto') return { kind: 'basic', tried: [why] };
      throw new RedfishAuthError(this.bmc, request, this.refused([why]));
    };
    if (response.status === 401 || response.status === 403) return fallback(`session login (HTTP ${response.status}${basicChallenge(response) ? ', asks for Basic' : ''})`);
    if (response.status === 404 || response.status === 405) return fallback(`session login (HTTP ${response.status}: no session service)`);
    if (response.status < 200 || response.status > 299) {
      throw new RedfishHttpError(this.bmc, request, response.status, this.scrub(errorDetail(response.body)));
    }
    const token = response.headers['x-auth-token'];
    if (!token) return fallback('session login (answered without an X-Auth-Token)');
    const location = response.headers['location'];
    return { kind: 'session', token, location: location ? new URL(location, this.endpoint.baseUrl).pathname : undefined };
  }

  /**
   * The session collection the service root names (Links.Sessions, else its SessionService's Sessions); null when the
   * root names neither; the standard path when the root cannot be read (a service that hides it still gets a login).
   */
  private async sessionOffer(): Promise<SessionOffer> {
    const root = await this.serviceRoot();
    if (root === undefined) return { path: SESSIONS_PATH };
    const sessions = linkOf(isObject(root['Links']) ? root['Links']['Sessions'] : undefined);
    if (sessions !== undefined) return { path: sessions };
    const service = linkOf(root['SessionService']);
    return service !== undefined ? { path: `${service.replace(/\/+$/, '')}/Sessions` } : null;
  }

  /** The service root, read once without credentials; undefined when it is not a JSON object or answers 4xx. */
  serviceRoot(): Promise<Record<string, unknown> | undefined> {
    if (this.root === undefined) {
      const read = this.send('GET', SERVICE_ROOT, { idempotent: true }, undefined).then((r) => {
        if (r.status >= 200 && r.status <= 299) return isObject(r.body) ? r.body : undefined;
        if (r.status >= 400 && r.status <= 499) return undefined; // hidden or absent: the standard path is tried
        throw new RedfishHttpError(this.bmc, `GET ${SERVICE_ROOT}`, r.status, this.scrub(errorDetail(r.body)));
      });
      this.root = read;
      read.catch(() => {
        if (this.root === read) this.root = undefined; // an unreachable BMC is asked again next time
      });
    }
    return this.root;
  }

  private refused(tried: string[]): string {
    return `login refused for user ${this.endpoint.username}: tried ${tried.join(', then ')}`;
  }

  /** One request with the unreachable and busy retries; any HTTP status is returned, not thrown. */
  private async send(method: string, path: string, options: RequestOptions, auth: Auth | undefined): Promise<RedfishResponse> {
    const label = `${method} ${path}`;
    let unreachable = 0;
    let busy = 0;
    for (;;) {
      let response: RedfishResponse;
      try {
        response = await this.opts.schedule(() => this.exchange(method, path, options, auth));
      } catch (err) {
        const code = errorCode(err);
        if (isTlsFailure(code)) throw new RedfishTlsError(this.bmc, label, `TLS: ${describe(err)}`, { cause: err });
        const retryable = NOT_SENT.has(code) || (MAYBE_SENT.has(code) && options.idempotent === true);
        if (!NOT_SENT.has(code) && !MAYBE_SENT.has(code)) throw err;
        if (!retryable || unreachable >= this.opts.retries) {
          throw new RedfishUnreachableError(this.bmc, label, describe(err), unreachable + 1, { cause: err });
        }
        await this.opts.sleep(Math.min(this.opts.retryDelayMs * 2 ** unreachable, this.opts.maxDelayMs));
        unreachable++;
        continue;
      }
      if (isBusy(response) && busy < this.opts.busyRetries) {
        const backoff = this.opts.busyDelayMs * 2 ** busy;
        await this.opts.sleep(Math.min(retryAfterMs(response.headers['retry-after']) ?? backoff, this.opts.maxDelayMs));
        busy++;
        continue;
      }
      return response;
    }
  }

  private async exchange(method: string, path: string, options: RequestOptions, auth: Auth | undefined): Promise<RedfishResponse> {
    const headers: Record<string, string> = { accept: 'application/json', 'odata-version': '4.0', ...options.headers };
    if (auth?.kind === 'session') headers['x-auth-token'] = auth.token;
    if (auth?.kind === 'basic') {
      headers['authorization'] = `Basic ${Buffer.from(`${this.endpoint.username}:${this.endpoint.password}`).toString('base64')}`;
    }
    let payload: string | undefined;
    if (options.body !== undefined) {
      payload = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    // undici's bodyTimeout is the idle time between chunks: a BMC that trickles its answer would never time out.
    // So the body must be complete within timeoutMs of the exchange's start. Until the headers arrive, the connect
    // timeout and headersTimeout (a total, from the request's write) bound the exchange instead: aborting a request
    // there makes undici open a spurious new connection to the BMC.
    const overdue = (): ExchangeDeadlineError => new ExchangeDeadlineError(`no complete answer within ${this.opts.timeoutMs} ms`);
    let answer: Dispatcher.ResponseData['body'] | undefined;
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      answer?.destroy(overdue());
    }, this.opts.timeoutMs);
    let res: Dispatcher.ResponseData;
    let text: string;
    try {
      res = await undiciRequest(new URL(path, this.endpoint.baseUrl), {
        method: method as Dispatcher.HttpMethod,
        headers,
        body: payload,
        dispatcher: this.dispatcher,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      });
      answer = res.body;
      if (expired) answer.destroy(overdue());
      const read = await readBoundedJsonText(answer, res.headers['content-length'], { maxBytes: this.opts.maxAnswerBytes, maxDepth: this.opts.maxJsonDepth });
      if (typeof read !== 'string') throw new RedfishAnswerRefusedError(this.bmc, `${method} ${path}`, `answer refused: ${read.refused}`);
      text = read;
    } finally {
      clearTimeout(timer);
    }
    const flat: Record<string, string> = {};
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
    const body = parseJson(text);
    const odataEtag = isObject(body) && typeof body['@odata.etag'] === 'string' ? body['@odata.etag'] : undefined;
    const etag = flat['etag'] ?? odataEtag;
    return { status: res.statusCode, headers: flat, body, ...(etag ? { etag } : {}) };
  }

  /** A BMC may echo what it was sent; what it echoes never carries the password or the token. */
  private scrub(text: string): string {
    let out = text;
    if (this.endpoint.password) out = out.split(this.endpoint.password).join('[redacted]');
    return out.replace(/(x-auth-token|authorization)["':= ]+[^\s"',}]+/gi, '$1: [redacted]');
  }
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function linkOf(v: unknown): string | undefined {
  const id = isObject(v) ? v['@odata.id'] : undefined;
  return typeof id === 'string' && id.startsWith('/') ? id : undefined;
}

/** RFC 7235: the 401 names the schemes the server takes; Basic there is a service telling us to use it. */
function basicChallenge(response: RedfishResponse): boolean {
  return /(^|,)\s*basic\b/i.test(response.headers['www-authenticate'] ?? '');
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function errorCode(err: unknown): string {
  const code = isObject(err) ? err['code'] : undefined;
  if (typeof code === 'string') return code;
  const cause = err instanceof Error ? err.cause : undefined;
  return cause !== undefined ? errorCode(cause) : '';
}

function isTlsFailure(code: string): boolean {
  return /^(CERT_|ERR_TLS_|ERR_SSL_|DEPTH_ZERO_|SELF_SIGNED_|UNABLE_TO_(GET|VERIFY|DECRYPT)_|HOSTNAME_MISMATCH|ERR_FORSETI_TLS)/.test(code);
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err instanceof ExchangeDeadlineError) return err.message;
  const code = errorCode(err);
  return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}

/** 503 and 429, and Redfish's own "try again later" message on any 5xx. */
function isBusy(response: RedfishResponse): boolean {
  if (response.status === 503 || response.status === 429) return true;
  return response.status >= 500 && /ServiceTemporarilyUnavailable|ServiceInUnknownState|busy/i.test(errorDetail(response.body));
}

/** Retry-After as delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The Redfish error's message IDs and messages, short. */
export function errorDetail(body: unknown): string {
  if (typeof body === 'string') return body.slice(0, 300);
  if (!isObject(body)) return '';
  const error = isObject(body['error']) ? body['error'] : body;
  const parts: string[] = [];
  if (typeof error['message'] === 'string') parts.push(error['message']);
  const info = error['@Message.ExtendedInfo'];
  if (Array.isArray(info)) {
    for (const entry of info) {
      if (!isObject(entry)) continue;
      const id = typeof entry['MessageId'] === 'string' ? entry['MessageId'] : '';
      const msg = typeof entry['Message'] === 'string' ? entry['Message'] : '';
      parts.push([id, msg].filter(Boolean).join(' '));
    }
  }
  return parts.join('; ').slice(0, 500);
}
