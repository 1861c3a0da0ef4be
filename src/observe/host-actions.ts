import type { ObservedHost } from '../core/host-state.ts';
import { ACTIVITY_LIMIT, type HostAction } from './activity.ts';
import type { HostEvent } from '../core/host-lifecycle.ts';

/** Decisions that are not actions of their own: `fail` ends the provisioning under way (its `failed` event does). */
const NOT_ACTIONS: ReadonlySet<string> = new Set(['none', 'wait', 'fail']);

type Ending = { outcome: 'ok' | 'failed'; message?: string } | null;

/**
 * Whether `event` ends an action of kind `action`, and how. An action ends with what the operator waits for,
 * not when the BMC call returns: a provisioning ends with the phone-home (or its failure), an enrolment with
 * the inventory read, a one-time PXE override set again with the host reaching its next boot step.
 */
function ending(action: string, event: HostEvent, state: ObservedHost): Ending {
  if (event.kind === 'failed') return { outcome: 'failed', message: event.message };
  switch (action) {
    case 'enroll':
      if (event.kind === 'enrolled') return { outcome: 'ok' };
      if (event.kind === 'enroll-failed') return { outcome: 'failed', message: event.message };
      return null;
    case 'provision':
      if (event.kind !== 'phone-home') return null;
      if (state.phase === 'Converged') return { outcome: 'ok' };
      return state.phase === 'Failed' ? { outcome: 'failed', ...(state.lastError ? { message: state.lastError.message } : {}) } : null;
    case 'wipe':
      return event.kind === 'phone-home' && state.phase === 'Ready' ? { outcome: 'ok' } : null;
    case 'rerender':
      return event.kind === 'rerendered' ? { outcome: 'ok' } : null;
    case 'power-off':
    case 'power-off-by-hand':
      return event.kind === 'powered-off' ? { outcome: 'ok' } : null;
    case 'power-on':
      return event.kind === 'powered-on' ? { outcome: 'ok' } : null;
    case 'boot-override':
      return event.kind === 'step' ? { outcome: 'ok' } : null;
    case 'boot-disk':
      if (event.kind !== 'bmc-boot') return null;
      return event.retryAt === undefined ? { outcome: 'ok' } : { outcome: 'failed', ...(event.message ? { message: event.message } : {}) };
    default:
      return null;
  }
}

/** Said of an action a restarted agent found running and closed. */
export const INTERRUPTED_MESSAGE = 'the agent stopped before it ended';

/**
 * Whether an action found running after a restart goes on: a provisioning or wipe the agent resumes from its
 * journal (the host is still in it, for the same revision) ends with the phone-home as if there had been no
 * restart. Every other action was a call the stop cut off; a new decision starts it again if still needed.
 */
function carriesOn(action: HostAction, state: ObservedHost): boolean {
  const phase = action.action === 'provision' ? 'Provisioning' : action.action === 'wipe' ? 'Wiping' : null;
  return phase !== null && state.phase === phase && state.attemptRevision === action.revision;
}

/** The last actions per host, newest last, each open until the event that ends it. In memory. */
export class HostActions {
  private readonly hosts = new Map<string, HostAction[]>();

  constructor(private readonly clock: () => number = Date.now, private readonly limit = ACTIVITY_LIMIT) {}

  /** True when a new action was recorded (a `wait` or `none` decision is not one). */
  started(host: string, action: { kind: string; reason?: string }, revision: string): boolean {
    if (NOT_ACTIONS.has(action.kind)) return false;
    const now = this.clock();
    const list = this.hosts.get(host) ?? [];
    const open = list.at(-1);
    if (open?.outcome === 'running') this.close(open, now, { outcome: 'superseded' });
    list.push({ action: action.kind, ...(action.reason ? { reason: action.reason } : {}), revision, started: new Date(now).toISOString(), outcome: 'running' });
    this.hosts.set(host, list.slice(-this.limit));
    return true;
  }

  /** A lifecycle event of the host; true when it ended the host's open action. */
  event(host: string, event: HostEvent, state: ObservedHost): boolean {
    const open = this.hosts.get(host)?.at(-1);
    if (open?.outcome !== 'running') return false;
    const end = ending(open.action, event, state);
    if (!end) return false;
    this.close(open, this.clock(), end);
    return true;
  }

  /**
   * The actions a previous agent recorded for `host` (oldest first), placed before this agent's. A `running` one
   * stays open only when it carries on (see carriesOn, judged by the host's state from the journal); otherwise it
   * is closed as `interrupted`, with no end time, as nobody saw it end.
   */
  restore(host: string, actions: readonly HostAction[], state: ObservedHost): void {
    const current = this.hosts.get(host) ?? [];
    const restored = actions.map((a) => ({ ...a }));
    restored.forEach((a, i) => {
      const open = i === restored.length - 1 && current.length === 0 && carriesOn(a, state);
      if (a.outcome === 'running' && !open) Object.assign(a, { outcome: 'interrupted', message: INTERRUPTED_MESSAGE });
    });
    this.hosts.set(host, [...restored, ...current].slice(-this.limit));
  }

  /** Oldest first, copies. */
  of(host: string): HostAction[] {
    return (this.hosts.get(host) ?? []).map((a) => ({ ...a }));
  }

  retain(names: ReadonlySet<string>): void {
    for (const name of [...this.hosts.keys()]) if (!names.has(name)) this.hosts.delete(name);
  }

  private close(action: HostAction, now: number, end: { outcome: HostAction['outcome']; message?: string }): void {
    action.outcome = end.outcome;
    action.finished = new Date(now).toISOString();
    action.durationMs = Math.max(0, now - Date.parse(action.started));
    if (end.message) action.message = end.message;
  }
}
