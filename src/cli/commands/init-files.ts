// The files of a new lab repository (`forseti init`), from the answers about the user's network. Pure: the
// command decides where they go. Every YAML file names its JSON Schema for yaml-language-server, relative to
// the copy of the schemas the repository carries in schemas/.
import { readFileSync } from 'node:fs';
import { DOCUMENT_KINDS, SCHEMA_DIR, schemaFileName } from '../../model/schemas.ts';
import { ipv4ToNumber, numberToIpv4, parseSubnet } from '../../model/ipv4.ts';

export const DHCP_MODES = ['full', 'proxy', 'off'] as const;
export type DhcpMode = (typeof DHCP_MODES)[number];

export interface InitAnswers {
  name: string;
  subnet: string;
  gateway: string;
  agentAddress: string;
  dhcpMode: DhcpMode;
  interface: string;
  /** Where the agent will fetch the lab from; a placeholder when not known yet. */
  labUrl?: string;
}

export class InitAnswerError extends Error {
  override readonly name = 'InitAnswerError';
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

/** The CI workflows, as in lab-repo-template/: validate and plan on every pull request. */
const WORKFLOWS = ['.github/workflows/forseti.yml', '.gitea/workflows/forseti.yml'];
const TEMPLATE = new URL('../../../lab-repo-template/', import.meta.url);

/** Checks the answers against each other; throws InitAnswerError naming the first wrong one. */
export function checkAnswers(a: InitAnswers): void {
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(a.name)) throw new InitAnswerError('name', `"${a.name}" must be lower-case letters, digits and hyphens`);
  const subnet = parseSubnet(a.subnet);
  if (!subnet || !/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(a.subnet)) throw new InitAnswerError('subnet', `"${a.subnet}" is not an IPv4 network like 10.77.0.0/24`);
  if (ipv4ToNumber(a.subnet.split('/')[0] ?? '') !== subnet.network) throw new InitAnswerError('subnet', `"${a.subnet}" has host bits set; the network is ${numberToIpv4(subnet.network)}/${subnet.prefix}`);
  if (subnet.prefix > 30) throw new InitAnswerError('subnet', `/${subnet.prefix} leaves no room for machines`);
  for (const [field, value] of [['gateway', a.gateway], ['agent address', a.agentAddress]] as const) {
    const n = ipv4ToNumber(value);
    if (n === undefined) throw new InitAnswerError(field, `"${value}" is not an IPv4 address`);
    if (n <= subnet.network || n >= subnet.broadcast) throw new InitAnswerError(field, `${value} is not a host address of ${a.subnet}`);
  }
  if (a.gateway === a.agentAddress) throw new InitAnswerError('agent address', `${a.agentAddress} is the gateway's address; the agent needs its own`);
  if (!(DHCP_MODES as readonly string[]).includes(a.dhcpMode)) throw new InitAnswerError('dhcp mode', `"${a.dhcpMode}" must be one of ${DHCP_MODES.join(', ')}`);
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(a.interface)) throw new InitAnswerError('interface', `"${a.interface}" is not a network interface name`);
}

/** The last quarter of the subnet's host addresses (at most 50), for machines not declared yet. */
export function defaultPool(subnetCidr: string): { start: string; end: string } {
  const s = parseSubnet(subnetCidr);
  if (!s) throw new InitAnswerError('subnet', `"${subnetCidr}" is not an IPv4 network`);
  const hosts = s.broadcast - s.network - 1;
  const size = Math.max(1, Math.min(50, Math.floor(hosts / 4)));
  return { start: numberToIpv4(s.broadcast - size), end: numberToIpv4(s.broadcast - 1) };
}

/** The header line a YAML file of `kind` at `path` starts with: its schema, relative to the repository's schemas/. */
export const schemaLine = (file: string, kind: string): string => `# yaml-language-server: $schema=${'../'.repeat(file.split('/').length - 1)}schemas/${kind.toLowerCase()}.schema.json\n`;

const DHCP_COMMENT: Record<DhcpMode, string> = {
  full: `  # full: forseti is the only DHCP server on ${'{interface}'}: turn the router's DHCP server off there.
  # Hosts get the ip their hosts/ file reserves; machines not declared yet get one from the pool (no boot file).`,
  proxy: `  # proxy: the router's DHCP server (OPNsense) keeps handing out addresses; forseti adds only the PXE boot
  # answers for the hosts declared in hosts/ (proxyDHCP, UDP 67 and 4011). Reserve each host's ip in the router
  # too, and remove its own network-boot settings (options 66/67) on this network.`,
  off: `  # off: forseti answers no DHCP. The router's DHCP server must send PXE clients to the agent:
  # \`forseti render --dnsmasq .\` prints the settings (next-server, boot file names, one reservation per host).`,
};

function siteYaml(a: InitAnswers): string {
  const pool = a.dhcpMode === 'full' ? defaultPool(a.subnet) : undefined;
  return `${schemaLine('site.yaml', 'site')}apiVersion: forseti/v1
kind: Site
name: ${a.name}
description: The ${a.name} lab, provisioned by forseti

network:
  interface: ${a.interface}          # the agent machine's NIC on the provisioning network
  subnet: ${a.subnet}
  gateway: ${a.gateway}
  dns: [${a.gateway}]

dhcp:
${DHCP_COMMENT[a.dhcpMode].replace('{interface}', a.interface)}
  mode: ${a.dhcpMode}
  leaseSeconds: 3600
${pool ? `  pool:\n    start: ${pool.start}\n    end: ${pool.end}\n` : ''}
agent:
  address: ${a.agentAddress}          # the machine running \`forseti agent\`
  httpPort: 8080
  tftpPort: 69

policies:
  provisionTimeoutSeconds: 1200       # power cycle to phone-home; old servers POST slowly
  stepTimeoutSeconds: 600
  afterConverged: disk
`;
}

const PROFILES: Record<string, string> = {
  'profiles/off.yaml': `apiVersion: forseti/v1
kind: Profile
name: off
description: Boot nothing; the host is powered off and kept off
boot:
  off: true
`,
  'profiles/netboot-xyz.yaml': `apiVersion: forseti/v1
kind: Profile
name: netboot-xyz
description: The netboot.xyz menu, for live systems, rescue and one-off installs
boot:
  chain: https://boot.netboot.xyz
afterInstall: pxe   # nothing is installed: keep showing the menu
`,
};

function readme(a: InitAnswers): string {
  return `# ${a.name}: lab repository (format forseti/v1)

Made by \`forseti init\`. forseti reconciles the machines to what a commit on \`main\` declares; pull requests
are the only way to change the lab and \`git revert\` is the rollback.

\`\`\`
site.yaml              the provisioning network (${a.subnet} on ${a.interface}), DHCP mode ${a.dhcpMode}, the agent at ${a.agentAddress}
hosts/<name>.yaml      one machine each: MACs, reserved ip, BMC, hardware, role
profiles/<name>.yaml   roles: what a host boots (image + cmdline + config, a chain URL, or off)
images/<name>.yaml     kernels and initrds by URL with their sha256 (forseti image add)
schemas/               the JSON Schemas editors complete and check every file with (yaml-language-server)
agent/agent.yaml       a starting point for the agent's own configuration (/etc/forseti/agent.yaml)
.github/, .gitea/      CI: forseti validate and forseti plan on every pull request
\`\`\`

Next:

1. \`forseti image add debian-12 URL-OF-KERNEL URL-OF-INITRD\` (or \`--talos VERSION\`): images with real digests.
2. Add \`hosts/<name>.yaml\` for each machine (see hosts/README.md) and a profile for each role.
3. \`forseti validate .\`, commit, push; on the agent's box \`forseti doctor --config /etc/forseti/agent.yaml\`, then
   \`systemctl start forseti\`.
`;
}

const HOSTS_README = `# hosts/

One file per machine, named like the host (\`bld-001.yaml\` declares \`name: bld-001\`). For example:

\`\`\`yaml
# yaml-language-server: $schema=../schemas/host.schema.json
apiVersion: forseti/v1
kind: Host
name: bld-001
macs: [9c:8e:99:4a:10:01]      # the first MAC is the boot NIC
ip: <an address in the subnet, outside the DHCP pool>
bmc:
  type: redfish                # redfish, ipmi, hp-oa, wol or manual
  address: <the BMC's address>
  credential: bmc              # a name in the agent's secrets file; never a password here
hardware: {memoryGiB: 64, disks: [{sizeGB: 300}]}
role: netboot-xyz              # a profile in profiles/
\`\`\`
`;

const IMAGES_README = `# images/

Kernels and initrds by URL with their sha256. Let forseti download them once and write the file:

    forseti image add debian-12 https://…/linux https://…/initrd.gz
    forseti image add talos --talos v1.10.1 --extension siderolabs/bnx2
`;

function agentYaml(a: InitAnswers): string {
  return `# The agent's own configuration: copy to /etc/forseti/agent.yaml on the agent's machine (${a.agentAddress}).
# Credentials go in /etc/forseti/secrets.yaml there, never in this repository, each bound to its use and to
# where it may be sent (README, "Credentials and where they may go"), e.g.
#   bmc: {username: admin, password: ..., use: [bmc], addresses: [<the BMCs' network, e.g. 10.77.1.0/24>]}
lab:
  url: ${a.labUrl ?? 'https://git.example.lan/infra/' + a.name + '.git'}   # this repository, as the agent reaches it
  branch: main
  pollSeconds: 60
status:
  branch: forseti-status
stateDir: /var/lib/forseti
secretsFile: /etc/forseti/secrets.yaml
serve:
  bindAddress: 0.0.0.0
  dhcp: ${a.dhcpMode !== 'off'}
${a.dhcpMode !== 'off' ? `  interface: ${a.interface}          # the only NIC DHCP is served on; site.yaml's network.interface must match\n  dhcpModes: [${a.dhcpMode}]          # the dhcp.mode values a commit may ask for\n  dhcpRelays: []          # the DHCP relays (their giaddr) site.yaml's dhcp.relays may name; none: relayed requests go unanswered\n` : ''}  tftp: true
  ipxeDir: /usr/lib/ipxe
`;
}

/** Every file of the new repository, path → content. */
export function labRepositoryFiles(a: InitAnswers): Record<string, string> {
  checkAnswers(a);
  const files: Record<string, string> = {
    'site.yaml': siteYaml(a),
    'README.md': readme(a),
    'hosts/README.md': HOSTS_README,
    'images/README.md': IMAGES_README,
    'agent/agent.yaml': agentYaml(a),
  };
  for (const [path, text] of Object.entries(PROFILES)) files[path] = schemaLine(path, 'profile') + text;
  for (const kind of DOCUMENT_KINDS) files[`schemas/${schemaFileName(kind)}`] = readFileSync(new URL(schemaFileName(kind), SCHEMA_DIR), 'utf8');
  for (const path of WORKFLOWS) files[path] = readFileSync(new URL(path, TEMPLATE), 'utf8');
  return files;
}
