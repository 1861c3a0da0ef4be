// The inputs and outputs of the reconcile decision. Plain data only, so the decision stays a pure function.

export const PHASES = ['Pending', 'Provisioning', 'Converged', 'Failed', 'Off'] as const;
export type Phase = (typeof PHASES)[number];

/** Provisioning steps, in the order a booting machine passes them. */
export const PROVISION_STEPS = ['power-cycled', 'dhcp', 'script', 'kernel', 'initrd', 'phone-home'] as const;
export type ProvisionStep = (typeof PROVISION_STEPS)[number];

/** What the current commit wants of one host. */
export interface DesiredHost {
  name: string;
  role: string;
  /** `image`/`chain`: the host boots something from the network; `off`: the host is kept off. */
  boot: 'image' | 'chain' | 'off';
  power: 'on' | 'off';
  /** After the OS phoned home, later PXE boots go to the local disk (`disk`) or boot the role again (`pxe`). */
  afterInstall: 'disk' | 'pxe';
  /** Digest of everything rendered for this host (script, cmdline, config, image digests). */
  digest: string;
  revision: string;
}

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
  /** Epoch ms when the current phase began. */
  since: number;
  /** Epoch ms when the current provisioning step was reached. */
  stepSince?: number;
  lastError?: { message: string; step?: string };
}

export type Action =
  /** Nothing to do. */
  | { kind: 'none'; reason: string }
  /** Artifacts changed but the role did not: the new generation serves them at the next boot; no power action. */
  | { kind: 'rerender'; reason: string }
  /** One-time PXE, then power cycle (or on), then wait for the phone-home. */
  | { kind: 'provision'; reason: string; fromRole?: string }
  /** A provisioning is under way and within its time. */
  | { kind: 'wait'; reason: string }
  /** The provisioning under way ran out of time. */
  | { kind: 'fail'; reason: string; step?: ProvisionStep }
  /** Power the host off and keep it off. */
  | { kind: 'power-off'; reason: string };

/** What a host gets when it asks for its iPXE script. */
export type BootAnswer = 'install' | 'disk' | 'chain' | 'exit';
