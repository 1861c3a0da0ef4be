export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 8, initialMs: 5_000, maxMs: 600_000 };

/** Delay before attempt `attempt + 1` after `attempt` failures: doubling from `initialMs`, capped at `maxMs`. */
export function backoffMs(failures: number, policy: RetryPolicy): number {
  if (failures < 1) return 0;
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(failures - 1, 30));
}

/** HTTP answers worth another attempt: timeouts, rate limits, server errors. Other 4xx never succeed later. */
export function isRetriableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}
