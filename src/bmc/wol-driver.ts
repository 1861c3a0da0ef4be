// BmcDriver for machines that can only be woken: a Wake-on-LAN magic packet from the agent to the provisioning
// subnet's directed broadcast. WoL cannot power off, cannot read the power state, and cannot set a boot device:
// such a machine must boot from the network first (PXE-first boot order); forseti's boot script sends a
// converged machine on to its disk.
import { WOL_CAPABILITIES } from '../core/capabilities.ts';
import type { BmcDriver } from './driver.ts';
import type { Capabilities } from '../core/capabilities.ts';
import type { BootOverride, PowerState } from '../core/power.ts';
import { BmcCommandError } from './errors.ts';
import type { Logger } from '../log.ts';
import { sendMagicPacket, WOL_PORT } from './wol/index.ts';
import { errorMessage } from '../core/errors.ts';

export interface WolTarget {
  /** The host's name in the lab; named in every error. */
  host: string;
  /** The boot NIC's MAC (the one whose firmware listens for the magic packet). */
  mac: string;
  /** The provisioning subnet's directed broadcast address, e.g. 10.77.0.255. */
  broadcast: string;
  /** Default 9. */
  port?: number;
  /** Send from this local address (the agent's on the provisioning network); default: any. */
  bindAddress?: string;
}

export interface WolDriverOptions {
  /** Copies of the packet per wake; default 3. */
  copies?: number;
  log?: Logger;
}

export class WolDriver implements BmcDriver {
  readonly kind = 'wol';
  /** What this driver can do; the lifecycle must not wait for power states it will never read. */
  readonly capabilities: Capabilities = WOL_CAPABILITIES;
  private readonly bmc: string;

  constructor(
    private readonly target: WolTarget,
    private readonly opts: WolDriverOptions = {},
  ) {
    this.bmc = `wake-on-lan ${target.broadcast}:${target.port ?? WOL_PORT}`;
  }

  async powerState(): Promise<PowerState> {
    return 'unknown';
  }

  async powerOn(): Promise<void> {
    const { mac, broadcast, port, bindAddress } = this.target;
    try {
      await sendMagicPacket(mac, { address: broadcast, ...(port !== undefined && { port }), ...(bindAddress !== undefined && { bindAddress }), ...(this.opts.copies !== undefined && { copies: this.opts.copies }) });
    } catch (err) {
      throw new BmcCommandError(this.target.host, this.bmc, `wake ${mac}`, errorMessage(err), { cause: err });
    }
  }

  async powerOff(): Promise<void> {
    throw new BmcCommandError(this.target.host, this.bmc, 'power off', 'Wake-on-LAN cannot power a machine off; shut it down from its OS or by hand');
  }

  /** A running machine ignores the packet: "cycle" is "wake" here. */
  async powerCycle(): Promise<void> {
    await this.powerOn();
  }

  async setBootOverride(o: BootOverride): Promise<void> {
    this.opts.log?.info(
      { host: this.target.host, bmc: this.bmc, device: o.device },
      `${this.target.host}: Wake-on-LAN cannot set a boot device (${o.device}); the machine must boot from the network first (PXE-first boot order)`,
    );
  }

  async getBootOverride(): Promise<BootOverride | null> {
    return null;
  }
}

export function createWolDriver(target: WolTarget, opts?: WolDriverOptions): WolDriver {
  return new WolDriver(target, opts);
}
