import { ACTIVITY_LIMIT, type ReconcileRecord, type ReconcileResult, type ReconcileStage } from './activity.ts';

/** What a run that finishes may end as; `interrupted`: abandoned for a newer commit or a stop, or found after a restart. */
type FinishResult = Exclude<ReconcileResult, 'running'>;

export interface ActivityClock {
  /** Epoch ms, for the times shown. */
  wall: () => number;
  /** Monotonic ms, for the durations. */
  mono: () => number;
}

export const SYSTEM_CLOCK: ActivityClock = { wall: Date.now, mono: () => performance.now() };

/** One commit being applied; the agent marks the end of each stage and then finishes it. */
export class ReconcileRun {
  private lap: number;
  private readonly begun: number;
  private done = false;

  constructor(readonly record: ReconcileRecord, private readonly clock: ActivityClock, private readonly ended: (run: ReconcileRun) => void) {
    this.begun = clock.mono();
    this.lap = this.begun;
  }

  /** The stage that just ended took the time since the previous mark (or the start). */
  mark(stage: ReconcileStage): void {
    if (this.done) return;
    const now = this.clock.mono();
    this.record.stages[stage] = round((this.record.stages[stage] ?? 0) + now - this.lap);
    this.lap = now;
  }

  /** Once: later calls are ignored, so a caller may finish defensively on every path. */
  finish(result: FinishResult, problems = 0): void {
    if (this.done) return;
    this.done = true;
    this.record.result = result;
    this.record.finished = new Date(this.clock.wall()).toISOString();
    this.record.durationMs = round(this.clock.mono() - this.begun);
    if (result === 'rejected') this.record.problems = problems;
    this.ended(this);
  }

  get seconds(): number {
    return (this.record.durationMs ?? 0) / 1000;
  }
}

/**
 * The last commit applies of the site, newest last, with the time each stage took and how many hosts were
 * acted on while the commit served. In memory; a restarted agent takes over the previous run's from the status
 * branch (restore).
 */
export class ReconcileLog {
  /** `hosts` is null for a run restored from the status branch: its hosts are not known, so it counts no more. */
  private readonly runs: Array<{ record: ReconcileRecord; hosts: Set<string> | null }> = [];
  private readonly listeners: Array<(run: ReconcileRun | null) => void> = [];
  private open: ReconcileRun | null = null;

  constructor(private readonly clock: ActivityClock = SYSTEM_CLOCK, private readonly limit = ACTIVITY_LIMIT) {}

  /** A run still open when the next one starts ended in an error nobody finished it for: it counts as rejected. */
  start(revision: string): ReconcileRun {
    this.open?.finish('rejected');
    const record: ReconcileRecord = { revision, started: new Date(this.clock.wall()).toISOString(), stages: {}, result: 'running', hostsActedOn: 0 };
    this.runs.push({ record, hosts: new Set() });
    this.runs.splice(0, Math.max(0, this.runs.length - this.limit));
    const run = new ReconcileRun(record, this.clock, (r) => {
      if (this.open === r) this.open = null;
      this.emit(r);
    });
    this.open = run;
    this.emit(null);
    return run;
  }

  /**
   * The runs a previous agent recorded (oldest first), placed before this agent's. One still `running` was cut
   * off by the stop: it becomes `interrupted`, with no end time, as nobody saw it end.
   */
  restore(records: readonly ReconcileRecord[]): void {
    const restored = records.map((r) => ({ record: copy(r.result === 'running' ? { ...r, result: 'interrupted' } : r), hosts: null }));
    this.runs.unshift(...restored);
    this.runs.splice(0, Math.max(0, this.runs.length - this.limit));
  }

  /** An action of `kind` was started on `host` for `revision`: counted on the newest apply of that revision. */
  actionStarted(host: string, kind: string, revision: string): void {
    for (let i = this.runs.length - 1; i >= 0; i--) {
      const run = this.runs[i];
      if (!run?.hosts || run.record.revision !== revision || run.record.result === 'rejected') continue;
      run.hosts.add(host);
      run.record.hostsActedOn = run.hosts.size;
      run.record.actions = { ...run.record.actions, [kind]: (run.record.actions?.[kind] ?? 0) + 1 };
      this.emit(null);
      return;
    }
  }

  /** Oldest first, copies. */
  list(): ReconcileRecord[] {
    return this.runs.map(({ record }) => copy(record));
  }

  /** Called when a run starts, finishes (with it) or its host count moves (null). */
  onChange(listener: (finished: ReconcileRun | null) => void): void {
    this.listeners.push(listener);
  }

  private emit(run: ReconcileRun | null): void {
    for (const listener of this.listeners) listener(run);
  }
}

function copy(record: ReconcileRecord): ReconcileRecord {
  return { ...record, stages: { ...record.stages }, ...(record.actions ? { actions: { ...record.actions } } : {}) };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
