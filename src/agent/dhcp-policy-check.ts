// Which NIC the agent answers DHCP on, and in which modes, is the operator's choice (agent config serve.interface,
// serve.dhcpModes), not the commit's: a site.yaml naming the box's uplink would otherwise make the agent a rogue
// DHCP server there, handing out a router and DNS of the committer's choosing. A commit that asks for DHCP on
// another NIC, or in a mode the operator did not allow, is rejected at the field's file:line:col. The DHCP relays
// likewise (serve.dhcpRelays, default none): the agent sends its replies to a relay's address, so a commit naming
// any address as a relay would aim the agent's replies at it (reflection); it may name only relays the operator listed.
import { ipv4ToNumber } from '../model/ipv4.ts';
import { problem } from '../model/problems.ts';
import type { LabProblem, Site } from '../model/types.ts';
import type { ServeSettings } from '../serve/boot-services.ts';
import { fieldRef as at } from './credential-check.ts';

export const DEFAULT_DHCP_MODES: ReadonlyArray<'full' | 'proxy'> = ['proxy'];

export function dhcpPolicyProblems(site: Site, serve: Pick<ServeSettings, 'dhcp' | 'interface' | 'dhcpModes' | 'dhcpRelays'>): LabProblem[] {
  const mode = site.dhcp.mode;
  if (!serve.dhcp || mode === 'off') return [];
  const problems: LabProblem[] = [];
  const nic = site.network.interface;
  if (serve.interface === undefined) {
    problems.push(problem(at(site.refs, 'network.interface'), 'agent-policy', `dhcp.mode ${mode} asks the agent to serve DHCP, but its config names no serve.interface: the agent serves DHCP only on the NIC its operator names (or set dhcp.mode: off)`));
  } else if (nic !== serve.interface) {
    problems.push(problem(at(site.refs, 'network.interface'), 'agent-policy', `network.interface "${nic}" is not the agent's provisioning NIC "${serve.interface}" (serve.interface in its config); the agent serves DHCP there only`));
  }
  const allowed = serve.dhcpModes ?? DEFAULT_DHCP_MODES;
  if (!(allowed as readonly string[]).includes(mode)) {
    problems.push(problem(at(site.refs, 'dhcp.mode', 'dhcp'), 'agent-policy', `dhcp.mode ${mode} is not allowed by the agent's config (serve.dhcpModes: [${allowed.join(', ')}])`));
  }
  problems.push(...relayProblems(site, serve.dhcpRelays ?? []));
  return problems;
}

function relayProblems(site: Site, allowed: readonly string[]): LabProblem[] {
  const allowedNumbers = new Set(allowed.map(ipv4ToNumber));
  const listed = allowed.length > 0 ? `serve.dhcpRelays: [${allowed.join(', ')}]` : 'it lists no serve.dhcpRelays';
  return (site.dhcp.relays ?? []).flatMap((relay, i) => allowedNumbers.has(ipv4ToNumber(relay)) ? [] : [
    problem(at(site.refs, `dhcp.relays.${i}`, 'dhcp.relays', 'dhcp'), 'agent-policy', `dhcp.relays names ${relay}, which is not a relay the agent's config allows (${listed}): the agent sends its DHCP replies to a relay, so only its operator names them`),
  ]);
}
