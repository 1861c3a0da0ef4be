import { EventEmitter } from 'node:events';
import { CronSyntaxError, parseCron, scheduleCron, type Cron } from '../core/cron.ts';
import type { BootOverride, PowerState } from '../core/power.ts';
import type { Logger } from '../log.ts';
import { SCAN_CRON } from '../model/site-drift.ts';
import { detectDrift, NETWORK_BOOTING, type BmcReading, type Drift, type DriftDesired, type DriftObserved } from './drift.ts';
import { errorMessage } from '../core/errors.ts';

export interface DriftTarget {
  desired: DriftDesired;
  observed: DriftObserved;
  /** An action is under way for this host (the executor is busy): not read, its drifts are kept as they were. */
  busy?: boolean;
}

export interface ScanResult {
  at: number;
  /** Every drift found in this scan. */
  drifts: Drift[];
  /** Drifts not present in the previous scan. */
  detected: Drift[];
  /** Drifts of the previous scan that are gone now (healed, by forseti or by hand). */
  cleared: Drift[];
}

export type ScannerEvents = {
  /** Every drift of every scan; `first` is true in the scan that found it. */
  drift: [drift: Drift, first: boolean];
  cleared: [drift: Drift];
  scanned: [result: ScanResult];
};

/** Runs `run` on the cron expression until stopped. Injectable so tests need no clock. */
export type CronScheduler = (cron: Cron, run: () => void) => { stop(): void };

export interface DriftScannerOptions {
  cron: string;
  /** Every declared host, with what Git wants of it and what forseti observed. Hosts not listed are forgotten. */
  targets: () => DriftTarget[];
  readPower: (host: string) => Promise<PowerState>;
  /** undefined: this BMC cannot tell (no drift is derived from it). */
  readBootOverride: (host: string) => Promise<BootOverride | null | undefined>;
  log: Logger;
  clock?: () => number;
  scheduler?: CronScheduler;
  /** BMCs read at once (each driver serialises its own commands anyway). */
  concurrency?: number;
}

export class InvalidScanCronError extends Error {
  override readonly name = 'InvalidScanCronError';
  constructor(readonly expression: string) {
    super(`drift scan schedule ${JSON.stringify(expression)} is not a valid cron expression`);
  }
}

/**
 * Reads the BMCs on a schedule and reports drift. It never acts itself: listeners alert, and under `heal` carry
 * out `drift.correction` (see the wiring notes). A scan still running when the next one is due is not doubled.
 */
export class DriftScanner extends EventEmitter<ScannerEvents> {
  private previous = new Map<string, Drift>();
  private task: { stop(): void } | null = null;
  private running: Promise<ScanResult> | null = null;
  private readonly clock: () => number;
  private readonly cron: Cron;

  constructor(private readonly options: DriftScannerOptions) {
    super();
    try {
      this.cron = parseCron(options.cron, SCAN_CRON);
    } catch (err) {
      if (err instanceof CronSyntaxError) throw new InvalidScanCronError(options.cron);
      throw err;
    }
    this.clock = options.clock ?? Date.now;
  }

  start(): void {
    if (this.task) return;
    const scheduler = this.options.scheduler ?? scheduleCron;
    this.task = scheduler(this.cron, () => {
      if (this.running) {
        this.options.log.debug('drift scan still running; this run skipped');
        return;
      }
      void this.scan().catch((err: unknown) => this.options.log.error({ err }, 'drift scan failed'));
    });
  }

  async stop(): Promise<void> {
    this.task?.stop();
    this.task = null;
    await this.running?.catch(() => undefined);
  }

  /** One scan now; concurrent calls share it. */
  scan(): Promise<ScanResult> {
    this.running ??= this.scanOnce().finally(() => (this.running = null));
    return this.running;
  }

  private async scanOnce(): Promise<ScanResult> {
    const targets = this.options.targets();
    const readings = await this.readAll(targets.filter((t) => !t.busy));
    const at = this.clock();
    const current = new Map<string, Drift>();
    for (const target of targets) {
      const host = target.desired.name;
      if (target.busy) {
        for (const [key, drift] of this.previous) if (drift.host === host) current.set(key, drift);
        continue;
      }
      for (const drift of detectDrift(target.desired, target.observed, readings.get(host) ?? null, at)) current.set(keyOf(drift), drift);
    }
    const declared = new Set(targets.map((t) => t.desired.name));
    const detected = [...current].filter(([key]) => !this.previous.has(key)).map(([, d]) => d);
    // A drift of a host no longer declared is not "healed": it is forgotten without an event.
    const cleared = [...this.previous].filter(([key, d]) => !current.has(key) && declared.has(d.host)).map(([, d]) => d);
    this.previous = current;
    const result: ScanResult = { at, drifts: [...current.values()], detected, cleared };
    const fresh = new Set(detected);
    for (const drift of result.drifts) {
      if (fresh.has(drift)) this.options.log.warn({ host: drift.host, drift: drift.kind, mode: drift.mode, revision: drift.revision }, drift.message);
      this.emit('drift', drift, fresh.has(drift));
    }
    for (const drift of cleared) {
      this.options.log.info({ host: drift.host, drift: drift.kind }, 'drift cleared');
      this.emit('cleared', drift);
    }
    this.emit('scanned', result);
    return result;
  }

  private async readAll(targets: DriftTarget[]): Promise<Map<string, BmcReading>> {
    const readings = new Map<string, BmcReading>();
    const queue = targets.filter((t) => t.desired.enrollable !== false && (wantsPower(t) || wantsOverride(t)));
    const worker = async (): Promise<void> => {
      for (let t = queue.shift(); t; t = queue.shift()) readings.set(t.desired.name, await this.read(t));
    };
    await Promise.all(Array.from({ length: Math.max(1, this.options.concurrency ?? 4) }, worker));
    return readings;
  }

  private async read(target: DriftTarget): Promise<BmcReading> {
    const host = target.desired.name;
    try {
      const reading: BmcReading = { at: this.clock() };
      if (wantsPower(target)) reading.power = await this.options.readPower(host);
      if (wantsOverride(target)) {
        const override = await this.options.readBootOverride(host);
        if (override !== undefined) reading.bootOverride = override;
      }
      return reading;
    } catch (err) {
      return { at: this.clock(), error: errorMessage(err) };
    }
  }
}

/** Power drift is defined for hosts at rest: converged or off. */
function wantsPower(t: DriftTarget): boolean {
  return t.observed.phase === 'Converged' || t.observed.phase === 'Off';
}

/** A lost override matters only before the host reached DHCP. */
function wantsOverride(t: DriftTarget): boolean {
  return NETWORK_BOOTING.has(t.observed.phase) && (t.observed.step === undefined || t.observed.step === 'power-cycled');
}

export function keyOf(drift: Pick<Drift, 'host' | 'kind'>): string {
  return `${drift.host}|${drift.kind}`;
}
