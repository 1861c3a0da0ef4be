// Addresses on the provisioning network: unique per host, inside the subnet, clear of the
// agent, the gateway and the dynamic pool.

import { ipv4ToNumber, numberToIpv4, parseSubnet, subnetContains, type Ipv4Subnet } from './ipv4.ts';
import { formatRef, problem } from './problems.ts';
import type { Host, LabProblem, Site } from './types.ts';
import type { SourceRef } from '../core/source-ref.ts';

export interface Pool {
  start: number;
  end: number;
  text: string;
  ref: SourceRef;
}

/** A site address (agent, gateway) that hosts must not take. */
export interface Reserved {
  address: number;
  what: string;
  ref: SourceRef;
}

/** What the per-host address checks need from the site: computed once per site. */
export interface NetworkContext {
  subnet: Ipv4Subnet;
  reserved: Reserved[];
  pool: Pool | undefined;
  siteRef: SourceRef;
}

/** Undefined when the subnet does not parse (the schema's pattern already rejected it). */
export function networkContext(site: Site): NetworkContext | undefined {
  const subnet = parseSubnet(site.network.subnet);
  if (!subnet) return undefined;
  const siteRef = (path: string): SourceRef => site.refs[path] ?? site.refs[''] ?? { file: 'site.yaml', line: 1, col: 1 };
  const reserved: Reserved[] = [{ address: ipv4ToNumber(site.agent.address) ?? -1, what: "the agent's address", ref: siteRef('agent.address') }];
  if (site.network.gateway) reserved.push({ address: ipv4ToNumber(site.network.gateway) ?? -1, what: "the gateway's address", ref: siteRef('network.gateway') });
  const pool = site.dhcp.pool && poolOf(site.dhcp.pool, siteRef('dhcp.pool'));
  return { subnet, reserved, pool, siteRef: siteRef('') };
}

/** The site's own addresses: agent, gateway and pool inside the subnet, the pool clear of the reserved ones. */
export function checkSiteAddresses(site: Site, ctx: NetworkContext): LabProblem[] {
  const problems: LabProblem[] = [];
  const { subnet, reserved, pool } = ctx;
  const siteRef = (path: string): SourceRef => site.refs[path] ?? site.refs[''] ?? { file: 'site.yaml', line: 1, col: 1 };
  for (const [field, value] of [['agent.address', site.agent.address], ['network.gateway', site.network.gateway]] as const) {
    if (value !== undefined) problems.push(...outsideSubnet(`${field} ${value}`, value, subnet, siteRef(field)));
  }
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
  return problems;
}

/** One host's address against the site: inside the subnet, not reserved, not in the pool. */
export function checkHostAddress(ctx: NetworkContext, host: Host): LabProblem[] {
  const { subnet, reserved, pool } = ctx;
  const ip = ipv4ToNumber(host.ip);
  if (ip === undefined) return [];
  const ref = host.refs.ip ?? host.refs[''] ?? ctx.siteRef;
  const problems = outsideSubnet(`ip ${host.ip} of host ${host.name}`, host.ip, subnet, ref);
  for (const r of reserved) {
    if (r.address === ip) problems.push(problem(ref, 'reserved-ip', `ip ${host.ip} of host ${host.name} is ${r.what} (${formatRef(r.ref)})`));
  }
  if (ip === subnet.network && subnet.prefix < 31) problems.push(problem(ref, 'reserved-ip', `ip ${host.ip} of host ${host.name} is the network address of ${subnet.cidr}`));
  if (ip === subnet.broadcast && subnet.prefix < 31) problems.push(problem(ref, 'reserved-ip', `ip ${host.ip} of host ${host.name} is the broadcast address of ${subnet.cidr}`));
  if (pool && ip >= pool.start && ip <= pool.end) {
    problems.push(problem(ref, 'pool-overlap', `ip ${host.ip} of host ${host.name} lies inside the DHCP pool ${pool.text} (${formatRef(pool.ref)})`));
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

/** Where a host declares an address: the first declaration in file order owns it, later ones are problems. */
export interface AddressUse {
  host: Host;
  ref: SourceRef;
}

export function macUses(host: Host): Array<AddressUse & { mac: string }> {
  const uses: Array<AddressUse & { mac: string }> = [];
  host.macs.forEach((mac, i) => {
    const ref = host.refs[`macs.${i}`] ?? host.refs[''];
    if (ref) uses.push({ mac, host, ref });
  });
  return uses;
}

export function ipUse(host: Host): AddressUse | undefined {
  const ref = host.refs.ip ?? host.refs[''];
  return ref ? { host, ref } : undefined;
}

export function duplicateMac(mac: string, use: AddressUse, first: AddressUse): LabProblem {
  const owner = first.host === use.host ? 'is listed twice in host' : 'is already used by host';
  return problem(use.ref, 'duplicate-mac', `MAC ${mac} of host ${use.host.name} ${owner} ${first.host.name} (${formatRef(first.ref)})`);
}

export function duplicateIp(use: AddressUse, first: AddressUse): LabProblem {
  return problem(use.ref, 'duplicate-ip', `ip ${use.host.ip} of host ${use.host.name} is already used by host ${first.host.name} (${formatRef(first.ref)})`);
}
