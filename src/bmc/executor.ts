import { BootOnceNotKeptError } from './driver.ts';
import type { BmcDriver, Inventory } from './driver.ts';
import type { BootOverride } from '../core/power.ts';
import type { Logger } from '../log.ts';
import { newAttemptNonce } from '../render/token.ts';
import type { Action } from '../plan/types.ts';
import type { DesiredHost, ObservedInventory } from '../core/host-state.ts';
import type { HostRecorder } from '../core/host-lifecycle.ts';
import { errorMessage } from '../core/errors.ts';

/** Enrolment retries back off from 10 s to 10 min, so a dead BMC costs little and holds up no other host. */
const ENROLL_BACKOFF_MS = [10_000, 30_000, 60_000, 300_000, 600_000];
/** Setting the boot back to the disk is tried again after this when it failed. */
const BOOT_DISK_RETRY_MS = 60_000;

/**
 * Carries out what `decide` chose for a host, through its BMC driver. One action per host at a time; the
 * journal records that a provisioning started before the power is touched, and that the power cycle happened
 * once it did, so a restarted agent never power-cycles a host twice for one change.
 */
export class Executor {
  private readonly busy = new Set<string>();

  constructor(
    private readonly tracker: HostRecorder,
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

  /** Hosts with an action running (a stop names those it leaves behind). */
  busyHosts(): string[] {
    return [...this.busy];
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
        return this.power(host, 'off', closeAttempt);
      case 'power-off-by-hand':
        // The driver cannot do it: manual tells the operator (log and status); Wake-on-LAN has nobody to tell but the log.
        if (action.by === 'operator') {
          await this.driverFor(host).powerOff().catch((err: unknown) => this.log.warn({ host, err: errorMessage(err) }, 'cannot ask the operator'));
        } else {
          this.log.warn({ host, operator: `power ${host} off by hand or from its OS` }, `${host} must be off but cannot be powered off remotely: ${action.reason}`);
        }
        await this.tracker.record(host, { kind: 'powered-off' });
        return;
      case 'power-on':
        this.log.info({ host, reason: action.reason }, 'powering on');
        // No boot override: a PXE-first machine is answered "boot from disk" by its iPXE script.
        return this.power(host, 'on', closeAttempt);
      case 'boot-override':
        this.log.info({ host, reason: action.reason }, 'setting the one-time PXE override again');
        await this.pxeOverride(host).catch((err: unknown) => this.log.warn({ host, err: errorMessage(err) }, 'cannot set the boot override'));
        return;
      case 'boot-disk':
        return this.bootDisk(host, action.reason);
      case 'provision':
        this.log.info({ host, reason: action.reason, revision: desired.revision }, 'provisioning');
        await this.tracker.record(host, { kind: 'provision-started', role: desired.role, digest: desired.digest, revision: desired.revision, nonce: newAttemptNonce() });
        return this.netboot(host);
      case 'wipe':
        this.log.info({ host, reason: action.reason, revision: desired.revision }, 'wiping');
        await this.tracker.record(host, { kind: 'wipe-started', token: desired.wipeToken ?? '', digest: desired.digest, revision: desired.revision, nonce: newAttemptNonce() });
        return this.netboot(host);
      default:
        return;
    }
  }

  /** Power on or off; a failure fails the host at that step and closes the attempt, so it is not retried in a loop. */
  private async power(host: string, to: 'on' | 'off', closeAttempt: { digest: string; revision: string }): Promise<void> {
    try {
      const driver = this.driverFor(host);
      await (to === 'on' ? driver.powerOn() : driver.powerOff());
      await this.tracker.record(host, { kind: to === 'on' ? 'powered-on' : 'powered-off' });
    } catch (err) {
      await this.tracker.record(host, { kind: 'failed', message: `power ${to}: ${errorMessage(err)}`, step: `power-${to}`, ...closeAttempt });
    }
  }

  /**
   * PXE for the next boot. A BMC found to keep no one-time override gets PXE for every boot instead, and the host's
   * state says so (the boot is set back to the disk once the host is installed, see `decide`).
   */
  private async pxeOverride(host: string): Promise<void> {
    const driver = this.driverFor(host);
    const mode = this.firmwareOf(host);
    if (this.tracker.get(host).bmc?.bootOnce === false) {
      await driver.setBootOverride({ device: 'pxe', persistent: true, mode });
      await this.tracker.record(host, { kind: 'bmc-boot', holds: 'pxe' });
      return;
    }
    try {
      await driver.setBootOverride({ device: 'pxe', persistent: false, mode });
    } catch (err) {
      if (!(err instanceof BootOnceNotKeptError) || !isPxe(err.holds)) throw err;
      this.log.warn({ host, holds: err.holds }, 'the BMC keeps no one-time boot override: provisioning with PXE for every boot, the disk once installed');
      await this.tracker.record(host, { kind: 'bmc-boot', holds: 'pxe', onceKept: false });
    }
  }

  /** The disk for every boot, on a BMC left at PXE for every boot; a failure is retried later, the host stays as it is. */
  private async bootDisk(host: string, reason: string): Promise<void> {
    this.log.info({ host, reason }, 'setting the boot back to the disk');
    try {
      await this.driverFor(host).setBootOverride({ device: 'disk', persistent: true, mode: this.firmwareOf(host) });
      await this.tracker.record(host, { kind: 'bmc-boot', holds: 'disk' });
    } catch (err) {
      const message = `boot back to disk: ${errorMessage(err)}`;
      this.log.warn({ host, err: errorMessage(err) }, 'cannot set the boot back to the disk; retried later');
      await this.tracker.record(host, { kind: 'bmc-boot', retryAt: this.clock() + BOOT_DISK_RETRY_MS, message });
    }
  }

  /** PXE (see pxeOverride), then a power cycle (or power on). */
  private async netboot(host: string): Promise<void> {
    const driver = this.driverFor(host);
    let step = 'boot-override';
    try {
      await this.pxeOverride(host);
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
      const inventory = driver.inventory ? toObservedInventory(await driver.inventory()) : {};
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

/**
 * Any driver's inventory, flattened for the lifecycle and the status branch: processor sockets as `cpus`, drives
 * as `disks` (count) and `diskGB` (total), NIC MACs as one comma-separated string. What a BMC does not report stays
 * absent, and an absent fact never refuses a role.
 */
export function toObservedInventory(inventory: Inventory): ObservedInventory {
  const out: ObservedInventory = {};
  if (inventory.manufacturer) out.manufacturer = inventory.manufacturer;
  if (inventory.model) out.model = inventory.model;
  if (inventory.serialNumber) out.serialNumber = inventory.serialNumber;
  if (inventory.bmcFirmware) out.bmcFirmware = inventory.bmcFirmware;
  if (inventory.processors && isCount(inventory.processors.count)) {
    out.cpus = inventory.processors.count;
    if (inventory.processors.model) out.cpuModel = inventory.processors.model;
  }
  if (typeof inventory.memoryGiB === 'number' && Number.isFinite(inventory.memoryGiB) && inventory.memoryGiB >= 0) {
    out.memoryGiB = Math.round(inventory.memoryGiB * 100) / 100;
  }
  if (inventory.storage) {
    out.disks = inventory.storage.length;
    out.diskGB = Math.round(inventory.storage.reduce((sum, d) => sum + d.capacityBytes, 0) / 1e9);
  }
  if (inventory.macs && inventory.macs.length > 0) out.macs = inventory.macs.join(',');
  if (inventory.managementAddress) out.managementAddress = inventory.managementAddress;
  return out;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function isPxe(o: BootOverride | null | undefined): boolean {
  return o?.device === 'pxe';
}
