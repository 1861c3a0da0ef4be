// What the reconciler asks of any machine's management controller. IPMI, Redfish, the HP Onboard
// Administrator (per blade) and Wake-on-LAN implement it; "manual" (src/bmc/manual-driver.ts) asks a human.
import type { Capabilities } from '../core/capabilities.ts';
import type { BootOverride, PowerState } from '../core/power.ts';

export { BmcAuthError, BmcCommandError, BmcUnreachableError, BootOnceNotKeptError, BootOverrideNotAppliedError, PowerStateNotReachedError } from './errors.ts';

export interface InventoryDrive {
  name?: string;
  model?: string;
  capacityBytes: number;
}

/**
 * What a BMC reports of its machine. Every driver fills what its protocol offers: Redfish all of it, the Onboard
 * Administrator all but storage, IPMI only the FRU identity. The executor flattens it for the lifecycle
 * (src/bmc/executor.ts `toObservedInventory`), where role requirements are checked against it.
 */
export interface Inventory {
  manufacturer?: string;
  model?: string;
  serialNumber?: string;
  bmcFirmware?: string;
  /** CPU sockets populated, and their model when the BMC says. */
  processors?: { count: number; model?: string };
  memoryGiB?: number;
  /** Drives present (absent bays left out). */
  storage?: InventoryDrive[];
  /** MAC addresses of the host's NICs, lower case, colon separated, in the BMC's order. */
  macs?: string[];
  /** The host's own management controller, when an enclosure manager reports it (a blade's iLO address). */
  managementAddress?: string;
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
  /** Enclosure managers (HP Onboard Administrator): the host's bay; `address` is then the enclosure manager's. */
  bay?: number;
  /** HTTPS BMCs (Redfish): verified against the system's CAs unless one of these says otherwise. */
  tls?: BmcTls;
  /** SSH BMCs (HP Onboard Administrator): the host key pinned, `SHA256:…` as ssh-keygen -lf prints it. */
  sshHostKey?: string;
}

export interface BmcTls {
  /** PEM of the CA (or the self-signed certificate) to trust for this BMC instead of the system's. */
  ca?: string;
  /** SHA-256 fingerprint of the BMC's certificate (hex, colons optional): that certificate is trusted, nothing else. */
  fingerprint256?: string;
  /** No verification at all; logged as a warning once per BMC. */
  insecure?: boolean;
}

export interface BmcDriver {
  readonly kind: string;
  /** Absent: everything (FULL_CAPABILITIES). */
  readonly capabilities?: Capabilities;
  powerState(): Promise<PowerState>;
  /** Each power write returns once the BMC reports the new state (bounded polling). */
  powerOn(): Promise<void>;
  /** Hard off, no OS shutdown. */
  powerOff(): Promise<void>;
  /** Off then on; a host that is off is just powered on. */
  powerCycle(): Promise<void>;
  /** Asks the OS to shut down (ACPI power button) and waits for "off". */
  softOff?(): Promise<void>;
  /**
   * Writes, then reads back. Throws BootOnceNotKeptError when the BMC took a one-time override but keeps it for every
   * boot, else BootOverrideNotAppliedError when it kept something else (undone where possible; the error says what the
   * BMC holds now).
   */
  setBootOverride(o: BootOverride): Promise<void>;
  /** null: no override is active (or the BMC's is one forseti never sets, e.g. CD/DVD). */
  getBootOverride(): Promise<BootOverride | null>;
  inventory?(): Promise<Inventory>;
  /** Watts now, or null if the BMC cannot tell. */
  powerDraw?(): Promise<number | null>;
  close?(): Promise<void>;
}
