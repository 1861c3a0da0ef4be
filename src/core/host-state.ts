// The shared vocabulary of a host's state: its phases and provisioning steps, what the current commit wants of it
// (DesiredHost) and what forseti knows of it (ObservedHost, the one host-state shape: the journal holds it, the
// status branch, /v1/status and `forseti status` show views of it). Plain data only, so the reconcile decision
// stays a pure function.
import type { Capabilities } from './capabilities.ts';

export const PHASES = ['Pending', 'Enrolling', 'Ready', 'Provisioning', 'Converged', 'Failed', 'Wiping', 'Off'] as const;
export type Phase = (typeof PHASES)[number];

/** Provisioning steps, in the order a booting machine passes them. */
export const PROVISION_STEPS = ['requested', 'power-cycled', 'dhcp', 'script', 'kernel', 'initrd', 'phone-home'] as const;
export type ProvisionStep = (typeof PROVISION_STEPS)[number];

/**
 * What the host's BMC reported when the host was enrolled, flat (it is written to the status branch as is).
 * `cpus`, `memoryGiB` and `disks` are what role requirements are checked against.
 */
export interface ObservedInventory {
  manufacturer?: string;
  model?: string;
  serialNumber?: string;
  bmcFirmware?: string;
  /** Processor sockets populated. */
  cpus?: number;
  cpuModel?: string;
  memoryGiB?: number;
  /** Drives present. */
  disks?: number;
  /** Their capacity together, in GB (10^9 bytes, as drives are sold). */
  diskGB?: number;
  /** NIC MACs, lower case, comma-separated, in the BMC's order. */
  macs?: string;
  /** A blade's own management controller, as its enclosure manager reports it. */
  managementAddress?: string;
}

/**
 * What forseti found out about the host's BMC at run time and what it left on it. `bootOnce: false`: the BMC takes a
 * one-time boot override but keeps it for every boot. `holds`: the persistent override forseti left (`pxe` until the
 * host is installed, then `disk`). `retryAt`: a failed write is tried again after this (epoch ms).
 */
export interface ObservedBmc {
  bootOnce?: false;
  holds?: 'pxe' | 'disk';
  retryAt?: number;
}

/** What the current commit wants of one host. */
export interface DesiredHost {
  name: string;
  role: string;
  /** `image`/`chain`: the host boots something from the network; `off`: the host is kept off. */
  boot: 'image' | 'chain' | 'off';
  power: 'on' | 'off';
  /**
   * What turned `power` off beyond the host's own file, named in every reason the decision gives for it: `power
   * schedule nightly` (set by the reconcile pass, src/plan/reconcile.ts).
   */
  keptOffBy?: string;
  /** After the OS phoned home, later PXE boots go to the local disk (`disk`) or boot the role again (`pxe`). */
  afterInstall: 'disk' | 'pxe';
  /** Digest of everything rendered for this host (script, cmdline, config, image digests). */
  digest: string;
  revision: string;
  /** A wipe token from the host file: a new value asks for exactly one wipe before the role is (re)installed. */
  wipeToken?: string;
  /** The role's hardware requirements, checked against the BMC's inventory once the host is enrolled. */
  requires?: { memoryGiB?: number; cpus?: number; disks?: number };
  /** False for drivers that cannot read anything back (`capabilities.powerState` false: Wake-on-LAN, manual): no enrolment step. */
  enrollable?: boolean;
  /** What the host's driver can do; absent: everything (a BMC). */
  capabilities?: Capabilities;
  /** The role's converge timeouts where its profile overrides site.yaml's policies (`converge.stepTimeoutSeconds`, ...). */
  convergeTimeouts?: { stepMs?: number; provisionMs?: number };
  /** The same of the site's wipe role, for a wipe under way (phase Wiping). */
  wipeTimeouts?: { stepMs?: number; provisionMs?: number };
}

/** One step a converge signal reported (src/converge): when it began, and what it waits on or how it ended. */
export interface ConvergeStepRecord {
  /** The signal: `talosEvents`, `installerReports`, ... */
  signal: string;
  name: string;
  /** Epoch ms. */
  at: number;
  detail?: string;
  result?: 'SUCCESS' | 'WARN' | 'FAIL';
}

/** Converge steps kept per attempt (the oldest are dropped). */
export const MAX_CONVERGE_STEPS = 30;

/** What forseti last knew of one host: from its own journal and the events it saw. */
export interface ObservedHost {
  phase: Phase;
  step?: ProvisionStep;
  /** Role and artifact digest the host last converged with. */
  appliedRole?: string;
  appliedDigest?: string;
  appliedRevision?: string;
  /** Role and digest of the provisioning under way or last attempted (failed included). */
  attemptRole?: string;
  attemptDigest?: string;
  attemptRevision?: string;
  /**
   * Nonce of the provisioning or wipe under way or last attempted: with the agent's key it gives the attempt's
   * token (src/render/token.ts). Useless without that key; kept in the journal, never published.
   */
  attemptNonce?: string;
  /** When the attempt under way wrote its OS to the disk (a converge signal said so): its PXE answer is the disk since. */
  attemptInstalledAt?: number;
  /** The steps the converge signals of the attempt under way (or the last) reported, oldest first; the last is where it is. */
  convergeSteps?: ConvergeStepRecord[];
  /** Wipe token of the wipe under way or last attempted, and of the last wipe that completed. */
  attemptWipeToken?: string;
  wipedToken?: string;
  /** Set once the BMC answered and its inventory was read. */
  inventory?: ObservedInventory;
  /** What the BMC turned out to do, and the boot override forseti left on it. */
  bmc?: ObservedBmc;
  /** Epoch ms before which a failed enrolment is not retried. */
  retryAt?: number;
  /** Consecutive enrolment failures (for back-off). */
  failures?: number;
  /** Epoch ms when the current phase began. */
  since: number;
  /** Epoch ms when the current provisioning step was reached. */
  stepSince?: number;
  lastError?: { message: string; step?: string };
}
