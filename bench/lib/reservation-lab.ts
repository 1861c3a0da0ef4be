// A lab repository of nothing but DHCP reservations (hosts with a MAC and an address, role `off`), for
// `forseti serve dhcp` in the benchmarks; and the same reservations as a dnsmasq --dhcp-hostsfile.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface ReservationSite {
  /** The server's interface (SO_BINDTODEVICE) and the network it serves. */
  interface: string;
  subnet: string;
  gateway: string;
  /** The agent's address: the boot files' next-server. */
  agent: string;
}

export interface Reservation {
  mac: string;
  ip: string;
}

export async function writeReservationLab(dir: string, site: ReservationSite, hosts: Reservation[]): Promise<void> {
  await mkdir(path.join(dir, 'hosts'), { recursive: true });
  await mkdir(path.join(dir, 'profiles'));
  await mkdir(path.join(dir, 'images'));
  await writeFile(path.join(dir, 'site.yaml'), `apiVersion: forseti/v1
kind: Site
name: bench
network:
  interface: ${site.interface}
  subnet: ${site.subnet}
  gateway: ${site.gateway}
dhcp:
  mode: full
agent:
  address: ${site.agent}
`);
  await writeFile(path.join(dir, 'profiles', 'off.yaml'), 'apiVersion: forseti/v1\nkind: Profile\nname: off\nboot: {off: true}\n');
  for (const [i, host] of hosts.entries()) {
    const name = `h${String(i).padStart(4, '0')}`;
    await writeFile(path.join(dir, 'hosts', `${name}.yaml`), `apiVersion: forseti/v1
kind: Host
name: ${name}
macs: [${host.mac}]
ip: ${host.ip}
bmc: {type: wol}
role: off
power: off
`);
  }
}

/** One `MAC,address` line per reservation. */
export function dnsmasqHostsFile(hosts: Reservation[]): string {
  return hosts.map((h) => `${h.mac},${h.ip}\n`).join('');
}
