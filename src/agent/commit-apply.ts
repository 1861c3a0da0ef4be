import type { CommitSnapshot } from '../source/index.ts';

/** How long validation, secrets, rendering and activation may take together before the agent calls itself wedged. */
export const APPLY_STAGE_BOUND_MS = 5 * 60_000;

/**
 * The one commit being applied. A newer head or a stop abandons it through `signal`; every stage of the apply checks
 * or carries the signal, so an image that hangs never keeps a later commit (a revert) out. Each stage has a bound:
 * past it the apply is overdue and /healthz says so, because something ignored the signal or its own timeout.
 */
export class CommitApply {
  private readonly controller = new AbortController();
  readonly signal = this.controller.signal;
  /** Resolves once the apply no longer reads the working tree: only then may a fetch move it to a newer commit. */
  readonly treeReleased: Promise<void>;
  private releaseTree!: () => void;
  private stage = 'validate';
  private stageStarted: number;
  private stageBoundMs = APPLY_STAGE_BOUND_MS;
  done: Promise<void> = Promise.resolve();
  /** The commit's files in memory when the source read them (src/source/commit-snapshot.ts); dropped by treeDone(). */
  snapshot: CommitSnapshot | undefined;

  constructor(readonly commit: string, private readonly clock: () => number = Date.now) {
    this.stageStarted = clock();
    this.treeReleased = new Promise((resolve) => (this.releaseTree = resolve));
  }

  /** The tree has been read (validated, secrets opened), or the apply ended. */
  treeDone(): void {
    this.snapshot = undefined;
    this.releaseTree();
  }

  enter(stage: string, boundMs: number): void {
    this.signal.throwIfAborted();
    this.stage = stage;
    this.stageStarted = this.clock();
    this.stageBoundMs = boundMs;
  }

  abandon(reason: string): void {
    if (!this.signal.aborted) this.controller.abort(new CommitAbandonedError(this.commit, reason));
  }

  /** What it is doing, for a stop that must say what it leaves running. */
  describe(): string {
    return `applying commit ${this.commit.slice(0, 12)} (${this.stage}, ${Math.round((this.clock() - this.stageStarted) / 1000)} s)`;
  }

  /** Why the apply counts as wedged, or null while it is within its stage's bound. */
  overdue(): string | null {
    const ran = this.clock() - this.stageStarted;
    if (ran <= this.stageBoundMs) return null;
    return `commit ${this.commit.slice(0, 12)} has been in stage ${this.stage} for ${Math.round(ran / 1000)} s, past its bound of ${Math.round(this.stageBoundMs / 1000)} s`;
  }
}

/** A commit apply given up because a newer commit arrived or the agent stopped: neither applied nor rejected. */
export class CommitAbandonedError extends Error {
  override readonly name = 'CommitAbandonedError';
  constructor(readonly commit: string, reason: string) {
    super(`applying commit ${commit.slice(0, 12)} abandoned: ${reason}`);
  }
}
