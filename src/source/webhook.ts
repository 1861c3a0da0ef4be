// Push webhooks from GitHub, Gitea (and Forgejo) and GitLab: a verified push to the watched branch makes the
// agent fetch at once instead of at its next poll. Polling stays on as the safety net: a lost webhook only
// delays a change until the next poll, it never loses it.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.ts';
import { authenticate, classifyEvent, detectProvider, header, pushFields, type Headers, type WebhookProvider } from './webhook/providers.ts';
import { readRawBody, WebhookBodyTooLargeError } from './webhook/read-body.ts';

export type { WebhookProvider } from './webhook/providers.ts';
export { hmacSha256Hex } from './webhook/verify.ts';

export const DEFAULT_WEBHOOK_MAX_BODY_BYTES = 1024 * 1024;

export interface WebhookConfig {
  /** The shared secret: HMAC key for GitHub and Gitea, the token itself for GitLab. Never logged. */
  secret: string;
  /** Only a push to `refs/heads/<branch>` triggers a fetch. */
  branch: string;
  /** If set, only pushes to this repository (`owner/name`, as the forge spells it) count. */
  repository?: string;
  maxBodyBytes?: number;
  log?: Logger;
}

export interface WebhookRequest {
  headers: Headers;
  body: Buffer;
  remoteAddress?: string;
}

export interface WebhookPush {
  provider: WebhookProvider;
  repository: string;
  ref: string;
  after: string;
}

export interface WebhookResult {
  status: number;
  message: string;
  /** Set only for a verified push to the watched branch: the caller fetches now (`agent.poll()`). */
  push?: WebhookPush;
}

const ZERO_COMMIT = /^0+$/;

/** Decides what a webhook request means. Pure apart from logging; the caller reads the body and acts. */
export function handleWebhook(req: WebhookRequest, config: WebhookConfig): WebhookResult {
  const log = config.log;
  const limit = config.maxBodyBytes ?? DEFAULT_WEBHOOK_MAX_BODY_BYTES;
  if (req.body.length > limit) return { status: 413, message: `body larger than ${limit} bytes` };
  if (config.secret === '') {
    log?.error('webhook received but no webhook secret is configured; refused');
    return { status: 503, message: 'webhook secret not configured' };
  }

  const sender = detectProvider(req.headers);
  if (!sender) return { status: 400, message: 'not a GitHub, Gitea or GitLab webhook (no event header)' };
  const context = { provider: sender.provider, event: sender.event, delivery: sender.delivery, remote: req.remoteAddress };
  if (!authenticate(sender.provider, req.headers, req.body, config.secret)) {
    log?.warn(context, 'webhook refused: missing or wrong signature');
    return { status: 401, message: 'missing or wrong signature' };
  }

  const contentType = (header(req.headers, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase();
  if (contentType !== 'application/json') {
    return { status: 400, message: `content type must be application/json, not ${contentType || 'none'} (set it in the webhook's settings)` };
  }
  let payload: unknown;
  try {
    payload = JSON.parse(req.body.toString('utf8'));
  } catch {
    return { status: 400, message: 'body is not valid JSON' };
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return { status: 400, message: 'body is not a JSON object' };
  const object = payload as Record<string, unknown>;

  const kind = classifyEvent(sender.provider, sender.event, object);
  if (kind === 'ping') {
    log?.info(context, 'webhook ping');
    return { status: 200, message: 'pong' };
  }
  if (kind === 'other') return { status: 202, message: `event ${sender.event} ignored` };

  const { ref, after, repository } = pushFields(sender.provider, object);
  if (!ref || !after) return { status: 400, message: 'push payload without ref or after' };
  const watched = `refs/heads/${config.branch}`;
  if (ref !== watched) return { status: 202, message: `push to ${ref} ignored (watching ${watched})` };
  if (config.repository !== undefined && repository !== config.repository) {
    return { status: 202, message: `push to repository ${repository ?? 'unknown'} ignored (watching ${config.repository})` };
  }
  if (ZERO_COMMIT.test(after)) return { status: 202, message: `${watched} deleted; nothing to fetch` };
  const push: WebhookPush = { provider: sender.provider, repository: repository ?? '', ref, after };
  log?.info({ ...context, repository: push.repository, ref, after }, 'webhook push; fetching now');
  return { status: 202, message: `fetching ${after}`, push };
}

/**
 * A node:http handler around `handle`: POST only, reads the raw body (the signature covers the exact bytes)
 * up to `maxBodyBytes`, answers with the handler's status and message.
 */
export function createWebhookRoute(
  handle: (req: WebhookRequest) => WebhookResult | Promise<WebhookResult>,
  options: { maxBodyBytes?: number; log?: Logger } = {},
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const limit = options.maxBodyBytes ?? DEFAULT_WEBHOOK_MAX_BODY_BYTES;
  return async (req, res) => {
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return reply(res, 405, 'POST only');
    }
    let body: Buffer;
    try {
      body = await readRawBody(req, limit);
    } catch (err) {
      if (!(err instanceof WebhookBodyTooLargeError)) throw err;
      // The rest of the body is not read: the connection closes once the answer is out.
      res.setHeader('Connection', 'close');
      reply(res, 413, err.message);
      res.on('finish', () => req.destroy());
      return;
    }
    const remoteAddress = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const result = await handle({ headers: req.headers, body, remoteAddress });
    reply(res, result.status, result.message);
  };
}

function reply(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(`${message}\n`);
}

/**
 * Delays for the polling safety net: `baseMs` plus up to `jitter` (a fraction, 0..1) of it, so that several
 * agents polling one forge do not fetch in lockstep.
 */
export function pollSchedule(baseMs: number, jitter: number, random: () => number = Math.random): () => number {
  if (!Number.isFinite(baseMs) || baseMs <= 0) throw new RangeError(`poll interval must be a positive number of ms, not ${baseMs}`);
  if (!Number.isFinite(jitter) || jitter < 0 || jitter > 1) throw new RangeError(`poll jitter must be a fraction between 0 and 1, not ${jitter}`);
  return () => Math.round(baseMs + baseMs * jitter * random());
}

export class WebhookConfigError extends Error {
  override readonly name = 'WebhookConfigError';
}

/** The agent configuration's `webhook:` section (agent.yaml), before the credential is resolved. */
export interface WebhookSettings {
  /** Credential whose password is the shared webhook secret. */
  credential: string;
  /** HTTP path on the agent's HTTP port. */
  path: string;
  repository?: string;
  maxBodyBytes: number;
}

export function parseWebhookSettings(raw: unknown): WebhookSettings | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new WebhookConfigError('webhook must be a mapping');
  const o = raw as Record<string, unknown>;
  const credential = o['credential'] ?? 'webhook';
  if (typeof credential !== 'string' || credential === '') throw new WebhookConfigError('webhook.credential must be a credential name');
  const path = o['path'] ?? '/v1/webhook';
  if (typeof path !== 'string' || !path.startsWith('/')) throw new WebhookConfigError('webhook.path must be an absolute path like /v1/webhook');
  const repository = o['repository'];
  if (repository !== undefined && (typeof repository !== 'string' || !repository.includes('/'))) throw new WebhookConfigError('webhook.repository must be owner/name');
  const maxBodyBytes = o['maxBodyBytes'] ?? DEFAULT_WEBHOOK_MAX_BODY_BYTES;
  if (typeof maxBodyBytes !== 'number' || !Number.isInteger(maxBodyBytes) || maxBodyBytes < 1024) throw new WebhookConfigError('webhook.maxBodyBytes must be an integer >= 1024');
  return { credential, path, maxBodyBytes, ...(repository !== undefined ? { repository } : {}) };
}
