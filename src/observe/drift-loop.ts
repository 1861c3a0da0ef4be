import type { BmcDriver } from '../bmc/driver.ts';
import type { Logger } from '../log.ts';
import type { Site } from '../model/types.ts';
import { resolveHostDrift } from './drift-policy.ts';
import { DriftScanner, type DriftTarget } from './drift-scanner.ts';
import type { Correction, Drift } from './drift.ts';
import type { HostSightings } from './drift-sightings.ts';
import type { Action } from '../plan/types.ts';
import type { Generation } from '../render/generation.ts';
import type { Executor } from '../bmc/executor.ts';
import type { HostTracker } from './host-tracker.ts';

/** Who is told of drift found and drift gone (the agent's alerts). */
export interface DriftAlerts {
  drift(drift: Drift, first: boolean): void;
  cleared(drift: Drift): void;
}

export interface DriftLoopHooks {
  /** The drift found on `host` changed (detected, cleared, or another kind): its sync and health may have moved. */
  driftChanged?: (host: string) => void;
  /** A healing action was handed to the executor. */
  actionStarted?: (host: string, action: Action, revision: string) => void;
}

/**
 * Reads the BMCs on the site's drift schedule, alerts on what differs from the current commit, and under `heal`
 * converges back through the executor (so a healing host is busy like any other). A `git revert` changes the
 * desired state; drift is always measured against the commit being served, so forseti never fights it.
 */
export class DriftLoop {
  private scanner: DriftScanner | null = null;
  private cron = '';
  private readonly current = new Map<string, Drift[]>();

  constructor(
    private readonly generation: () => Generation | null,
    private readonly tracker: HostTracker,
    private readonly executor: Executor,
    private readonly sightings: HostSightings,
    private readonly driverFor: (host: string) => BmcDriver,
    private readonly alerts: DriftAlerts,
    private readonly log: Logger,
    private readonly hooks: DriftLoopHooks = {},
  ) {}

  configure(site: Site): void {
    if (this.scanner && this.cron === site.drift.scanCron) return;
    void this.scanner?.stop();
    this.cron = site.drift.scanCron;
    this.scanner = new DriftScanner({
      cron: site.drift.scanCron,
      log: this.log,
      targets: () => this.targets(),
      readPower: (h) => this.driverFor(h).powerState(),
      readBootOverride: (h) => this.driverFor(h).getBootOverride(),
    });
    this.scanner.on('scanned', (result) => {
      const before = new Map([...this.current].map(([host, drifts]) => [host, kindsOf(drifts)]));
      this.current.clear();
      for (const d of result.drifts) this.current.set(d.host, [...(this.current.get(d.host) ?? []), d]);
      for (const host of new Set([...before.keys(), ...this.current.keys()])) {
        if (before.get(host) !== kindsOf(this.current.get(host) ?? [])) this.hooks.driftChanged?.(host);
      }
    });
    this.scanner.on('drift', (drift, first) => {
      this.alerts.drift(drift, first);
      if (drift.act && drift.correction) this.heal(drift, drift.correction);
    });
    this.scanner.on('cleared', (drift) => this.alerts.cleared(drift));
    this.scanner.start();
  }

  /** Scans now (tests and the first scan after a commit). */
  scan(): Promise<unknown> {
    return this.scanner?.scan() ?? Promise.resolve();
  }

  driftsOf(host: string): Drift[] {
    return this.current.get(host) ?? [];
  }

  async stop(): Promise<void> {
    await this.scanner?.stop();
  }

  private targets(): DriftTarget[] {
    const gen = this.generation();
    if (!gen) return [];
    return [...gen.hosts].map(([name, rendered]) => {
      const host = gen.lab.hosts.get(name);
      const policy = resolveHostDrift(gen.lab.site.drift, { labels: host?.labels ?? {}, ...(host?.drift ? { drift: host.drift } : {}) });
      return {
        desired: { ...rendered.desired, drift: policy },
        observed: { ...this.tracker.get(name), seen: this.sightings.get(name) },
        busy: this.executor.isBusy(name),
      };
    });
  }

  private heal(drift: Drift, correction: Correction): void {
    const desired = this.generation()?.hosts.get(drift.host)?.desired;
    if (!desired || this.executor.isBusy(drift.host)) return;
    this.log.info({ host: drift.host, drift: drift.kind, correction: correction.kind }, 'healing drift');
    const reason = `heal: ${drift.message}`;
    const action: Action = correction.kind === 'reprovision' ? { kind: 'provision', reason } : { kind: correction.kind, reason };
    this.hooks.actionStarted?.(drift.host, action, desired.revision);
    this.executor.run(desired, action);
  }
}

function kindsOf(drifts: readonly Drift[]): string {
  return drifts.map((d) => d.kind).sort().join(',');
}
