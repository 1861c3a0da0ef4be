// Which NIC the agent answers DHCP on, and in which modes, is the operator's choice (agent config serve.interface,
// serve.dhcpModes), not the commit's: a site.yaml naming the box's uplink would otherwise make the agent a rogue
// DHCP server there, handing out a router and DNS of the committer's choosing. A commit that asks for DHCP on
// another NIC, or in a mode the operator did not allow, is rejected at the field's file:line:col.
import { problem } from '../model/problems.ts';
import type { LabProblem, Site } from '../model/types.ts';
import type { ServeSettings } from '../serve/boot-services.ts';
import { fieldRef as at } from './credential-check.ts';

export const DEFAULT_DHCP_MODES: ReadonlyArray<'full' | 'proxy'> = ['proxy'];

export function dhcpPolicyProblems(site: Site, serve: Pick<ServeSettings, 'dhcp' | 'interface' | 'dhcpModes'>): LabProblem[] {
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
  return problems;
}
