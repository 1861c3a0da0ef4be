import type { BmcDriver, Inventory } from '../bmc/driver.ts';
import type { Logger } from '../log.ts';
import type { Action, DesiredHost, ObservedInventory } from '../plan/types.ts';
import type { HostTracker } from './host-tracker.ts';

/** Enrolment retries back off from 10 s to 10 min, so a dead BMC costs little and holds up no other host. */
const ENROLL_BACKOFF_MS = [10_000, 30_000, 60_000, 300_000, 600_000];

/**
 * Carries out what `decide` chose for a host, through its BMC driver. One action per host at a time; the
 * journal records that a provisioning started before the power is touched, and that the power cycle happened
 * once it did, so a restarted agent never power-cycles a host twice for one change.
 */
export class Executor {
  private readonly busy = new Set<string>();

  constructor(
    private readonly tracker: HostTracker,
    private readonly driverFor: (host: string) => BmcDriver,
    private readonly firmwareOf: (host: string) => 'bios' | 'uefi',
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  isBusy(host: string): boolean {
    return this.busy.has(host);
  }

  /** Starts the action in the background; returns at once. */
  run(desired: DesiredHost, action: Action): void {
    if (action.kind === 'none' || action.kind === 'wait' || this.busy.has(desired.name)) return;
    this.busy.add(desired.name);
    this.execute(desired, action)
      .catch((err: unknown) => this.log.error({ err, host: desired.name, action: action.kind }, 'action failed unexpectedly'))
      .finally(() => this.busy.delete(desired.name));
  }

  /** Resolves once no action is running (for a clean stop). */
  async idle(): Promise<void> {
    while (this.busy.size > 0) await new Promise((r) => setTimeout(r, 50));
  }

  private async execute(desired: DesiredHost, action: Action): Promise<void> {
    const host = desired.name;
    const closeAttempt = { digest: desired.digest, revision: desired.revision };
    switch (action.kind) {
      case 'enroll':
        return this.enroll(host);
      case 'rerender':
        await this.tracker.record(host, { kind: 'rerendered', digest: desired.digest, revision: desired.revision });
        return;
      case 'fail':
        await this.tracker.record(host, action.step ? { kind: 'failed', message: action.reason, step: action.step } : { kind: 'failed', message: action.reason });
        return;
      case 'refuse':
        this.log.warn({ host, reason: action.reason }, 'role refused for this host');
        await this.tracker.record(host, { kind: 'failed', message: action.reason, step: 'refused', ...closeAttempt });
        return;
      case 'power-off':
        this.log.info({ host, reason: action.reason }, 'powering off');
        try {
          await this.driverFor(host).powerOff();
          await this.tracker.record(host, { kind: 'powered-off' });
        } catch (err) {
          await this.tracker.record(host, { kind: 'failed', message: `power off: ${errorMessage(err)}`, step: 'power-off', ...closeAttempt });
        }
        return;
      case 'power-on':
        this.log.info({ host, reason: action.reason }, 'powering on');
        try {
          // No boot override: a PXE-first machine is answered "boot from disk" by its iPXE script.
          await this.driverFor(host).powerOn();
          await this.tracker.record(host, { kind: 'powered-on' });
        } catch (err) {
          await this.tracker.record(host, { kind: 'failed', message: `power on: ${errorMessage(err)}`, step: 'power-on', ...closeAttempt });
        }
        return;
      case 'boot-override':
        this.log.info({ host, reason: action.reason }, 'setting the one-time PXE override again');
        await this.driverFor(host).setBootOverride({ device: 'pxe', persistent: false, mode: this.firmwareOf(host) }).catch((err: unknown) =>
          this.log.warn({ host, err: errorMessage(err) }, 'cannot set the boot override'),
        );
        return;
      case 'provision':
        this.log.info({ host, reason: action.reason, revision: desired.revision }, 'provisioning');
        await this.tracker.record(host, { kind: 'provision-started', role: desired.role, digest: desired.digest, revision: desired.revision });
        return this.netboot(host);
      case 'wipe':
        this.log.info({ host, reason: action.reason, revision: desired.revision }, 'wiping');
        await this.tracker.record(host, { kind: 'wipe-started', token: desired.wipeToken ?? '', digest: desired.digest, revision: desired.revision });
        return this.netboot(host);
      default:
        return;
    }
  }

  /** One-time PXE, read back by the driver, then a power cycle (or power on). */
  private async netboot(host: string): Promise<void> {
    const driver = this.driverFor(host);
    let step = 'boot-override';
    try {
      await driver.setBootOverride({ device: 'pxe', persistent: false, mode: this.firmwareOf(host) });
      step = 'power-cycle';
      await driver.powerCycle();
      await this.tracker.record(host, { kind: 'step', step: 'power-cycled' });
    } catch (err) {
      await this.tracker.record(host, { kind: 'failed', message: `${step}: ${errorMessage(err)}`, step });
    }
  }

  private async enroll(host: string): Promise<void> {
    const driver = this.driverFor(host);
    try {
      await driver.powerState();
      const inventory = driver.inventory ? toObserved(await driver.inventory()) : {};
      this.log.info({ host, inventory }, 'enrolled');
      await this.tracker.record(host, { kind: 'enrolled', inventory });
    } catch (err) {
      const failures = this.tracker.get(host).failures ?? 0;
      const delay = ENROLL_BACKOFF_MS[Math.min(failures, ENROLL_BACKOFF_MS.length - 1)] ?? 600_000;
      this.log.warn({ host, err: errorMessage(err), retryInSeconds: delay / 1000 }, 'BMC unreachable; enrolment retried later');
      await this.tracker.record(host, { kind: 'enroll-failed', message: errorMessage(err), retryAt: this.clock() + delay });
    }
  }
}

function toObserved(inventory: Inventory): ObservedInventory {
  const source = inventory as Inventory & { memoryGiB?: number; cpus?: number; disks?: number };
  const out: ObservedInventory = {};
  if (source.manufacturer) out.manufacturer = source.manufacturer;
  if (source.model) out.model = source.model;
  if (source.serialNumber) out.serialNumber = source.serialNumber;
  if (typeof source.memoryGiB === 'number') out.memoryGiB = source.memoryGiB;
  if (typeof source.cpus === 'number') out.cpus = source.cpus;
  if (typeof source.disks === 'number') out.disks = source.disks;
  return out;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
