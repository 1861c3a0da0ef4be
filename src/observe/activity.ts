// What the agent did lately, as status shows it: per site the last commit applies (reconciles) with their
import { isRecord, stripUndefined } from '../core/objects.ts';
// timings, per host the last actions with theirs. Same shape on /v1/status and on the status branch.

export const ACTIVITY_LIMIT = 5;

/** Stages of applying one commit, in the order they run. */
export const RECONCILE_STAGES = ['validate', 'secrets', 'images', 'render', 'activate'] as const;
export type ReconcileStage = (typeof RECONCILE_STAGES)[number];

/**
 * `interrupted`: abandoned for a newer commit or because the agent stopped, or found `running` on the status branch by
 * a restarted agent.
 */
export type ReconcileResult = 'running' | 'applied' | 'rejected' | 'interrupted';

/** One commit taken from the lab branch: validated, rendered and activated, or rejected. */
export interface ReconcileRecord {
  revision: string;
  /** ISO times. */
  started: string;
  finished?: string;
  durationMs?: number;
  /** Milliseconds per stage that ran (a rejected commit stops after `validate`, or where rendering failed). */
  stages: Partial<Record<ReconcileStage, number>>;
  result: ReconcileResult;
  /** How many problems rejected it. */
  problems?: number;
  /** Distinct hosts an action was started on while this revision was served (provision, power, enrol, ...). */
  hostsActedOn: number;
  /** Those actions by kind: `{provision: 2, rerender: 14}`. */
  actions?: Record<string, number>;
}

/** `interrupted`: the agent stopped while it ran and nothing after the restart carries it on. */
export type ActionOutcome = 'running' | 'ok' | 'failed' | 'superseded' | 'interrupted';

/** One action on one host: from the decision to start it to the event that ends it (phone-home, failure, ...). */
export interface HostAction {
  /** provision, wipe, enroll, rerender, power-on, power-off, boot-override, refuse */
  action: string;
  reason?: string;
  revision: string;
  started: string;
  finished?: string;
  durationMs?: number;
  outcome: ActionOutcome;
  /** Why it failed. */
  message?: string;
}

const OUTCOMES: readonly string[] = ['running', 'ok', 'failed', 'superseded', 'interrupted'];
const RESULTS: readonly string[] = ['running', 'applied', 'rejected', 'interrupted'];

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Reads a list of reconciles leniently (status branch or API): malformed entries are dropped, not fatal. */
export function parseReconciles(raw: unknown): ReconcileRecord[] | undefined {
  if (!Array.isArray(raw)) return undefined;
  return raw.filter(isRecord).flatMap((r): ReconcileRecord[] => {
    const revision = str(r.revision);
    const started = str(r.started);
    const result = str(r.result);
    if (!revision || !started || !result || !RESULTS.includes(result)) return [];
    const stages: Partial<Record<ReconcileStage, number>> = {};
    if (isRecord(r.stages)) {
      for (const [k, v] of Object.entries(r.stages)) {
        const ms = num(v);
        if ((RECONCILE_STAGES as readonly string[]).includes(k) && ms !== undefined) stages[k as ReconcileStage] = ms;
      }
    }
    return [
      stripUndefined({
        revision,
        started,
        finished: str(r.finished),
        durationMs: num(r.durationMs),
        stages,
        result: result as ReconcileResult,
        problems: num(r.problems),
        hostsActedOn: num(r.hostsActedOn) ?? 0,
        actions: isRecord(r.actions) ? Object.fromEntries(Object.entries(r.actions).filter((e): e is [string, number] => num(e[1]) !== undefined)) : undefined,
      }),
    ];
  });
}

/** Reads a list of host actions leniently. */
export function parseActions(raw: unknown): HostAction[] | undefined {
  if (!Array.isArray(raw)) return undefined;
  return raw.filter(isRecord).flatMap((a): HostAction[] => {
    const action = str(a.action);
    const revision = str(a.revision);
    const started = str(a.started);
    const outcome = str(a.outcome);
    if (!action || revision === undefined || !started || !outcome || !OUTCOMES.includes(outcome)) return [];
    return [stripUndefined({ action, reason: str(a.reason), revision, started, finished: str(a.finished), durationMs: num(a.durationMs), outcome: outcome as ActionOutcome, message: str(a.message) })];
  });
}

/** Fixed key order, so the status branch's diffs stay small. */
export function reconcileForYaml(r: ReconcileRecord): ReconcileRecord {
  const stages = Object.fromEntries(RECONCILE_STAGES.filter((s) => r.stages[s] !== undefined).map((s) => [s, r.stages[s]]));
  return stripUndefined({ revision: r.revision, result: r.result, started: r.started, finished: r.finished, durationMs: r.durationMs, stages, problems: r.problems, hostsActedOn: r.hostsActedOn, actions: r.actions && Object.keys(r.actions).length > 0 ? { ...r.actions } : undefined });
}

export function actionForYaml(a: HostAction): HostAction {
  return stripUndefined({ action: a.action, outcome: a.outcome, revision: a.revision, started: a.started, finished: a.finished, durationMs: a.durationMs, reason: a.reason, message: a.message });
}

/** `1.2 s`, `340 ms`, `2 min 5 s`: for the CLI. */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}
