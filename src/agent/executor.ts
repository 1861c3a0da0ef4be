import type { BmcDriver } from '../bmc/driver.ts';
import type { Logger } from '../log.ts';
import type { Action, DesiredHost } from '../plan/types.ts';
import type { HostTracker } from './host-tracker.ts';

/**
 * Carries out what `decide` chose for a host, through its BMC driver. One action per host at a time; the
 * journal records that a provisioning started before the power is touched, so a restarted agent never
 * power-cycles a host twice for one change.
 */
export class Executor {
  private readonly busy = new Set<string>();

  constructor(
    private readonly tracker: HostTracker,
    private readonly driverFor: (host: string) => BmcDriver,
    private readonly firmwareOf: (host: string) => 'bios' | 'uefi',
    private readonly log: Logger,
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

  private async execute(desired: DesiredHost, action: Action): Promise<void> {
    const host = desired.name;
    switch (action.kind) {
      case 'rerender':
        await this.tracker.record(host, { kind: 'rerendered', digest: desired.digest, revision: desired.revision });
        return;
      case 'fail':
        await this.tracker.record(host, action.step ? { kind: 'failed', message: action.reason, step: action.step } : { kind: 'failed', message: action.reason });
        return;
      case 'power-off':
        this.log.info({ host, reason: action.reason }, 'powering off');
        try {
          await this.driverFor(host).powerOff();
          await this.tracker.record(host, { kind: 'powered-off' });
        } catch (err) {
          await this.tracker.record(host, { kind: 'failed', message: `power off: ${errorMessage(err)}`, step: 'power-off' });
        }
        return;
      case 'provision': {
        this.log.info({ host, reason: action.reason, revision: desired.revision }, 'provisioning');
        await this.tracker.record(host, { kind: 'provision-started', role: desired.role, digest: desired.digest, revision: desired.revision });
        const driver = this.driverFor(host);
        let step = 'boot-override';
        try {
          await driver.setBootOverride({ device: 'pxe', persistent: false, mode: this.firmwareOf(host) });
          step = 'power-cycle';
          await driver.powerCycle();
        } catch (err) {
          await this.tracker.record(host, { kind: 'failed', message: `${step}: ${errorMessage(err)}`, step });
        }
        return;
      }
      default:
        return;
    }
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
