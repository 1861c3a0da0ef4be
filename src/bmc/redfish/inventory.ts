// What the system is made of, and how much power it draws, read from the system, its chassis and its manager.
import type { RedfishClient } from './client.ts';
import { RedfishHttpError } from './errors.ts';
import { field, isResource, link, links, num, str } from './resources.ts';
import type { Resource } from './resources.ts';
import type { SystemRead } from './system.ts';

export interface RedfishDrive {
  name?: string;
  model?: string;
  capacityBytes: number;
  /** Drive.MediaType: HDD, SSD, SMR. */
  mediaType?: string;
  /** Drive.Protocol: SAS, SATA, NVMe, … */
  protocol?: string;
}

export interface RedfishInventory {
  manufacturer?: string;
  model?: string;
  serialNumber?: string;
  processorCount?: number;
  processorModel?: string;
  memoryGiB?: number;
  drives?: RedfishDrive[];
  macs?: string[];
  managerFirmware?: string;
}

/** A resource, or undefined if the BMC answers it with an HTTP error (a missing optional part). */
async function optional(client: RedfishClient, path: string | undefined): Promise<Resource | undefined> {
  if (path === undefined) return undefined;
  try {
    const response = await client.get(path);
    return isResource(response.body) ? response.body : undefined;
  } catch (err) {
    if (err instanceof RedfishHttpError) return undefined;
    throw err;
  }
}

async function members(client: RedfishClient, collectionPath: string | undefined): Promise<Resource[]> {
  const collection = await optional(client, collectionPath);
  const out: Resource[] = [];
  for (const path of links(field(collection, 'Members'))) {
    const member = await optional(client, path);
    if (member) out.push(member);
  }
  return out;
}

const absent = (r: unknown): boolean => str(r, 'Status', 'State') === 'Absent';

export async function readInventory(client: RedfishClient, system: SystemRead): Promise<RedfishInventory> {
  const doc = system.doc;
  const inv: RedfishInventory = {};
  const manufacturer = str(doc, 'Manufacturer');
  const model = str(doc, 'Model');
  const serialNumber = str(doc, 'SerialNumber');
  const processorCount = num(doc, 'ProcessorSummary', 'Count');
  const processorModel = str(doc, 'ProcessorSummary', 'Model');
  const memoryGiB = num(doc, 'MemorySummary', 'TotalSystemMemoryGiB');
  if (manufacturer) inv.manufacturer = manufacturer;
  if (model) inv.model = model;
  if (serialNumber) inv.serialNumber = serialNumber;
  if (processorCount !== undefined) inv.processorCount = processorCount;
  if (processorModel) inv.processorModel = processorModel;
  if (memoryGiB !== undefined) inv.memoryGiB = memoryGiB;

  const drives = await readDrives(client, doc);
  if (drives !== undefined) inv.drives = drives;

  const nics = await members(client, link(field(doc, 'EthernetInterfaces')));
  // iLO 4 has no EthernetInterfaces for the host; it reports the host's MACs in HostCorrelation, a pre-Redfish
  // property iLO 5 removed (HPE iLO REST API docs, "iLO 5 data model changes: Host Correlation Removed").
  const correlated = field(doc, 'HostCorrelation', 'HostMACAddress');
  const macs =
    nics.length > 0
      ? nics.map((n) => str(n, 'MACAddress') ?? str(n, 'PermanentMACAddress'))
      : Array.isArray(correlated)
        ? correlated.map((m) => (typeof m === 'string' && m.trim() !== '' ? m : undefined))
        : [];
  const known = macs.filter((m): m is string => m !== undefined);
  if (known.length > 0) inv.macs = [...new Set(known.map((m) => m.toLowerCase().replace(/-/g, ':')))];

  const managerPath = links(field(doc, 'Links', 'ManagedBy'))[0] ?? (await firstMember(client, '/redfish/v1/Managers'));
  const manager = await optional(client, managerPath);
  // iLO 4 names its firmware in Firmware.Current.VersionString; iLO 5 replaced it by FirmwareVersion (same document).
  const firmware = str(manager, 'FirmwareVersion') ?? str(manager, 'Firmware', 'Current', 'VersionString');
  if (firmware) inv.managerFirmware = firmware;
  return inv;
}

/** Storage → Drives (current schema), else SimpleStorage → Devices (older BMCs, the DMTF mockups). */
async function readDrives(client: RedfishClient, system: Resource): Promise<RedfishDrive[] | undefined> {
  const storagePath = link(field(system, 'Storage'));
  if (storagePath !== undefined) {
    const drives: RedfishDrive[] = [];
    for (const storage of await members(client, storagePath)) {
      for (const drivePath of links(field(storage, 'Drives'))) {
        const drive = await optional(client, drivePath);
        const capacity = num(drive, 'CapacityBytes');
        if (drive === undefined || absent(drive) || capacity === undefined) continue;
        drives.push(driveOf(drive, capacity));
      }
    }
    return drives;
  }
  const simplePath = link(field(system, 'SimpleStorage'));
  if (simplePath === undefined) return undefined;
  const drives: RedfishDrive[] = [];
  for (const controller of await members(client, simplePath)) {
    const devices = field(controller, 'Devices');
    for (const device of Array.isArray(devices) ? devices : []) {
      const capacity = num(device, 'CapacityBytes');
      if (absent(device) || capacity === undefined) continue;
      drives.push(driveOf(device, capacity));
    }
  }
  return drives;
}

function driveOf(r: unknown, capacityBytes: number): RedfishDrive {
  const drive: RedfishDrive = { capacityBytes };
  const name = str(r, 'Name');
  const model = str(r, 'Model');
  const mediaType = str(r, 'MediaType');
  const protocol = str(r, 'Protocol');
  if (name) drive.name = name;
  if (model) drive.model = model;
  if (mediaType) drive.mediaType = mediaType;
  if (protocol) drive.protocol = protocol;
  return drive;
}

async function firstMember(client: RedfishClient, collectionPath: string): Promise<string | undefined> {
  return links(field(await optional(client, collectionPath), 'Members'))[0];
}

/**
 * Watts now: the chassis' EnvironmentMetrics PowerWatts.Reading (current schema), else the deprecated
 * Power resource's PowerControl[0].PowerConsumedWatts; null when the BMC has neither.
 */
export async function readPowerDraw(client: RedfishClient, system: SystemRead): Promise<number | null> {
  const chassisPath = links(field(system.doc, 'Links', 'Chassis'))[0] ?? (await firstMember(client, '/redfish/v1/Chassis'));
  const chassis = await optional(client, chassisPath);
  if (chassis === undefined) return null;
  const metrics = await optional(client, link(field(chassis, 'EnvironmentMetrics')));
  const reading = num(metrics, 'PowerWatts', 'Reading');
  if (reading !== undefined) return reading;
  const power = await optional(client, link(field(chassis, 'Power')));
  const control = field(power, 'PowerControl');
  const consumed = Array.isArray(control) ? num(control[0], 'PowerConsumedWatts') : undefined;
  return consumed ?? null;
}
