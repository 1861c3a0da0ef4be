// A free address of the provisioning subnet for a new host: inside the subnet, not its network or broadcast address,
// not the agent's or the gateway's, outside the DHCP pool, and taken by no host or BMC. The lowest one from `from`
// (default the subnet's first), so proposals are the same on every run against the same lab.
import { numberToIpv4 } from '../model/ipv4.ts';
import type { LabIndex } from './lab-index.ts';

export function freeAddress(index: LabIndex, from?: number): string | undefined {
  const net = index.network;
  if (!net) return undefined;
  const { subnet, reserved, pool } = net;
  const edges = subnet.prefix < 31;
  const first = Math.max(from ?? subnet.network, subnet.network + (edges ? 1 : 0));
  const last = subnet.broadcast - (edges ? 1 : 0);
  const taken = new Set(reserved.map((r) => r.address));
  for (let n = first; n <= last; n++) {
    if (pool && n >= pool.start && n <= pool.end) {
      n = pool.end;
      continue;
    }
    if (!taken.has(n) && !index.usedIps.has(n)) return numberToIpv4(n);
  }
  return undefined;
}

/** How the picker chose, for the host file's comment. */
export function addressNote(index: LabIndex): string {
  const net = index.network;
  if (!net) return 'no subnet';
  return `the lowest free address of ${net.subnet.cidr}${net.pool ? ` outside the DHCP pool ${net.pool.text}` : ''} when discovered`;
}
