// A log line for a condition that may repeat a thousand times a second (a connection cap reached, a flood of
// malformed requests): at most `perInterval` lines per interval, the next one saying how many were left out.

export interface ThrottledLog {
  warn(fields: object, message: string): void;
}

export class LogThrottle {
  private windowStart = -Infinity;
  private logged = 0;
  private suppressed = 0;

  constructor(
    private readonly log: ThrottledLog,
    private readonly options: { intervalMs: number; perInterval: number; clock?: () => number },
  ) {}

  /** Logs now, or counts the occurrence for the next line once this interval's lines are spent. */
  warn(fields: object, message: string): void {
    const now = (this.options.clock ?? Date.now)();
    if (now - this.windowStart >= this.options.intervalMs) {
      this.windowStart = now;
      this.logged = 0;
    }
    if (this.logged >= this.options.perInterval) {
      this.suppressed++;
      return;
    }
    this.logged++;
    const more = this.suppressed;
    this.suppressed = 0;
    // The last line of an interval says that what follows is only counted, and for how long.
    const limited = this.logged === this.options.perInterval ? { quietSeconds: Math.round(this.options.intervalMs / 1000) } : {};
    this.log.warn({ ...fields, ...(more > 0 ? { notLogged: more } : {}), ...limited }, message);
  }
}
