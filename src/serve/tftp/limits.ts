// Caps on concurrent transfers, over all clients and per client address. A request past a cap is
// dropped unanswered before anything is opened: no socket, no file, no thread, no timer. Silence
// rather than an ERROR because a PXE ROM that gets an ERROR gives up on network boot (the machine
// falls through to its next boot device), while one that hears nothing sends its request again after
// its own timeout, by when a transfer has usually ended (README "TFTP limits").

import type { TftpLogger } from './logger.ts';

export interface TftpLimits {
  /** Transfers at once over all clients. */
  maxTransfers: number;
  /** Transfers at once for one client address (all its ports). */
  maxTransfersPerClient: number;
}

/**
 * A PXE ROM runs one transfer at a time (two for a moment, when it aborts a size probe and asks
 * again), so 8 per address is plenty. 1000 at once is five times the boot storm the benchmarks
 * measure (200 machines within a second), and costs the native engine about 2 file descriptors
 * and under 1 KiB each.
 */
export const DEFAULT_TFTP_LIMITS: TftpLimits = { maxTransfers: 1000, maxTransfersPerClient: 8 };

/** A warning when a cap is reached, at most once per interval however many requests it drops. */
export class RefusalLog {
  readonly #log: TftpLogger;
  readonly #intervalMs: number;
  readonly #last = new Map<string, { at: number; dropped: number }>();

  constructor(log: TftpLogger, intervalMs = 10_000) {
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  /**
   * A transfer whose client never acknowledged anything within `withinMs` was ended, at `cap`, so that a new request
   * from `client` could start.
   */
  evicted(cap: 'global' | 'per-client', limit: number, client: string, withinMs: number): void {
    const dropped = this.#count('evicted');
    if (dropped === undefined) return;
    const where = cap === 'global' ? `${limit} transfers are running, the most allowed at once` : `client ${client} has ${limit} transfers running, the most allowed for one address`;
    this.#log.warn(
      { cap, limit, client, evicted: dropped, withinMs, intervalMs: this.#intervalMs },
      `tftp: ${where}; the oldest whose client acknowledged nothing within ${withinMs} ms is ended to serve a new request (${dropped} since the last such line; at most one line per ${this.#intervalMs / 1000} s)`,
    );
  }

  /** The events of `kind` to report in a line now, counting this one; undefined while this interval's line is out. */
  #count(kind: string): number | undefined {
    const now = performance.now();
    const seen = this.#last.get(kind);
    if (seen && now - seen.at < this.#intervalMs) {
      seen.dropped++;
      return undefined;
    }
    this.#last.set(kind, { at: now, dropped: 0 });
    return (seen?.dropped ?? 0) + 1;
  }

  /** One request dropped by `cap` (its limit `limit`) from `client`. */
  dropped(cap: 'global' | 'per-client', limit: number, client: string): void {
    // The first drop is reported at once; the ones suppressed since the last line are counted in it.
    const dropped = this.#count(cap);
    if (dropped === undefined) return;
    const what = cap === 'global'
      ? `${limit} transfers are running, the most allowed at once`
      : `client ${client} has ${limit} transfers running, the most allowed for one address`;
    this.#log.warn(
      { cap, limit, client, dropped, intervalMs: this.#intervalMs },
      `tftp: ${what}; requests past it are dropped unanswered until one ends (${dropped} dropped since the last such line; at most one line per ${this.#intervalMs / 1000} s)`,
    );
  }
}

/** A positive whole number, or a RangeError naming the setting. */
export function checkLimits(limits: Partial<TftpLimits>): TftpLimits {
  const out = { ...DEFAULT_TFTP_LIMITS, ...limits };
  for (const [name, value] of Object.entries(out)) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`TFTP ${name} must be a whole number of at least 1, not ${value}`);
  }
  return out;
}
