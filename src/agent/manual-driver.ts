import type { BmcDriver, BootOverride, PowerState } from '../bmc/driver.ts';
import type { Logger } from '../log.ts';

/**
 * For machines without a BMC forseti can drive: every action becomes an instruction to the operator, in the log
 * and (through the host's status) on the status branch. The lifecycle still follows the machine's own DHCP,
 * HTTP and phone-home, so a hand-booted machine converges like any other.
 */
export class ManualDriver implements BmcDriver {
  readonly kind = 'manual';

  constructor(private readonly host: string, private readonly log: Logger) {}

  async powerState(): Promise<PowerState> {
    return 'unknown';
  }

  async powerOn(): Promise<void> {
    this.tell('power the machine on');
  }

  async powerOff(): Promise<void> {
    this.tell('power the machine off');
  }

  async powerCycle(): Promise<void> {
    this.tell('power-cycle the machine (or power it on)');
  }

  async setBootOverride(o: BootOverride): Promise<void> {
    this.tell(o.device === 'pxe' ? 'make the next boot a network (PXE) boot' : `make the next boot use ${o.device}`);
  }

  async getBootOverride(): Promise<BootOverride | null> {
    return null;
  }

  private tell(what: string): void {
    this.log.warn({ host: this.host, operator: what }, `manual action needed on ${this.host}: ${what}`);
  }
}
