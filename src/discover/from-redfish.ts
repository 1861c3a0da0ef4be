// Every ComputerSystem of a Redfish service: one machine per member of /redfish/v1/Systems (a chassis or enclosure
// manager lists several), with its MACs (EthernetInterfaces, or HostCorrelation on iLO 4), memory, processors, drives
// (Storage → Drives, else SimpleStorage), model and serial, boot mode and power state. The service is probed first as
// `forseti bmc probe` does (src/bmc/probe.ts): its login is checked and the `bmc:` block it gives (address, port, the
// certificate pinned when the system's CAs do not trust it) is the proposed hosts' BMC; a service with several
// systems adds `system: <Id>` so that each host drives its own.
import type { ProbeReport } from '../bmc/probe.ts';
import { RedfishClient } from '../bmc/redfish/client.ts';
import { readInventory } from '../bmc/redfish/inventory.ts';
import type { RedfishDrive } from '../bmc/redfish/inventory.ts';
import { field, lastSegment, links, str } from '../bmc/redfish/resources.ts';
import { bootOf, powerStateOf, readSystem, SYSTEMS_PATH } from '../bmc/redfish/system.ts';
import { bmcDispatcher } from '../bmc/tls.ts';
import type { HostBmc } from '../model/types.ts';
import { DiscoveryAnswerError, DiscoveryAuthError, DiscoveryUnreachableError } from './errors.ts';
import type { DiskFact, MachineFacts } from './facts.ts';
import type { Credential } from './from-oa.ts';

export interface RedfishDiscoveryOptions {
  address: string;
  port?: number;
  credential: Credential;
  /** `probeBmc` of src/bmc/probe.ts, typed 'redfish', with the credential. */
  probe: () => Promise<ProbeReport>;
  timeoutMs?: number;
}

/** What schemas/host.schema.json takes as `bmc.system`. */
const SYSTEM_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** A service listing more systems than this is answered with the first ones and a note. */
export const MAX_SYSTEMS = 256;

export async function discoverRedfish(options: RedfishDiscoveryOptions): Promise<{ machines: MachineFacts[]; notes: string[] }> {
  const port = options.port ?? 443;
  const where = `Redfish ${options.address}${port === 443 ? '' : `:${port}`}`;
  const report = await options.probe();
  if (report.type !== 'redfish' || !report.bmc) throw new DiscoveryUnreachableError(where, `no Redfish service answered (${report.tried.join('; ') || 'nothing tried'})`);
  if (!report.auth || report.auth.startsWith('refused')) throw new DiscoveryAuthError(where, options.credential.name, report.auth ?? 'the login was not tried');
  const timeoutMs = options.timeoutMs ?? 20_000;
  const pin = report.bmc.tls?.fingerprint.replace(/^sha256:/, '');
  const dispatcher = bmcDispatcher({ bmc: `${options.address}:${port}`, host: options.address, ...(pin ? { tls: { fingerprint256: pin } } : {}), connectTimeoutMs: timeoutMs });
  const host = options.address.includes(':') ? `[${options.address}]` : options.address;
  const client = new RedfishClient({ baseUrl: `https://${host}:${port}`, username: options.credential.username, password: options.credential.password }, { dispatcher, timeoutMs, retries: 0, busyRetries: 2 });
  try {
    const members = links(field((await client.get(SYSTEMS_PATH)).body, 'Members'));
    if (members.length === 0) throw new DiscoveryAnswerError(where, `${SYSTEMS_PATH} lists no system`);
    const notes = members.length > MAX_SYSTEMS ? [`${where} lists ${members.length} systems; the first ${MAX_SYSTEMS} were read`] : [];
    const { type: _t, ...block } = report.bmc;
    const machines: MachineFacts[] = [];
    for (const path of members.slice(0, MAX_SYSTEMS)) {
      if (members.length > 1 && !SYSTEM_ID.test(lastSegment(path))) {
        notes.push(`${where}: the system at ${JSON.stringify(path.slice(0, 120))} has an Id a host file cannot name (bmc.system): skipped`);
        continue;
      }
      const bmc: HostBmc = { type: 'redfish', ...block, ...(members.length > 1 ? { system: lastSegment(path) } : {}) };
      machines.push(await systemFacts(client, where, path, bmc, members.length > 1));
    }
    return { machines, notes };
  } finally {
    await client.close().catch(() => undefined);
    await dispatcher.close().catch(() => undefined);
  }
}

async function systemFacts(client: RedfishClient, where: string, path: string, bmc: HostBmc, several: boolean): Promise<MachineFacts> {
  const system = await readSystem(client, path);
  const inventory = await readInventory(client, system);
  const id = lastSegment(path);
  const notes: string[] = [];
  const hostCorrelation = field(system.doc, 'EthernetInterfaces') === undefined && field(system.doc, 'HostCorrelation', 'HostMACAddress') !== undefined;
  if (hostCorrelation) notes.push('MACs from HostCorrelation (iLO 4): the order is the iLO\'s; check that the first is the NIC that network-boots');
  const facts: MachineFacts = {
    source: `${where}${several ? ` system ${id}` : ''}`,
    fields: { system: id, address: bmc.address ?? '' },
    nics: (inventory.macs ?? []).map((mac) => ({ mac })),
    bmc,
    notes,
    bmcAddresses: bmc.address ? [bmc.address] : [],
  };
  if (inventory.manufacturer) facts.manufacturer = inventory.manufacturer;
  if (inventory.model) facts.model = inventory.model;
  if (inventory.serialNumber) facts.serial = inventory.serialNumber;
  if (inventory.memoryGiB !== undefined) facts.memoryGiB = inventory.memoryGiB;
  if (inventory.processorCount !== undefined) facts.cpus = inventory.processorCount;
  if (inventory.processorModel) facts.cpuModel = inventory.processorModel;
  if (inventory.drives) facts.disks = inventory.drives.map(diskOf);
  const mode = bootOf(system.doc).mode;
  if (mode === 'UEFI') facts.firmware = 'uefi';
  else if (mode === 'Legacy') facts.firmware = 'bios';
  const power = powerStateOf(system.doc);
  facts.power = power === 'On' ? 'on' : power === 'Off' ? 'off' : 'unknown';
  const hostName = str(system.doc, 'HostName');
  if (hostName) facts.fields['hostname'] = hostName;
  return facts;
}

function diskOf(d: RedfishDrive): DiskFact {
  const protocol = d.protocol?.toLowerCase();
  const media = d.mediaType?.toLowerCase();
  const type = protocol === 'nvme' ? 'nvme' : media === 'ssd' ? 'ssd' : protocol === 'sas' ? 'sas' : protocol === 'sata' ? 'sata' : media === 'hdd' ? 'hdd' : undefined;
  return { sizeGB: d.capacityBytes / 1e9, ...(type ? { type } : {}), ...(d.name ? { name: d.name } : {}), ...(d.model ? { model: d.model } : {}) };
}
