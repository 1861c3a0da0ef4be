// The in-memory lab model: what one commit of the lab repository declares.
// Every entity remembers where it was declared so that any later error can name file:line.

import type { ConvergeSpec } from '../converge/converge-spec.ts';
import type { FieldRefs, SourceRef } from '../core/source-ref.ts';
import type { AlertsConfig } from './site-alerts.ts';
import type { DiscoverySettings } from './site-discovery.ts';
import type { DriftMode, SiteDriftPolicy } from './site-drift.ts';

export type DhcpMode = 'full' | 'proxy' | 'off';
export type ProxyBootFileIn = 'offer' | 'pxe-ack';

/** Which hosts a rollout group, power schedule or window applies to: all given criteria must hold. */
export interface HostSelector {
  roles?: string[];
  hosts?: string[];
  labels?: Record<string, string>;
}

export interface Site {
  name: string;
  network: {
    /** Provisioning interface on the agent's box. */
    interface: string;
    /** CIDR, e.g. `10.77.0.0/24`. */
    subnet: string;
    gateway?: string;
    dns: string[];
    domain?: string;
  };
  dhcp: {
    mode: DhcpMode;
    leaseSeconds: number;
    /** Proxy mode: where PXE firmware is told its boot file (see the DHCP server's `ProxyBootFileIn`); absent: in the offer. */
    proxyBootFileIn?: ProxyBootFileIn;
    /** The giaddr of each DHCP relay whose requests are answered; absent: relayed requests are dropped. */
    relays?: string[];
    /** Optional dynamic range for machines not declared in `hosts/`. */
    pool?: { start: string; end: string };
  };
  agent: {
    /** The agent's address on the provisioning network. */
    address: string;
    httpPort: number;
    tftpPort: number;
  };
  policies: {
    /** Time allowed from power cycle to phone-home before a host is Failed. */
    provisionTimeoutSeconds: number;
    /** Time allowed between two provisioning steps. */
    stepTimeoutSeconds: number;
    /** What a converged host that PXE-boots again is told: boot its disk. */
    afterConverged: 'disk';
  };
  /** The role a host boots when its wipe token changes. */
  wipe: { profile: string };
  /** Groups that limit how many hosts are out of service at once; they roll out in this order. */
  rollout: { groups: Array<{ name: string; selector: HostSelector; maxUnavailable: number }> };
  /** Power schedules: from `powerOff` firing until `powerOn` fires, the selected hosts are kept off. */
  schedules: Array<{ name: string; selector: HostSelector; powerOff: string; powerOn: string }>;
  /** Provisioning and wipes start only inside a window, when any are declared. */
  maintenance: { windows: Array<{ cron: string; durationMinutes: number }> };
  /** What forseti does when the lab no longer matches Git. */
  drift: SiteDriftPolicy;
  /** Where alerts go. */
  alerts: AlertsConfig;
  /** Unknown machines booted into the inventory image and proposed as host files (src/model/site-discovery.ts). */
  discovery: DiscoverySettings;
  refs: FieldRefs;
}

export type BmcType = 'ipmi' | 'redfish' | 'hp-oa' | 'wol' | 'manual';

export interface HostBmc {
  type: BmcType;
  address?: string;
  port?: number;
  /** Name of a credential the agent resolves from its secrets file or environment; never a password. */
  credential?: string;
  /** Redfish: the ComputerSystem's Id on a service with several (a chassis manager); unset: the first member. */
  system?: string;
  /** IPMI cipher suite (ipmitool -C), default 3. */
  cipherSuite?: number;
  /** Redfish over HTTPS: how the BMC's certificate is trusted instead of through the system's CAs. */
  tls?: HostBmcTls;
  /** HP Onboard Administrator: its SSH host key pinned, `SHA256:…` (ssh-keygen -lf); unset: trusted on first use. */
  sshHostKey?: string;
}

/** Exactly one of `ca`, `fingerprint`, `insecure` (the schema says so). */
export interface HostBmcTls {
  /** Path of a PEM file in the lab repository: the CA that issued the BMC's certificate. */
  ca?: string;
  /** The text of that file, read by the loader (so the agent trusts what the commit holds). */
  caPem?: string;
  /** SHA-256 fingerprint of the BMC's certificate, as written (`sha256:` prefix and colons optional). */
  fingerprint?: string;
  /** No verification; the agent warns once per BMC. */
  insecure?: true;
}

export interface HostDisk {
  name?: string;
  sizeGB: number;
  type?: 'sas' | 'sata' | 'ssd' | 'nvme' | 'hdd';
}

export interface HostHardware {
  model?: string;
  cpus?: number;
  cores?: number;
  memoryGiB?: number;
  disks: HostDisk[];
  firmware: 'bios' | 'uefi';
  arch: 'x86_64' | 'arm64';
}

export interface Host {
  name: string;
  description?: string;
  /** Lower-case, colon-separated; the first one is the boot NIC. */
  macs: string[];
  ip: string;
  bmc: HostBmc;
  enclosure?: { name: string; bay: number };
  hardware: HostHardware;
  /** Name of a profile in `profiles/`. */
  role: string;
  power: 'on' | 'off';
  /** A wipe token: changing it asks for exactly one wipe (the site's wipe role) before the role is installed. */
  wipe?: string;
  /** Overrides the site's and groups' drift policy for this host. */
  drift?: DriftMode;
  labels: Record<string, string>;
  refs: FieldRefs;
}

export interface ProfileRequirements {
  memoryGiB?: number;
  cpus?: number;
  disks?: number;
  firmware?: Array<'bios' | 'uefi'>;
}

export interface ProfileConfig {
  /** File name under which the rendered config is served, e.g. `machine.yaml`, `user-data`. */
  name: string;
  /** Template text (inline, or read from `file:` relative to the lab root by the loader). */
  template: string;
  /** When the template was read from `file:`: that path, relative to the lab root (positions in problems refer to it). */
  file?: string;
  /** Config files carry secrets (join tokens, PKI): served only to their own host with its token. */
  secret: boolean;
  /**
   * `boot.config.talosBase`: the role's Talos machine config from `talosctl gen config --with-secrets`, SOPS-encrypted
   * for the agent's age key, as committed (`text` empty when it could not be read: validation says why). The config
   * above is merged over it as a patch, then the host's own values (src/render/talos/).
   */
  talosBase?: { file: string; text: string };
}

/** `boot.omni`: Omni's join parameters for the kernel line; the join token is the password of a credential the agent holds. */
export interface OmniJoin {
  /** `siderolink.api` without `?jointoken=`. */
  api: string;
  /** The credential whose password is the join token. */
  credential: string;
  /** `talos.events.sink=` and `talos.logging.kernel=` as Omni hands them out. */
  eventSink?: string;
  kernelLog?: string;
}

export type ProfileBoot =
  /** Boot a kernel and initrd from an image, with a templated command line. */
  | { kind: 'image'; image: string; cmdline: string; config?: ProfileConfig; omni?: OmniJoin }
  /** Chain to another iPXE script (e.g. the netboot.xyz menu). */
  | { kind: 'chain'; url: string }
  /** Do not boot anything: the host is powered off and kept off. */
  | { kind: 'off' };

export interface Profile {
  name: string;
  description?: string;
  boot: ProfileBoot;
  /** After the OS phoned home, later PXE boots are sent to the local disk (Talos installs itself there). */
  afterInstall: 'disk' | 'pxe';
  /** What makes a host of this role Converged; DEFAULT_CONVERGE (the phone-home) when the profile says nothing. */
  converge: ConvergeSpec;
  requires: ProfileRequirements;
  refs: FieldRefs;
}

export interface ImageFile {
  url: string;
  sha256: string;
}

export interface Image {
  name: string;
  kernel: ImageFile;
  initrds: ImageFile[];
  /** The image's own download timeouts and size cap (agent defaults otherwise, never above the agent's ceilings). */
  download?: ImageDownload;
  refs: FieldRefs;
}

export interface ImageDownload {
  connectTimeoutSeconds?: number;
  idleTimeoutSeconds?: number;
  totalTimeoutSeconds?: number;
  maxMiB?: number;
}

export interface Lab {
  site: Site;
  hosts: Map<string, Host>;
  profiles: Map<string, Profile>;
  images: Map<string, Image>;
}

/** One problem found while loading or validating a lab; printed as `file:line:col: message`. */
export interface LabProblem {
  ref: SourceRef;
  /** Stable machine-readable kind, e.g. `schema`, `duplicate-mac`, `unknown-profile`. */
  code: string;
  message: string;
  /** On a `more-problems` problem: how many problems past the cap it stands for. */
  more?: number;
}
