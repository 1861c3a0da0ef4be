// Addresses on the provisioning network: unique per host, inside the subnet, clear of the
// agent, the gateway and the dynamic pool.

import { ipv4ToNumber, numberToIpv4, parseSubnet, subnetContains, type Ipv4Subnet } from './ipv4.ts';
import { formatRef, problem } from './problems.ts';
import type { Host, LabProblem, Site, SourceRef } from './types.ts';

interface Pool {
  start: number;
  end: number;
  text: string;
  ref: SourceRef;
}

/** A site address (agent, gateway) that hosts must not take. */
interface Reserved {
  address: number;
  what: string;
  ref: SourceRef;
}

export function checkNetwork(site: Site | undefined, hosts: readonly Host[]): LabProblem[] {
  const problems = [...checkHostUniqueness(hosts)];
  if (!site) return problems;
  const subnet = parseSubnet(site.network.subnet);
  if (!subnet) return problems; // the schema's pattern already rejected it
  const siteRef = (path: string): SourceRef => site.refs[path] ?? site.refs[''] ?? { file: 'site.yaml', line: 1, col: 1 };

  const reserved: Reserved[] = [{ address: ipv4ToNumber(site.agent.address) ?? -1, what: "the agent's address", ref: siteRef('agent.address') }];
  if (site.network.gateway) reserved.push({ address: ipv4ToNumber(site.network.gateway) ?? -1, what: "the gateway's address", ref: siteRef('network.gateway') });
  for (const [field, value] of [['agent.address', site.agent.address], ['network.gateway', site.network.gateway]] as const) {
    if (value !== undefined) problems.push(...outsideSubnet(`${field} ${value}`, value, subnet, siteRef(field)));
  }

  const pool = site.dhcp.pool && poolOf(site.dhcp.pool, siteRef('dhcp.pool'));
  if (site.dhcp.pool && pool) {
    for (const end of ['start', 'end'] as const) {
      const address = site.dhcp.pool[end];
      problems.push(...outsideSubnet(`dhcp.pool.${end} ${address}`, address, subnet, siteRef(`dhcp.pool.${end}`)));
    }
    if (pool.start > pool.end) {
      problems.push(problem(pool.ref, 'invalid-pool', `dhcp.pool starts at ${site.dhcp.pool.start}, after its end ${site.dhcp.pool.end}`));
    }
    for (const r of reserved) {
      if (r.address >= pool.start && r.address <= pool.end) problems.push(problem(r.ref, 'pool-overlap', `${numberToIpv4(r.address)} is ${r.what} but lies inside the DHCP pool ${pool.text} (${formatRef(pool.ref)})`));
    }
  }

  for (const host of hosts) {
    const ref = host.refs.ip ?? host.refs[''] ?? siteRef('');
    const ip = ipv4ToNumber(host.ip);
    if (ip === undefined) continue;
    problems.push(...outsideSubnet(`ip ${host.ip} of host ${host.name}`, host.ip, subnet, ref));
    for (const r of reserved) {
      if (r.address === ip) problems.push(problem(ref, 'reserved-ip', `ip ${host.ip} of host ${host.name} is ${r.what} (${formatRef(r.ref)})`));
    }
    if (ip === subnet.network && subnet.prefix < 31) problems.push(problem(ref, 'reserved-ip', `ip ${host.ip} of host ${host.name} is the network address of ${subnet.cidr}`));
    if (ip === subnet.broadcast && subnet.prefix < 31) problems.push(problem(ref, 'reserved-ip', `ip ${host.ip} of host ${host.name} is the broadcast address of ${subnet.cidr}`));
    if (pool && ip >= pool.start && ip <= pool.end) {
      problems.push(problem(ref, 'pool-overlap', `ip ${host.ip} of host ${host.name} lies inside the DHCP pool ${pool.text} (${formatRef(pool.ref)})`));
    }
  }
  return problems;
}

function poolOf(pool: { start: string; end: string }, ref: SourceRef): Pool | undefined {
  const start = ipv4ToNumber(pool.start);
  const end = ipv4ToNumber(pool.end);
  return start === undefined || end === undefined ? undefined : { start, end, text: `${pool.start}-${pool.end}`, ref };
}

/** `what` names the address for the message, e.g. `ip 10.8.0.1 of host node-3`. */
function outsideSubnet(what: string, address: string, subnet: Ipv4Subnet, ref: SourceRef): LabProblem[] {
  const n = ipv4ToNumber(address);
  if (n === undefined || subnetContains(subnet, n)) return [];
  return [problem(ref, 'ip-outside-subnet', `${what} is outside the site subnet ${subnet.cidr}`)];
}

function checkHostUniqueness(hosts: readonly Host[]): LabProblem[] {
  const problems: LabProblem[] = [];
  const macs = new Map<string, { host: Host; ref: SourceRef }>();
  const ips = new Map<string, { host: Host; ref: SourceRef }>();
  for (const host of hosts) {
    host.macs.forEach((mac, i) => {
      const ref = host.refs[`macs.${i}`] ?? host.refs[''];
      if (!ref) return;
      const first = macs.get(mac);
      const owner = first?.host === host ? 'is listed twice in host' : 'is already used by host';
      if (first) problems.push(problem(ref, 'duplicate-mac', `MAC ${mac} of host ${host.name} ${owner} ${first.host.name} (${formatRef(first.ref)})`));
      else macs.set(mac, { host, ref });
    });
    const ipRef = host.refs.ip ?? host.refs[''];
    if (!ipRef) continue;
    const first = ips.get(host.ip);
    if (first) problems.push(problem(ipRef, 'duplicate-ip', `ip ${host.ip} of host ${host.name} is already used by host ${first.host.name} (${formatRef(first.ref)})`));
    else ips.set(host.ip, { host, ref: ipRef });
  }
  return problems;
}
