import type { DownloadLimits } from './image-limits.ts';

/**
 * Ends one download that takes too long in total, stalls, grows past its size cap, or whose commit apply was
 * abandoned (the outer signal): `signal` aborts with the reason. `aborted` rejects with that reason, so a caller can
 * race work that may not notice the signal (a read stuck in the thread pool) and return anyway.
 */
export class DownloadGuard {
  private readonly controller = new AbortController();
  readonly signal = this.controller.signal;
  readonly aborted: Promise<never>;
  private readonly totalTimer: NodeJS.Timeout;
  private idleTimer: NodeJS.Timeout | null = null;
  private bytes = 0;
  private readonly onOuterAbort: () => void;

  constructor(
    private readonly limits: DownloadLimits,
    private readonly fail: (reason: string) => Error,
    private readonly outer?: AbortSignal,
  ) {
    this.aborted = new Promise<never>((_, reject) => this.signal.addEventListener('abort', () => reject(this.signal.reason as Error), { once: true }));
    this.aborted.catch(() => undefined); // nobody may be racing it when it fires
    this.totalTimer = setTimeout(() => this.abort(fail(`not complete within ${seconds(limits.totalMs)} s (download.totalTimeoutSeconds)`)), limits.totalMs);
    this.onOuterAbort = () => this.abort(outer?.reason as Error);
    if (outer?.aborted) this.onOuterAbort();
    else outer?.addEventListener('abort', this.onOuterAbort, { once: true });
  }

  /** The source is open: from now on every gap between two chunks counts against the idle timeout. */
  opened(size?: number): void {
    if (size !== undefined && size > this.limits.maxBytes) throw this.tooLarge();
    this.armIdle();
  }

  progress(chunkBytes: number): void {
    this.bytes += chunkBytes;
    if (this.bytes > this.limits.maxBytes) this.abort(this.tooLarge());
    else this.armIdle();
  }

  dispose(): void {
    clearTimeout(this.totalTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.outer?.removeEventListener('abort', this.onOuterAbort);
  }

  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.abort(this.fail(`no data for ${seconds(this.limits.idleMs)} s (download.idleTimeoutSeconds)`)), this.limits.idleMs);
  }

  private tooLarge(): Error {
    return this.fail(`larger than the cap of ${(this.limits.maxBytes / 1024 / 1024).toFixed(this.limits.maxBytes % (1024 * 1024) === 0 ? 0 : 2)} MiB (download.maxMiB)`);
  }

  private abort(reason: Error): void {
    if (this.signal.aborted) return;
    this.dispose();
    this.controller.abort(reason);
  }
}

function seconds(ms: number): string {
  return String(Math.round(ms) / 1000);
}
