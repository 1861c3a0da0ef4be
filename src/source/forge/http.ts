// One JSON exchange with a forge's API: bounded in time (the whole exchange) and size (the answer), no redirects
// followed, the token sent only in the header the forge takes and redacted from anything an error says.
import { request } from 'undici';
import type { Dispatcher } from 'undici';
import { Redactor } from '../../redact/redactor.ts';
import { ForgeAnswerError, ForgeAuthError, ForgeUnreachableError } from './errors.ts';
import type { ForgeConfig } from './types.ts';

export const DEFAULT_FORGE_TIMEOUT_MS = 15_000;
export const DEFAULT_FORGE_MAX_RESPONSE_BYTES = 1024 * 1024;

export interface ForgeAnswer {
  status: number;
  /** The parsed JSON, or undefined for an empty answer. */
  json: unknown;
}

export interface ForgeRequest {
  method: 'GET' | 'POST';
  /** Below the API root, already encoded: `/repos/o/r/pulls`. */
  path: string;
  query?: Record<string, string>;
  body?: unknown;
}

/** What every client does: send, bound, parse, and turn failures into the forge errors. */
export class ForgeHttp {
  readonly name: string;
  private readonly root: URL;
  private readonly redactor = new Redactor();

  constructor(
    private readonly config: ForgeConfig,
    /** The headers carrying the token and naming the API version, per forge. */
    private readonly headers: Record<string, string>,
  ) {
    this.root = apiRoot(config.api);
    this.name = `${config.type} ${this.root.host} ${config.repository}`;
    this.redactor.set('forge-token', [config.token]);
  }

  /** The answer for any status; ForgeUnreachableError when none came, ForgeAnswerError when it is too large or not JSON. */
  async send(req: ForgeRequest): Promise<ForgeAnswer> {
    const url = new URL(`${this.root.pathname.replace(/\/$/, '')}${req.path}`, this.root);
    for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.set(k, v);
    const what = this.describe(req);
    const limit = this.config.maxResponseBytes ?? DEFAULT_FORGE_MAX_RESPONSE_BYTES;
    const timeoutMs = this.config.timeoutMs ?? DEFAULT_FORGE_TIMEOUT_MS;
    // Until the headers, undici's own timeouts bound the exchange (aborting it there with a signal makes undici open a
    // spurious second connection, the Redfish client found the same); from the headers on, the answer must be
    // complete by the same deadline.
    let expired = false;
    let answer: Dispatcher.ResponseData['body'] | undefined;
    const timer = setTimeout(() => {
      expired = true;
      answer?.destroy(new Error('deadline'));
    }, timeoutMs);
    let status: number;
    const chunks: Buffer[] = [];
    try {
      const res = await request(url, {
        method: req.method,
        headers: { accept: 'application/json', 'user-agent': 'forseti', ...this.headers, ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(this.config.dispatcher ? { dispatcher: this.config.dispatcher } : {}),
      });
      status = res.statusCode;
      answer = res.body;
      // Leaving an answer early destroys its stream, which undici reports as an error event: already handled here.
      res.body.on('error', () => undefined);
      if (expired) res.body.destroy(new Error('deadline'));
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > limit) {
        res.body.destroy();
        throw new ForgeAnswerError(this.name, what, status, `an answer of ${declared} bytes, more than the cap of ${limit}`);
      }
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > limit) {
          res.body.destroy();
          throw new ForgeAnswerError(this.name, what, status, `an answer of more than the cap of ${limit} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      if (err instanceof ForgeAnswerError) throw err;
      const reason = expired || TIMEOUTS.has(codeOf(err)) ? `no complete answer within ${timeoutMs} ms` : describe(err);
      throw new ForgeUnreachableError(this.name, what, this.redact(reason));
    } finally {
      clearTimeout(timer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '') return { status, json: undefined };
    try {
      return { status, json: JSON.parse(text) as unknown };
    } catch {
      throw new ForgeAnswerError(this.name, what, status, `not JSON: ${this.redact(oneLine(text, 120))}`);
    }
  }

  /** The error for an answer the client did not expect: the token refused, or anything else, with the forge's message. */
  unexpected(req: ForgeRequest, answer: ForgeAnswer): Error {
    const detail = this.redact(oneLine(messageOf(answer.json), 300));
    if (answer.status === 401 || answer.status === 403) return new ForgeAuthError(this.name, this.describe(req), answer.status, detail);
    return new ForgeAnswerError(this.name, this.describe(req), answer.status, detail);
  }

  redact(text: string): string {
    return this.redactor.redact(text);
  }

  private describe(req: ForgeRequest): string {
    return `${req.method} ${req.path}`;
  }
}

/** The API root as given, checked: http(s), no user name or password, query or fragment in it. */
export function apiRoot(api: string): URL {
  let url: URL;
  try {
    url = new URL(api);
  } catch {
    throw new TypeError(`forge api ${JSON.stringify(api.slice(0, 100))} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError(`forge api ${url.origin}: http or https only`);
  if (url.username || url.password || url.search || url.hash) throw new TypeError('forge api: no credentials, query or fragment in the URL (the token is a credential)');
  return url;
}

/** The forge's own words: GitHub and Gitea `message`, GitLab `message` (a string, a list, or field → messages) or `error`; GitHub adds `errors[].message`. */
export function messageOf(json: unknown): string {
  if (typeof json === 'string') return json;
  if (typeof json !== 'object' || json === null) return '';
  const o = json as Record<string, unknown>;
  const parts: string[] = [];
  const add = (v: unknown): void => {
    if (typeof v === 'string') parts.push(v);
    else if (Array.isArray(v)) v.forEach(add);
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) parts.push(`${k}: ${[x].flat().filter((s) => typeof s === 'string').join(', ')}`);
  };
  add(o['message']);
  add(o['error']);
  if (Array.isArray(o['errors'])) for (const e of o['errors']) add(typeof e === 'object' && e !== null ? (e as Record<string, unknown>)['message'] : e);
  return parts.join('; ');
}

/** Path segments as the forge takes them: `owner/repo` → `owner/repo` with each part encoded. */
export function encodeSegments(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

function oneLine(text: string, max: number): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s+/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

const TIMEOUTS: ReadonlySet<string> = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

function codeOf(err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : '';
}

function describe(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return err instanceof Error ? `${err.message}${cause}` : String(err);
}
