// Which forge sent a request, how it authenticates, and where a push payload keeps ref, commit and repository.
// Gitea also sends X-GitHub-Event and X-Hub-Signature-256 for compatibility, and Forgejo sends the X-Gitea-*
// headers too, so the more specific headers are looked at first.

import { constantTimeEqual, verifyHexSignature, verifyPrefixedSignature } from './verify.ts';

export type WebhookProvider = 'github' | 'gitea' | 'gitlab';

export type Headers = Record<string, string | string[] | undefined>;

export function header(headers: Headers, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

export function detectProvider(headers: Headers): { provider: WebhookProvider; event: string; delivery?: string } | null {
  const gitlab = header(headers, 'x-gitlab-event');
  if (gitlab !== undefined) return withDelivery('gitlab', gitlab, header(headers, 'x-gitlab-event-uuid') ?? header(headers, 'x-gitlab-webhook-uuid'));
  const gitea = header(headers, 'x-gitea-event') ?? header(headers, 'x-forgejo-event') ?? header(headers, 'x-gogs-event');
  if (gitea !== undefined) return withDelivery('gitea', gitea, header(headers, 'x-gitea-delivery') ?? header(headers, 'x-forgejo-delivery'));
  const github = header(headers, 'x-github-event');
  if (github !== undefined) return withDelivery('github', github, header(headers, 'x-github-delivery'));
  return null;
}

function withDelivery(provider: WebhookProvider, event: string, delivery: string | undefined): { provider: WebhookProvider; event: string; delivery?: string } {
  return delivery === undefined ? { provider, event } : { provider, event, delivery };
}

/** Whether the request carries proof of the shared secret, in the form its provider uses. */
export function authenticate(provider: WebhookProvider, headers: Headers, body: Buffer, secret: string): boolean {
  switch (provider) {
    case 'github':
      return verifyPrefixedSignature(secret, body, header(headers, 'x-hub-signature-256'));
    case 'gitea':
      return verifyHexSignature(secret, body, header(headers, 'x-gitea-signature') ?? header(headers, 'x-forgejo-signature'));
    case 'gitlab': {
      const token = header(headers, 'x-gitlab-token');
      return token !== undefined && token !== '' && constantTimeEqual(token, secret);
    }
  }
}

export type EventClass = 'push' | 'ping' | 'other';

export function classifyEvent(provider: WebhookProvider, event: string, payload: Record<string, unknown>): EventClass {
  switch (provider) {
    case 'github':
      return event === 'push' ? 'push' : event === 'ping' ? 'ping' : 'other';
    case 'gitea':
      return event === 'push' ? 'push' : 'other';
    case 'gitlab':
      // Project hooks say "Push Hook"; instance-wide system hooks send pushes as "System Hook".
      if ((event === 'Push Hook' || event === 'System Hook') && payload['object_kind'] === 'push') return 'push';
      return 'other';
  }
}

export interface PushFields {
  ref?: string;
  after?: string;
  repository?: string;
}

export function pushFields(provider: WebhookProvider, payload: Record<string, unknown>): PushFields {
  const fields: PushFields = {};
  if (typeof payload['ref'] === 'string') fields.ref = payload['ref'];
  if (typeof payload['after'] === 'string') fields.after = payload['after'];
  const repo = provider === 'gitlab' ? payload['project'] : payload['repository'];
  const key = provider === 'gitlab' ? 'path_with_namespace' : 'full_name';
  if (repo && typeof repo === 'object' && typeof (repo as Record<string, unknown>)[key] === 'string') {
    fields.repository = (repo as Record<string, string>)[key];
  }
  return fields;
}
