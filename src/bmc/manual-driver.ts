import { MANUAL_CAPABILITIES } from '../core/capabilities.ts';
import type { BmcDriver } from './driver.ts';
import type { Capabilities } from '../core/capabilities.ts';
import type { BootOverride, PowerState } from '../core/power.ts';
import type { Logger } from '../log.ts';

/** What the operator was last asked to do for a host. */
export interface ManualInstruction {
  host: string;
  text: string;
  /** ISO time of the request. */
  at: string;
}

export interface ManualDriverOptions {
  /** Called with every instruction, e.g. to show it in the host's status. */
  onInstruction?: (instruction: ManualInstruction) => void;
  now?: () => Date;
}

/**
 * For machines without a BMC forseti can drive: every action becomes an instruction to the operator, in the log,
 * in `lastInstruction` and through `onInstruction` (the host's status shows it). The lifecycle still follows the
 * machine's own DHCP, HTTP and phone-home, so a hand-booted machine converges like any other.
 */
export class ManualDriver implements BmcDriver {
  readonly kind = 'manual';
  /** Nothing by itself: every action is an instruction to the operator. */
  readonly capabilities: Capabilities = MANUAL_CAPABILITIES;
  private last: ManualInstruction | null = null;

  constructor(
    private readonly host: string,
    private readonly log: Logger,
    private readonly options: ManualDriverOptions = {},
  ) {}

  /** The most recent instruction, or null if none was needed yet. */
  get lastInstruction(): ManualInstruction | null {
    return this.last;
  }

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
    this.tell(o.device === 'pxe' ? 'make the next boot a network (PXE) boot' : o.device === 'none' ? 'let the machine boot from its usual boot order' : `make the next boot use ${o.device}`);
  }

  async getBootOverride(): Promise<BootOverride | null> {
    return null;
  }

  private tell(what: string): void {
    this.last = { host: this.host, text: what, at: (this.options.now?.() ?? new Date()).toISOString() };
    this.log.warn({ host: this.host, operator: what }, `manual action needed on ${this.host}: ${what}`);
    this.options.onInstruction?.(this.last);
  }
}
