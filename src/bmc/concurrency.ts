// A process-wide bound on BMC work in flight: with hundreds of hosts changing at once, the agent's box and the
// management network see at most `limit` BMC exchanges at a time, started in FIFO order.

export class ConcurrencyLimit {
  private active = 0;
  private max: number;
  private readonly waiting: Array<() => void> = [];

  constructor(limit: number) {
    this.max = checked(limit);
  }

  get limit(): number {
    return this.max;
  }

  get running(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** A new bound (the agent's config changed): a larger one starts waiters at once, a smaller one lets running tasks finish. */
  resize(limit: number): void {
    this.max = checked(limit);
    while (this.active < this.max && this.waiting.length > 0) {
      this.active++;
      this.waiting.shift()!();
    }
  }

  /** Runs `task` once fewer than `limit` tasks run; its slot is freed however it ends. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      // The slot passes straight to the next waiter, so a newcomer cannot overtake it (unless the bound shrank).
      const next = this.active <= this.max ? this.waiting.shift() : undefined;
      if (next) next();
      else this.active--;
    }
  }
}

function checked(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`concurrency limit must be a positive integer, not ${limit}`);
  return limit;
}
