// From facts about machines to proposed host files: a pure function of the facts and what the lab declares. Each
// machine is proposed (a host document that validates with the lab, role left to a human), skipped because the lab
// declares it already (a MAC, its serial, its enclosure bay or its BMC), or refused with the reason (no MAC, no free
// address, a name taken by a file that must not be overwritten, no role that keeps a machine off). `forseti discover`
// uses it for enclosures and BMCs; the agent's PXE discovery builds the same facts from the inventory image's report.
//
// A proposed host's role is the lab's `off` profile: merged as is, the machine is kept off and never PXE-booted, so
// nothing is installed or power-cycled until a human sets the role.
import { ipv4ToNumber } from '../model/ipv4.ts';
import { addressNote, freeAddress } from './address-picker.ts';
import type { DiskFact, MachineFacts, NicFact } from './facts.ts';
import { renderHostYaml, oneLine } from './host-yaml.ts';
import type { HostComments, HostDocument } from './host-yaml.ts';
import { addHost, bayKey, bmcKey, markUsed } from './lab-index.ts';
import type { LabIndex } from './lab-index.ts';
import { expandNamePattern } from '../core/name-pattern.ts';

export interface ProposeOptions {
  /** `bld-{bay:02}`; placeholders: the facts' `fields` and serial, model, manufacturer, mac. */
  namePattern: string;
  /** Used for a machine the pattern has no value for (the default patterns only; a given pattern is kept to). */
  fallbackPattern?: string;
  /** Addresses are picked upward from this one (default the subnet's first). */
  firstIp?: string;
  /** What found the machines, for the host files' first comment: "forseti discover oa 10.77.1.2". */
  command: string;
}

export type Proposal =
  | { kind: 'proposed'; machine: string; name: string; file: string; document: HostDocument; yaml: string }
  | { kind: 'declared'; machine: string; host: string; why: string }
  | { kind: 'refused'; machine: string; why: string };

export const MAX_NICS = 32;
export const MAX_DISKS = 64;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** A kernel block device name, as the inventory schema takes it. */
const DEVICE = /^[a-z][a-z0-9]{0,31}$/;
/** What firmware writes where it has no serial number (DMI defaults, vendor fillers). */
const NO_SERIAL = /^(?:\[?unknown\]?|not specified|not applicable|n\/?a|none|default string|to be filled by o\.e\.m\.?|system serial number|0+|1234567890|0123456789|x+)$/i;

export function proposeHosts(machines: readonly MachineFacts[], lab: LabIndex, options: ProposeOptions): Proposal[] {
  const index = cloneIndex(lab);
  const firstIp = options.firstIp === undefined ? undefined : ipv4ToNumber(options.firstIp);
  // A BMC address inside the subnet is never given to a host, even one found in this run.
  for (const m of machines) for (const a of [...(m.bmcAddresses ?? []), m.managementAddress ?? '', m.bmc.address ?? '']) if (a) markUsed(index, a);
  return machines.map((facts) => proposeOne(facts, index, options, firstIp));
}

function proposeOne(facts: MachineFacts, index: LabIndex, options: ProposeOptions, firstIp: number | undefined): Proposal {
  const machine = oneLine(facts.source, 120);
  const nics = cleanNics(facts.nics);
  const serial = cleanSerial(facts.serial);
  const declared = declaredBy(facts, nics, serial, index);
  if (declared) return { kind: 'declared', machine, ...declared };
  if (nics.length === 0) return { kind: 'refused', machine, why: facts.nicsUnknown ?? 'no MAC address of the machine\'s NICs was reported, and a host file needs its boot NIC\'s MAC' };
  if (index.offRole === undefined) {
    return { kind: 'refused', machine, why: 'the lab has no profile that keeps a machine off (boot: {off: true}), the role a discovered machine gets until a human sets one: add profiles/off.yaml' };
  }
  const manufacturer = cleanText(facts.manufacturer, 64);
  const model = cleanText(facts.model, 96);
  const values: Record<string, string | number | undefined> = { ...facts.fields, serial, model, manufacturer, mac: nics[0]!.mac.replace(/:/g, '') };
  let named = expandNamePattern(options.namePattern, values);
  if (!('name' in named) && options.fallbackPattern !== undefined) named = expandNamePattern(options.fallbackPattern, values);
  if ('missing' in named) return { kind: 'refused', machine, why: `the name pattern "${options.namePattern}" uses {${named.missing}}, which was not reported for this machine` };
  if ('empty' in named) return { kind: 'refused', machine, why: `the name pattern "${options.namePattern}" gives an empty name for this machine` };
  const name = named.name;
  if (index.names.has(name)) return { kind: 'refused', machine, why: `the name ${name} is taken (hosts/${name}.yaml, or an earlier machine of this run): a host file is never overwritten; choose another --name-pattern` };
  const ip = freeAddress(index, firstIp);
  if (ip === undefined) return { kind: 'refused', machine, why: `no free address left in ${index.network?.subnet.cidr ?? 'the site subnet'} for this machine's ip` };

  const document = hostDocument(facts, { name, ip, nics, serial, manufacturer, model, role: index.offRole });
  const comments = hostComments(facts, nics, index, options, index.offRole);
  addHost(index, { name, macs: document.macs, ip, bmc: document.bmc, ...(document.enclosure ? { enclosure: document.enclosure } : {}), labels: document.labels ?? {} });
  return { kind: 'proposed', machine, name, file: `hosts/${name}.yaml`, document, yaml: renderHostYaml(document, comments, index.schemaComment) };
}

/** The host of the lab (or of this run) that already declares this machine, and how it was recognised. */
function declaredBy(facts: MachineFacts, nics: NicFact[], serial: string | undefined, index: LabIndex): { host: string; why: string } | undefined {
  for (const nic of nics) {
    const host = index.macs.get(nic.mac);
    if (host) return { host, why: `its MAC ${nic.mac} is declared by host ${host}` };
  }
  if (serial) {
    const host = index.serials.get(serial.toUpperCase());
    if (host) return { host, why: `its serial number ${serial} is host ${host}'s (label serial)` };
  }
  if (facts.enclosure) {
    const host = index.bays.get(bayKey(facts.enclosure));
    if (host) return { host, why: `enclosure ${facts.enclosure.name} bay ${facts.enclosure.bay} is host ${host} (other MACs: a replaced blade? update that host)` };
  }
  const key = bmcKey(facts.bmc, facts.enclosure?.bay);
  const byBmc = key === undefined ? undefined : index.bmcs.get(key);
  if (byBmc) return { host: byBmc, why: `its BMC (${key}) already drives host ${byBmc}` };
  const own = [facts.managementAddress, facts.bmc.type !== 'hp-oa' && facts.bmc.system === undefined ? facts.bmc.address : undefined];
  for (const address of own) {
    const host = address === undefined ? undefined : index.bmcAddresses.get(address.toLowerCase());
    if (host) return { host, why: `its management controller ${address} is host ${host}'s (its BMC or management-address)` };
  }
  return undefined;
}

interface Identity {
  name: string;
  ip: string;
  nics: NicFact[];
  serial: string | undefined;
  manufacturer: string | undefined;
  model: string | undefined;
  role: string;
}

function hostDocument(facts: MachineFacts, id: Identity): HostDocument {
  const fullModel = id.model === undefined ? undefined : id.manufacturer && !id.model.toLowerCase().startsWith(id.manufacturer.toLowerCase()) ? `${id.manufacturer} ${id.model}` : id.model;
  const what = [fullModel ?? id.manufacturer, id.serial ? `serial ${id.serial}` : undefined].filter(Boolean).join(', ');
  const hardware: NonNullable<HostDocument['hardware']> = {};
  if (fullModel) hardware.model = fullModel;
  const cpus = count(facts.cpus, 1, 64);
  const cores = count(facts.cores, 1, 4096);
  if (cpus !== undefined) hardware.cpus = cpus;
  if (cores !== undefined) hardware.cores = cores;
  if (facts.memoryGiB !== undefined && Number.isFinite(facts.memoryGiB) && facts.memoryGiB > 0 && facts.memoryGiB < 1e6) hardware.memoryGiB = Math.round(facts.memoryGiB * 100) / 100;
  const disks = cleanDisks(facts.disks);
  if (disks.length > 0) hardware.disks = disks;
  if (facts.firmware) hardware.firmware = facts.firmware;
  const labels: Record<string, string> = {};
  if (id.serial) labels['serial'] = id.serial;
  const own = facts.managementAddress;
  if (own && /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(own)) labels['management-address'] = own;
  return {
    apiVersion: 'forseti/v1',
    kind: 'Host',
    name: id.name,
    description: oneLine(`${facts.source}${what ? `: ${what}` : ''}`, 200),
    macs: id.nics.map((n) => n.mac),
    ip: id.ip,
    bmc: facts.bmc,
    ...(facts.enclosure ? { enclosure: { ...facts.enclosure } } : {}),
    ...(Object.keys(hardware).length > 0 ? { hardware } : {}),
    role: id.role,
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
  };
}

function hostComments(facts: MachineFacts, nics: NicFact[], index: LabIndex, options: ProposeOptions, offRole: string): HostComments {
  const power = facts.power && facts.power !== 'unknown' ? `, power ${facts.power} when found` : '';
  const header = [
    `Proposed by \`${options.command}\`: ${facts.source}${power}.`,
    facts.power === 'on'
      ? `role ${offRole} is a placeholder: merged as is, the agent powers this machine off and keeps it off (never network-booted) until you set its role.`
      : `role ${offRole} is a placeholder: the machine is kept off and never network-booted until you set its role.`,
    ...facts.notes,
  ];
  const named = (facts.disks ?? []).slice(0, MAX_DISKS).map((d) => [d.device, d.name, d.model].filter(Boolean).join(' ')).filter(Boolean);
  const hardware = facts.disks === undefined ? ['disks: not reported; declare them if a role requires disks'] : named.length > 0 ? [`disks as reported: ${named.join('; ')}`] : [];
  return {
    header,
    macs: nics.map((n, i) => [n.label, i === 0 ? (n.pxe ? 'boot NIC (network boot enabled)' : 'boot NIC: check it is the one that network-boots') : undefined].filter(Boolean).join(', ')),
    ip: addressNote(index),
    role: 'set the role to adopt this machine',
    hardware,
  };
}

/** The MAC a proposal for these facts starts its host's `macs` with (the network-booting NIC's), if any is valid. */
export function bootMacOf(facts: Pick<MachineFacts, 'nics'>): string | undefined {
  return cleanNics(facts.nics)[0]?.mac;
}

/** Valid unicast MACs, lower case, once each, the network-booting NIC first, at most MAX_NICS. */
function cleanNics(nics: readonly NicFact[]): NicFact[] {
  const seen = new Set<string>();
  const out: NicFact[] = [];
  for (const nic of nics) {
    const mac = nic.mac.trim().toLowerCase().replace(/-/g, ':');
    if (!MAC.test(mac) || seen.has(mac) || mac === '00:00:00:00:00:00' || (parseInt(mac.slice(0, 2), 16) & 1) === 1) continue;
    seen.add(mac);
    out.push({ mac, ...(nic.label ? { label: oneLine(nic.label, 80) } : {}), ...(nic.pxe ? { pxe: true } : {}) });
    if (out.length === MAX_NICS) break;
  }
  const boot = out.findIndex((n) => n.pxe);
  if (boot > 0) out.unshift(...out.splice(boot, 1));
  return out;
}

function cleanDisks(disks: readonly DiskFact[] | undefined): NonNullable<NonNullable<HostDocument['hardware']>['disks']> {
  const out: NonNullable<NonNullable<HostDocument['hardware']>['disks']> = [];
  for (const d of (disks ?? []).slice(0, MAX_DISKS)) {
    if (!Number.isFinite(d.sizeGB) || d.sizeGB <= 0 || d.sizeGB > 1e7) continue;
    // A BMC's drive name ("SATA Bay 1") is no OS device name (sda): the comments carry it, the document does not.
    const device = d.device !== undefined && DEVICE.test(d.device) ? d.device : undefined;
    // Tenths of a GB, and a small disk (a virtual one, a SATA DOM) to the MB rather than rounded away to 0.
    const sizeGB = d.sizeGB >= 1 ? Math.round(d.sizeGB * 10) / 10 : Math.max(0.001, Math.round(d.sizeGB * 1000) / 1000);
    out.push({ ...(device ? { name: device } : {}), sizeGB, ...(d.type ? { type: d.type } : {}) });
  }
  return out;
}

function cleanSerial(serial: string | undefined): string | undefined {
  const s = cleanText(serial, 64);
  return s === undefined || NO_SERIAL.test(s) ? undefined : s;
}

function cleanText(text: string | undefined, max: number): string | undefined {
  if (text === undefined) return undefined;
  const clean = oneLine(text, max);
  return clean === '' || /^\[?unknown\]?$/i.test(clean) ? undefined : clean;
}

function count(n: number | undefined, min: number, max: number): number | undefined {
  return n !== undefined && Number.isInteger(n) && n >= min && n <= max ? n : undefined;
}

function cloneIndex(index: LabIndex): LabIndex {
  return {
    ...index,
    names: new Set(index.names),
    macs: new Map(index.macs),
    serials: new Map(index.serials),
    bays: new Map(index.bays),
    bmcs: new Map(index.bmcs),
    bmcAddresses: new Map(index.bmcAddresses),
    usedIps: new Set(index.usedIps),
  };
}
