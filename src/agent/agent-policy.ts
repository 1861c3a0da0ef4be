// What the agent's operator allows a commit, checked on the agent after the commit validated (CI cannot: it holds
// neither the secrets nor the agent config): where credentials may be sent, which NIC and modes DHCP may use.
import { compareProblems } from '../model/problems.ts';
import type { Lab, LabProblem } from '../model/types.ts';
import type { Secrets } from '../secrets/secrets.ts';
import type { AgentConfig } from './config.ts';
import { credentialProblems, reservedCredentials } from './credential-check.ts';
import { dhcpPolicyProblems } from './dhcp-policy-check.ts';

export function agentPolicyProblems(lab: Lab, secrets: Secrets, config: Pick<AgentConfig, 'lab' | 'webhook' | 'serve'>): LabProblem[] {
  return [...credentialProblems(lab, secrets, reservedCredentials(config)), ...dhcpPolicyProblems(lab.site, config.serve)].sort(compareProblems);
}
