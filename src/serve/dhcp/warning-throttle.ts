import type { DhcpLogger } from './types.ts';

/**
 * Warnings about requests anyone can send many of a second (forged relays, foreign ciaddr): one line per kind and
 * interval, the next one saying how many were not logged in between.
 */
export class WarningThrottle {
  readonly #quietUntil = new Map<string, { at: number; notLogged: number }>();

  constructor(private readonly log: DhcpLogger, private readonly intervalMs = 60_000) {}

  warn(kind: string, fields: object, message: string): void {
    const now = performance.now();
    const quiet = this.#quietUntil.get(kind);
    if (quiet && now < quiet.at) {
      quiet.notLogged++;
      return;
    }
    this.#quietUntil.set(kind, { at: now + this.intervalMs, notLogged: 0 });
    const skipped = quiet && quiet.notLogged > 0 ? { notLogged: quiet.notLogged } : {};
    this.log.warn({ ...fields, ...skipped, quietSeconds: this.intervalMs / 1000 }, `${message} (at most one such line every ${this.intervalMs / 1000} s)`);
  }
}
