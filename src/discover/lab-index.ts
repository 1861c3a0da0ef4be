// What a lab already declares, as discovery needs it: which names, MACs, serials, enclosure bays and BMCs are taken,
// which addresses of the provisioning network are used, and the role that keeps a new machine off.
import { networkContext } from '../model/check-network.ts';
import type { NetworkContext } from '../model/check-network.ts';
import { ipv4ToNumber, subnetContains } from '../model/ipv4.ts';
import type { Host, HostBmc, Lab } from '../model/types.ts';

export interface LabIndex {
  /** Host names, and the stems of every file in hosts/: a proposal never takes one (a file is never overwritten). */
  names: Set<string>;
  /** Lower-case MAC → the host declaring it. */
  macs: Map<string, string>;
  /** Serial number (upper-case) from a host's `serial` label → the host. */
  serials: Map<string, string>;
  /** `enclosure/bay` → the host. */
  bays: Map<string, string>;
  /** A BMC identity (bmcKey) → the host it drives. */
  bmcs: Map<string, string>;
  /**
   * The address of a machine's own management controller → the host: a BMC address (not an enclosure manager's, not a
   * multi-system service's) or a `management-address` label. A blade whose iLO is some host's BMC is declared.
   */
  bmcAddresses: Map<string, string>;
  /** Addresses of the provisioning subnet a new host must not take (hosts' ips and BMCs inside the subnet). */
  usedIps: Set<number>;
  network: NetworkContext | undefined;
  /** The profile whose boot is `off`: `off` if it is one, else the first such; undefined when the lab has none. */
  offRole: string | undefined;
  /** The first line pointing editors at the host schema, as the lab's files write it. */
  schemaComment: string | undefined;
}

export const DEFAULT_BMC_PORTS: Record<string, number> = { redfish: 443, ipmi: 623, 'hp-oa': 22 };

/** The machine a BMC block drives: its type, address and port, the blade's bay or the Redfish system. */
export function bmcKey(bmc: HostBmc, bay?: number): string | undefined {
  if (bmc.address === undefined) return undefined;
  const port = bmc.port ?? DEFAULT_BMC_PORTS[bmc.type] ?? 0;
  const which = bmc.type === 'hp-oa' ? ` bay ${bay ?? '?'}` : bmc.type === 'redfish' && bmc.system !== undefined ? ` system ${bmc.system}` : '';
  return `${bmc.type} ${bmc.address.toLowerCase()}:${port}${which}`;
}

export function bayKey(enclosure: { name: string; bay: number }): string {
  return `${enclosure.name}/${enclosure.bay}`;
}

/**
 * `hostFiles`: the names of the files in hosts/ (any extension); `schemaComment`: the first line of the lab's host
 * files when it points at a schema (`# yaml-language-server: $schema=…`).
 */
export function indexLab(lab: Lab, hostFiles: readonly string[], schemaComment?: string): LabIndex {
  const index: LabIndex = {
    names: new Set(hostFiles.map((f) => f.replace(/\.ya?ml$/i, ''))),
    macs: new Map(),
    serials: new Map(),
    bays: new Map(),
    bmcs: new Map(),
    bmcAddresses: new Map(),
    usedIps: new Set(),
    network: networkContext(lab.site),
    offRole: offRoleOf(lab),
    schemaComment,
  };
  for (const host of lab.hosts.values()) addHost(index, host);
  return index;
}

/** Records a host (a lab's, or one proposed earlier in the same run). */
export function addHost(index: LabIndex, host: Pick<Host, 'name' | 'macs' | 'ip' | 'bmc' | 'enclosure' | 'labels'>): void {
  index.names.add(host.name);
  for (const mac of host.macs) if (!index.macs.has(mac.toLowerCase())) index.macs.set(mac.toLowerCase(), host.name);
  const serial = host.labels['serial'];
  if (serial) index.serials.set(serial.toUpperCase(), host.name);
  if (host.enclosure) index.bays.set(bayKey(host.enclosure), host.name);
  const key = bmcKey(host.bmc, host.enclosure?.bay);
  if (key !== undefined) index.bmcs.set(key, host.name);
  if (host.bmc.address !== undefined && host.bmc.type !== 'hp-oa' && host.bmc.system === undefined) index.bmcAddresses.set(host.bmc.address.toLowerCase(), host.name);
  const own = host.labels['management-address'];
  if (own) index.bmcAddresses.set(own.toLowerCase(), host.name);
  markUsed(index, host.ip);
  if (host.bmc.address !== undefined) markUsed(index, host.bmc.address);
}

/** An address the picker must skip, when it lies in the provisioning subnet. */
export function markUsed(index: LabIndex, address: string): void {
  const n = ipv4ToNumber(address);
  if (n !== undefined && index.network && subnetContains(index.network.subnet, n)) index.usedIps.add(n);
}

function offRoleOf(lab: Lab): string | undefined {
  const off = [...lab.profiles.values()].filter((p) => p.boot.kind === 'off').map((p) => p.name);
  return off.includes('off') ? 'off' : off.sort()[0];
}
