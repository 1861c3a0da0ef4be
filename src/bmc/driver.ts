// What the reconciler asks of any machine's management controller. IPMI implements it now;
// Redfish, HP Onboard Administrator, Wake-on-LAN and "manual" (a human) come later.

export { BmcAuthError, BmcCommandError, BmcUnreachableError, BootOverrideNotAppliedError, PowerStateNotReachedError } from './errors.ts';

export type PowerState = 'on' | 'off' | 'unknown';
export type BootDevice = 'pxe' | 'disk' | 'none';

export interface BootOverride {
  /** 'none' clears any override: the firmware's own boot order applies. */
  device: BootDevice;
  /** All future boots, or only the next one. */
  persistent: boolean;
  /** Unset: the target's `firmware`, if known. Unset in a read-back: the BMC does not report it. */
  mode?: 'bios' | 'uefi';
}

export interface Inventory {
  manufacturer?: string;
  model?: string;
  serialNumber?: string;
  bmcFirmware?: string;
}

/** One host's BMC as the agent knows it, with the credential already resolved. */
export interface BmcTarget {
  /** The host's name in the lab; named in every error. */
  host: string;
  address: string;
  port?: number;
  username: string;
  password: string;
  cipherSuite?: number;
  firmware?: 'bios' | 'uefi';
}

export interface BmcDriver {
  readonly kind: string;
  powerState(): Promise<PowerState>;
  /** Each power write returns once the BMC reports the new state (bounded polling). */
  powerOn(): Promise<void>;
  /** Hard off, no OS shutdown. */
  powerOff(): Promise<void>;
  /** Off then on; a host that is off is just powered on. */
  powerCycle(): Promise<void>;
  /** Asks the OS to shut down (ACPI power button) and waits for "off". */
  softOff?(): Promise<void>;
  /** Writes, then reads back; throws BootOverrideNotAppliedError if the BMC did not keep it. */
  setBootOverride(o: BootOverride): Promise<void>;
  /** null: no override is active (or the BMC's is one forseti never sets, e.g. CD/DVD). */
  getBootOverride(): Promise<BootOverride | null>;
  inventory?(): Promise<Inventory>;
  /** Watts now, or null if the BMC cannot tell. */
  powerDraw?(): Promise<number | null>;
  close?(): Promise<void>;
}
