// What discovery learned about one machine, whoever found it: an enclosure manager (the OA's bays), a Redfish
// service (its systems), an IPMI BMC (its identity), or later the inventory image a PXE-booted unknown machine runs.
// Every value came from the machine or its BMC, so none is trusted: `proposeHosts` bounds and checks each before it
// reaches a host file.
import type { HostBmc } from '../model/types.ts';

export interface NicFact {
  mac: string;
  /** How the source names the NIC ("Ethernet FlexNIC (NIC 1) LOM1:1-a", "eno1"); a comment in the host file. */
  label?: string;
  /** The source says this NIC network-boots (the OA's "PXE NIC 1" first in the IPL order, a DHCP'd inventory NIC). */
  pxe?: boolean;
}

export interface DiskFact {
  sizeGB: number;
  type?: 'sas' | 'sata' | 'ssd' | 'nvme' | 'hdd';
  name?: string;
  model?: string;
  /** The kernel's name for it (sda, nvme0n1) when an OS reported it: written as the disk's `name` in the host file. */
  device?: string;
}

export interface MachineFacts {
  /** Where the machine was found, for messages and the host file's header: "OA 10.77.1.2 bay 3". */
  source: string;
  /** Name pattern values beyond the identity below: `bay`, `system`, `address`, … */
  fields: Record<string, string | number>;
  manufacturer?: string;
  model?: string;
  serial?: string;
  /** The host's NICs; the boot NIC is the one marked `pxe`, else the first. */
  nics: NicFact[];
  /** Why the source cannot know the NICs, and what the human can do (IPMI: give --mac). */
  nicsUnknown?: string;
  memoryGiB?: number;
  /** Populated sockets. */
  cpus?: number;
  cores?: number;
  cpuModel?: string;
  disks?: DiskFact[];
  firmware?: 'bios' | 'uefi';
  power?: 'on' | 'off' | 'unknown';
  /** How forseti will drive it: the host file's `bmc:` block. */
  bmc: HostBmc;
  enclosure?: { name: string; bay: number };
  /** The machine's own management controller when another one drives it (a blade's iLO behind the OA). */
  managementAddress?: string;
  /** Addresses the machine's BMCs hold: never given to a host as its `ip`. */
  bmcAddresses?: string[];
  /** For the human, as comments in the host file: what was not found, what to check. */
  notes: string[];
}
