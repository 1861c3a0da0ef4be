import type { Logger } from '../log.ts';

/**
 * The steps of a stop, each waited for at most its own bound and all of them together at most the budget, so a hung
 * BMC exchange or a push to a dead server cannot hold the stop. Every step is started; one that has not settled in
 * time is left running and named. A step that fails is logged and the stop goes on.
 */
export class StopSteps {
  private readonly deadline: number;
  private readonly left: string[] = [];
  private waiting: string | null = null;

  constructor(budgetMs: number, private readonly log: Logger) {
    this.deadline = Date.now() + budgetMs;
  }

  /** `describedElsewhere`: what the step waits for says itself what still runs (a commit apply, a fetch, BMC actions). */
  async wait(name: string, work: Promise<unknown> | null | undefined, maxMs: number, describedElsewhere = false): Promise<void> {
    if (!work) return;
    const ms = Math.max(0, Math.min(maxMs, this.deadline - Date.now()));
    let timer: NodeJS.Timeout | undefined;
    this.waiting = name;
    const settled = await Promise.race([
      work.then(
        () => true,
        (err: unknown) => {
          this.log.warn({ err, step: name }, 'a step of the stop failed; stopping the rest');
          return true;
        },
      ),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
    ]);
    clearTimeout(timer);
    this.waiting = null;
    if (!settled && !describedElsewhere) this.left.push(name);
  }

  /** The step being waited for and the steps given up on. */
  running(): string[] {
    return [...(this.waiting ? [this.waiting] : []), ...this.left];
  }
}
