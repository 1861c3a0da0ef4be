// The one door every BMC exchange of one owner (src/bmc/bmc-state.ts) goes through:
//  - a global bound on exchanges in flight (the agent's `bmc.maxConcurrent`). A slot is held for one exchange only
//    (one ipmitool run, one HTTP request, one OA login attempt or command): its timeout runs inside the slot, while the
//    waits between exchanges (a BMC's minimum interval, retry delays, power polls) run outside it;
//  - per BMC, a back-off once it proved unreachable (all of a command's attempts failed): until the back-off ends,
//    calls to that BMC fail at once and take no slot, so a dead BMC cannot hold the others' slots hostage.
// Each BMC also keeps its own queue (command-queue.ts, the OA session): at most one exchange of one BMC in flight.
// Back-off marks outlive drivers (rebuilt per commit); retain() drops those of BMCs no longer declared.
import { ConcurrencyLimit } from './concurrency.ts';

export const DEFAULT_BMC_MAX_CONCURRENT = 16;

/** Back-off after 1, 2, … unreachable commands in a row; the last value repeats. Shorter than enrolment's back-off. */
export const UNREACHABLE_BACKOFF_MS: readonly number[] = [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000];

/** A call not even tried: its BMC is backing off after failing to answer. Drivers turn it into BmcUnreachableError. */
export class BmcBackingOffError extends Error {
  override readonly name = 'BmcBackingOffError';
  constructor(
    readonly bmc: string,
    readonly failures: number,
    readonly retryAt: number,
    readonly lastError: string,
    now: number,
  ) {
    super(`not tried: unreachable ${failures} time(s) in a row (last: ${lastError}); next attempt in ${Math.max(1, Math.ceil((retryAt - now) / 1000))} s`);
  }
}

export interface BmcBackoff {
  failures: number;
  /** Epoch ms from which calls are tried again. */
  retryAt: number;
  lastError: string;
}

export interface BmcGateOptions {
  /** Default DEFAULT_BMC_MAX_CONCURRENT. */
  maxConcurrent?: number;
  backoffMs?: readonly number[];
  now?: () => number;
}

export class BmcGate {
  readonly limit: ConcurrencyLimit;
  private readonly backoffMs: readonly number[];
  private readonly now: () => number;
  private readonly marks = new Map<string, BmcBackoff>();

  constructor(options: BmcGateOptions = {}) {
    this.limit = new ConcurrencyLimit(options.maxConcurrent ?? DEFAULT_BMC_MAX_CONCURRENT);
    this.backoffMs = options.backoffMs ?? UNREACHABLE_BACKOFF_MS;
    this.now = options.now ?? Date.now;
  }

  /** Throws BmcBackingOffError while `bmc` backs off. */
  check(bmc: string): void {
    const mark = this.marks.get(bmc);
    const now = this.now();
    if (mark && now < mark.retryAt) throw new BmcBackingOffError(bmc, mark.failures, mark.retryAt, mark.lastError, now);
  }

  /** One exchange with `bmc`: refused at once while it backs off, else run in a global slot. */
  exchange<T>(bmc: string, exchange: () => Promise<T>): Promise<T> {
    try {
      this.check(bmc);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.limit.run(exchange);
  }

  /**
   * How a command to `bmc` ended, reported by its driver: `unreachable` (every attempt went unanswered) starts or
   * lengthens its back-off; any answer, even an error, ends it. A call refused by the back-off itself is not reported.
   */
  settle(bmc: string, outcome: { unreachable: string } | 'answered'): void {
    if (outcome === 'answered') {
      this.marks.delete(bmc);
      return;
    }
    const failures = (this.marks.get(bmc)?.failures ?? 0) + 1;
    const delay = this.backoffMs[Math.min(failures, this.backoffMs.length) - 1] ?? 0;
    this.marks.set(bmc, { failures, retryAt: this.now() + delay, lastError: outcome.unreachable });
  }

  /**
   * One driver command to `bmc` (its exchanges pass `exchange`), settled by how it ended: an error for which
   * `unreachable` returns a reason backs the BMC off; success or any other error is an answer. A call refused by
   * the back-off itself settles nothing. Rethrows the command's error as it is.
   */
  async command<T>(bmc: string, run: () => Promise<T>, unreachable: (err: unknown) => string | undefined): Promise<T> {
    let result: T;
    try {
      result = await run();
    } catch (err) {
      if (!(err instanceof BmcBackingOffError)) {
        const reason = unreachable(err);
        this.settle(bmc, reason !== undefined ? { unreachable: reason } : 'answered');
      }
      throw err;
    }
    this.settle(bmc, 'answered');
    return result;
  }

  /** Drops the back-off of every BMC not in `keep` (BMCs no longer declared, or all of them: an empty set). */
  retain(keep: ReadonlySet<string>): void {
    for (const bmc of this.marks.keys()) if (!keep.has(bmc)) this.marks.delete(bmc);
  }

  /** The back-off of `bmc`, if it has one (also once expired, until the BMC answers). */
  backoff(bmc: string): BmcBackoff | undefined {
    const mark = this.marks.get(bmc);
    return mark ? { ...mark } : undefined;
  }
}
