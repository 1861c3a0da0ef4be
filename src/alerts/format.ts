// Pure: what an event means for deduplication and how it reads in one line.

import type { Drift } from '../observe/drift.ts';
import type { AlertEvent, AlertKey } from './types.ts';
import type { AlertKind } from '../model/site-alerts.ts';

/** Events that report a problem; the others report that one cleared. */
export const PROBLEM_KINDS: ReadonlySet<AlertKind> = new Set(['drift-detected', 'provisioning-failed', 'commit-rejected', 'bmc-unreachable']);

export function isProblem(event: AlertEvent): boolean {
  return PROBLEM_KINDS.has(event.kind);
}

/** The (host, reason, revision) an event reports, or for a recovery, the problems it clears (any revision). */
export function keyOf(event: AlertEvent): AlertKey {
  switch (event.kind) {
    case 'drift-detected':
    case 'drift-healed':
      return { host: event.host, reason: `drift:${event.drift}`, revision: event.revision };
    case 'provisioning-failed':
    case 'host-converged':
      return { host: event.host, reason: 'provisioning-failed', revision: event.revision };
    case 'bmc-unreachable':
      return { host: event.host, reason: 'bmc-unreachable', revision: event.revision };
    case 'commit-rejected':
      return { reason: 'commit-rejected', revision: event.revision };
  }
}

export function keyString(key: AlertKey): string {
  return `${key.host ?? '-'}|${key.reason}|${key.revision}`;
}

/** Whether `key` is covered by a partial key: absent host or revision match any. */
export function keyMatches(key: AlertKey, pattern: { host?: string; reason: string; revision?: string }): boolean {
  return key.reason === pattern.reason && (pattern.host === undefined || key.host === pattern.host) && (pattern.revision === undefined || key.revision === pattern.revision);
}

export function shortRevision(revision: string): string {
  return /^[0-9a-f]{40,64}$/.test(revision) ? revision.slice(0, 7) : revision;
}

const MAX_PROBLEMS_SHOWN = 3;

/** One line a person reads in a chat window. */
export function summaryLine(site: string, event: AlertEvent, recovery = false): string {
  const rev = shortRevision(event.revision);
  switch (event.kind) {
    case 'drift-detected': {
      const then = event.healing ? `; healing: ${event.healing}` : event.mode === 'paused' ? '; drift policy paused, not acting' : '; alert only (policy detect)';
      return `[${site}] drift on ${event.host}: ${event.message}${then}`;
    }
    case 'drift-healed':
      return `[${site}] drift healed on ${event.host} (${event.drift})${event.message ? `: ${event.message}` : ''} at ${rev}`;
    case 'provisioning-failed':
      return `[${site}] ${event.host} failed to provision ${event.role}${event.step ? ` at step ${event.step}` : ''}: ${event.message} (${rev})`;
    case 'host-converged':
      return `[${site}] ${event.host} converged as ${event.role} at ${rev}${recovery ? ' after a failed attempt' : ''}`;
    case 'commit-rejected': {
      const shown = event.problems.slice(0, MAX_PROBLEMS_SHOWN).join('; ');
      const more = event.problems.length > MAX_PROBLEMS_SHOWN ? ` (+${event.problems.length - MAX_PROBLEMS_SHOWN} more)` : '';
      const count = `${event.problems.length} problem${event.problems.length === 1 ? '' : 's'}`;
      return `[${site}] commit ${rev} rejected, ${count}: ${shown}${more}; the last good commit keeps serving`;
    }
    case 'bmc-unreachable':
      return `[${site}] BMC of ${event.host} unreachable: ${event.message}`;
  }
}

export function resolvedLine(site: string, key: AlertKey, message?: string): string {
  return `[${site}] resolved: ${key.reason}${key.host ? ` on ${key.host}` : ''} (${shortRevision(key.revision)})${message ? `: ${message}` : ''}`;
}

const CORRECTION_WORDS = { 'power-on': 'power on', 'power-off': 'power off', 'boot-override': 'set the one-time PXE boot again', reprovision: 'reprovision' } as const;

/** The alert for a drift the scanner found. An unreachable BMC has its own event kind. */
export function alertForDrift(drift: Drift): AlertEvent {
  if (drift.kind === 'bmc-unreachable') return { kind: 'bmc-unreachable', host: drift.host, revision: drift.revision, message: drift.message };
  const event: AlertEvent = { kind: 'drift-detected', host: drift.host, revision: drift.revision, drift: drift.kind, message: drift.message, mode: drift.mode };
  if (drift.act && drift.correction) event.healing = CORRECTION_WORDS[drift.correction.kind];
  return event;
}

/** What clears the alert of a drift the scanner no longer finds: a `drift-healed` event or, for a BMC, a resolve. */
export function recoveryForDrift(drift: Drift): { event: AlertEvent } | { resolve: { host: string; reason: string } } {
  if (drift.kind === 'bmc-unreachable') return { resolve: { host: drift.host, reason: 'bmc-unreachable' } };
  return { event: { kind: 'drift-healed', host: drift.host, revision: drift.revision, drift: drift.kind } };
}
