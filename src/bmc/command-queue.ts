// BMCs are small, slow computers: many drop sessions or answer garbage when two clients talk at
// once or commands come back to back. So each BMC gets one queue: at most one command in flight,
// and a pause of at least `minIntervalMs` between the end of one command and the start of the next.

import { setTimeout as delay } from 'node:timers/promises';

export const DEFAULT_MIN_INTERVAL_MS = 2000;

export interface CommandQueueOptions {
  /** Default DEFAULT_MIN_INTERVAL_MS; 0 in tests. */
  minIntervalMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class CommandQueue {
  private readonly minIntervalMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private tail: Promise<unknown> = Promise.resolve();
  private lastEnd = Number.NEGATIVE_INFINITY;

  constructor(options: CommandQueueOptions = {}) {
    this.minIntervalMs = options.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => delay(ms));
  }

  /** Runs `command` after every command queued before it has settled, then keeps the pause. */
  run<T>(command: () => Promise<T>): Promise<T> {
    const result = this.tail.then(async () => {
      const wait = this.lastEnd + this.minIntervalMs - this.now();
      if (wait > 0) await this.sleep(wait);
      try {
        return await command();
      } finally {
        this.lastEnd = this.now();
      }
    });
    this.tail = result.catch(() => undefined);
    return result;
  }
}
