// Pure: which sinks an alert goes to and the exact HTTP request each one gets.

import { signBody } from './signature.ts';
import type { Alert, ResolvedSink } from './types.ts';
import type { AlertKind, SinkConfig } from '../model/site-alerts.ts';
import { ALERT_KINDS } from '../model/site-alerts.ts';

export interface SinkRequest {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
}

const USER_AGENT = 'forseti-alerts/1';

export function defaultEvents(type: SinkConfig['type']): AlertKind[] {
  if (type === 'commit-status') return ['commit-rejected', 'provisioning-failed', 'host-converged'];
  // Every converged host of every commit would drown a chat channel: only its recovery after a failure goes there.
  return ALERT_KINDS.filter((k) => k !== 'host-converged');
}

/** A problem goes where its kind is subscribed; a recovery also goes wherever its problem went. */
export function sinkWants(sink: ResolvedSink, alert: Alert): boolean {
  if (alert.kind !== 'resolved' && sink.events.has(alert.kind)) return true;
  return alert.recovery && alert.resolves !== undefined && sink.events.has(alert.resolves.kind);
}

/** The request a sink sends for an alert, or null when this kind means nothing to it (drift on a commit status). */
export function requestFor(sink: ResolvedSink, alert: Alert): SinkRequest | null {
  switch (sink.type) {
    case 'webhook': {
      const body = JSON.stringify({ version: 1, ...alert });
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
        'x-forseti-event': alert.kind,
        'x-forseti-delivery': alert.id,
      };
      if (sink.secret) headers['x-forseti-signature'] = signBody(sink.secret, body);
      return { url: sink.url, method: 'POST', headers, body };
    }
    case 'slack':
      return { url: sink.url, method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': USER_AGENT }, body: JSON.stringify({ text: slackEscape(alert.summary) }) };
    case 'commit-status':
      return commitStatusRequest(sink, alert);
  }
}

/** Slack's mrkdwn needs exactly these three escaped; everything else is literal. */
export function slackEscape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** GitHub refuses a commit status description over 140 characters. */
const MAX_DESCRIPTION = 140;

function commitStatusRequest(sink: Extract<ResolvedSink, { type: 'commit-status' }>, alert: Alert): SinkRequest | null {
  const event = alert.event;
  if (!event || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(event.revision)) return null;
  let state: 'success' | 'failure';
  let context = sink.context;
  let description: string;
  switch (event.kind) {
    case 'commit-rejected':
      state = 'failure';
      description = `rejected: ${event.problems.length} problem${event.problems.length === 1 ? '' : 's'}${event.problems[0] ? `, ${event.problems[0]}` : ''}`;
      break;
    case 'provisioning-failed':
      state = 'failure';
      context = `${sink.context}/${event.host}`;
      description = `${event.role} failed${event.step ? ` at ${event.step}` : ''}: ${event.message}`;
      break;
    case 'host-converged':
      state = 'success';
      context = `${sink.context}/${event.host}`;
      description = `converged as ${event.role}`;
      break;
    default:
      return null;
  }
  const body: Record<string, string> = { state, context, description: truncate(description, MAX_DESCRIPTION) };
  if (sink.targetUrl) body['target_url'] = sink.targetUrl;
  return {
    url: commitStatusUrl(sink, event.revision),
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
      'user-agent': USER_AGENT,
      authorization: `token ${sink.token}`,
    },
    body: JSON.stringify(body),
  };
}

/** Where a commit-status sink posts the status of `revision` (the agent checks it against the credential's urls). */
export function commitStatusUrl(sink: { api: string; repository: string }, revision: string): string {
  const [owner = '', repo = ''] = sink.repository.split('/');
  return `${sink.api.replace(/\/+$/, '')}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/statuses/${revision}`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** For log lines: a sink's name and type, never its URL (a Slack URL is a secret) or token. */
export function describeSink(sink: ResolvedSink): string {
  return `${sink.name} (${sink.type})`;
}
