// A machine no host declares, as its own inventory image saw it: a report read by InventoryReader
// (src/discover/inventory-report.ts) turned into the facts proposeHosts takes. The NIC that PXE-booted goes first;
// memory, sockets, cores, disks (removable ones left out) and the DMI identity come from the report; the BMC's
// address, when the image could read it over the system interface, becomes the host's BMC only when the site names
// the credential forseti should use for such BMCs, and otherwise is left for the human in a comment.
import type { HostBmc } from '../model/types.ts';
import type { DiskFact, MachineFacts, NicFact } from './facts.ts';
import { normalizeMac } from './inventory-report.ts';
import type { InventoryDisk, InventoryReport } from './inventory-report.ts';

export interface InventoryFactsOptions {
  /** The MAC the agent saw PXE-boot (its DHCP request); default the NIC the report was sent from. */
  bootedMac?: string;
  /** How the machine booted, as the agent saw it in DHCP (client architecture): the host's `hardware.firmware`. */
  firmware?: 'bios' | 'uefi';
  /** site.yaml `discovery.bmcCredential`: a reported BMC becomes `bmc: {type: ipmi, address, credential}`. */
  bmcCredential?: string;
}

/** IANA enterprise numbers of the BMC vendors the image reports most (IPMI Get Device ID, Manufacturer ID). */
const BMC_VENDORS: Record<number, string> = { 2: 'IBM', 11: 'HPE', 674: 'Dell', 10876: 'Supermicro' };

const GIB = 1024 ** 3;
/** What firmware writes where the board maker filled in nothing (DMI defaults of AMI and others). */
const DMI_FILLER = /^(?:to be filled by o\.e\.m\.?|o\.e\.m\.?|default string|not specified|not applicable|none|system (?:manufacturer|product name|serial number|version)|0+|x+)$/i;

export function factsFromInventory(report: InventoryReport, options: InventoryFactsOptions = {}): MachineFacts {
  const bootMac = options.bootedMac !== undefined ? normalizeMac(options.bootedMac) : (report.boot.mac ?? report.nics.find((n) => n.boot)?.mac);
  const notes: string[] = [];
  const system = report.dmi.system ?? {};
  const facts: MachineFacts = {
    source: `inventory of ${bootMac ?? report.nics[0]?.mac ?? 'a machine without NICs'}`,
    fields: {},
    nics: report.nics.map((n): NicFact => ({ mac: n.mac, label: nicLabel(n), ...(n.mac === bootMac ? { pxe: true } : {}) })),
    bmc: { type: 'manual' },
    notes,
  };
  const vendor = dmiValue(system.vendor);
  const product = dmiValue(system.product);
  const serial = dmiValue(system.serial);
  if (vendor) facts.manufacturer = vendor;
  if (product) facts.model = product;
  if (serial) facts.serial = serial;
  else notes.push('the firmware reports no system serial number (DMI)');

  const memory = report.memory;
  if (memory.totalBytes > 0) {
    facts.memoryGiB = memory.totalBytes / GIB;
    if (memory.source === 'kernel') notes.push('memory: what the kernel manages (the firmware lists no DIMMs); the installed size is a little larger');
  }
  facts.cpus = report.cpus.sockets;
  facts.cores = report.cpus.cores;
  if (report.cpus.model) facts.cpuModel = report.cpus.model;
  notes.push(`CPUs: ${report.cpus.sockets} × ${report.cpus.model ?? 'unknown model'}, ${report.cpus.cores} cores, ${report.cpus.threads} threads`);

  const removable = report.disks.filter((d) => d.removable || d.transport === 'usb');
  facts.disks = report.disks.filter((d) => !removable.includes(d)).map(diskFact);
  if (removable.length > 0) notes.push(`left out, removable or USB: ${removable.map((d) => [d.name, diskModel(d)].filter(Boolean).join(' ')).join('; ')}`);
  const logical = report.disks.filter((d) => d.logicalDrive);
  if (logical.length > 0) notes.push(`RAID logical drives (sizes are the arrays'): ${logical.map((d) => `${d.name}${d.controller ? ` on ${d.controller}` : ''}`).join(', ')}`);
  if (options.firmware) facts.firmware = options.firmware;

  const bmc = report.bmc;
  if (bmc?.address !== undefined && bmc.address !== '0.0.0.0') {
    facts.bmcAddresses = [bmc.address];
    facts.managementAddress = bmc.address;
    const vendor = bmc.manufacturerId !== undefined ? BMC_VENDORS[bmc.manufacturerId] : undefined;
    const what = [`IPMI ${bmc.ipmiVersion ?? ''}`.trim(), vendor, bmc.firmware ? `firmware ${bmc.firmware}` : undefined, bmc.addressSource ? `address by ${bmc.addressSource}` : undefined].filter(Boolean).join(', ');
    notes.push(`its BMC, as the machine reports it: ${bmc.address} (${what})`);
    if (options.bmcCredential !== undefined) {
      facts.bmc = { type: 'ipmi', address: bmc.address, credential: options.bmcCredential } satisfies HostBmc;
      notes.push(`bmc uses the site's discovery credential: check that it answers (forseti bmc probe ${bmc.address})`);
    } else {
      notes.push(`bmc stays manual: to let forseti drive it, set {type: ipmi, address: ${bmc.address}, credential: NAME} (forseti bmc probe ${bmc.address})`);
    }
  } else if (bmc) {
    notes.push('it has an IPMI BMC without an address: bmc stays manual');
  }
  return facts;
}

function dmiValue(text: string | undefined): string | undefined {
  const value = text?.trim();
  return value && !DMI_FILLER.test(value) ? value : undefined;
}

function nicLabel(n: InventoryReport['nics'][number]): string {
  return [n.name, n.driver, n.speedMbps ? `${n.speedMbps} Mb/s` : undefined, n.link ? undefined : 'no link'].filter(Boolean).join(' ');
}

function diskFact(d: InventoryDisk): DiskFact {
  const type = d.type === 'hdd' && (d.transport === 'sas' || d.transport === 'sata') ? d.transport : d.type;
  const model = diskModel(d);
  return { sizeGB: d.sizeBytes / 1e9, type, device: d.name, ...(model ? { model } : {}) };
}

/** Vendor and model; libata's SCSI vendor "ATA" says nothing about who made the disk. */
function diskModel(d: InventoryDisk): string {
  return [d.vendor === 'ATA' ? undefined : d.vendor, d.model].filter(Boolean).join(' ');
}
