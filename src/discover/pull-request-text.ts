// The title and Markdown body of the pull request proposing a discovered machine: what it is (model, serial, CPUs,
// memory, disks, MACs, its BMC), the file and branch, and what merging does. Every value the machine reported is
// put in a code span, so nothing it says can mention a person, link, embed an image or add HTML on any of the
// three forges (CommonMark code spans: GitHub, Gitea's goldmark and GitLab render their content literally).
import type { MachineFacts } from './facts.ts';
import type { HostDocument } from './host-yaml.ts';
import { oneLine } from './host-yaml.ts';

export interface ProposalForText {
  name: string;
  file: string;
  branch: string;
  document: HostDocument;
}

export function pullRequestText(proposal: ProposalForText, facts: MachineFacts): { title: string; body: string } {
  const doc = proposal.document;
  const hw = doc.hardware ?? {};
  const serial = doc.labels?.['serial'];
  // A title is plain text, but forges link `#1` and `@name` there too: the machine's words keep letters, digits and
  // plain punctuation only.
  const plain = (text: string | undefined): string | undefined => (text === undefined ? undefined : text.replace(/[^A-Za-z0-9 .,:;()/+=-]+/g, ' '));
  const title = oneLine(`Discovered ${proposal.name}: ${[plain(hw.model ?? facts.manufacturer), serial ? `serial ${plain(serial)}` : undefined, doc.macs[0]].filter(Boolean).join(', ')}`, 200);
  const disks = (facts.disks ?? []).slice(0, 64).map((d) => `${code(d.device ?? d.name ?? '?')} ${gb(d.sizeGB)}${d.type ? ` ${d.type}` : ''}${d.model ? ` ${code(d.model)}` : ''}`);
  const lines = [
    `forseti found a machine that no host declares and proposes ${code(proposal.file)} for it (branch ${code(proposal.branch)}).`,
    '',
    `- **Boot NIC**: ${code(doc.macs[0] ?? '?')}${doc.macs.length > 1 ? `; other NICs: ${doc.macs.slice(1).map(code).join(', ')}` : ''}`,
    `- **Model**: ${hw.model ? code(hw.model) : 'not reported'}`,
    `- **Serial**: ${serial ? code(serial) : 'not reported'}`,
    `- **CPUs**: ${hw.cpus ?? '?'} × ${facts.cpuModel ? code(facts.cpuModel) : 'unknown model'}${hw.cores !== undefined ? `, ${hw.cores} cores` : ''}`,
    `- **Memory**: ${hw.memoryGiB !== undefined ? `${hw.memoryGiB} GiB` : 'not reported'}`,
    `- **Disks**: ${disks.length > 0 ? disks.join('; ') : 'none reported'}`,
    `- **BMC**: ${facts.managementAddress ? code(facts.managementAddress) : 'none reported'}${doc.bmc.type === 'manual' ? ' (not used: `bmc: {type: manual}` until you set it)' : ` (${code(doc.bmc.type)})`}`,
    `- **Address**: ${code(doc.ip)}, the lowest free one of the site's subnet`,
    '',
    `The role is ${code(doc.role)}: merged as it is, the machine stays off and is never network-booted. Set its role${doc.bmc.type === 'manual' ? ' and its BMC' : ''} on this branch to adopt it. To ignore the machine, close this pull request and keep the branch: forseti proposes a machine once, and never while its branch exists.`,
  ];
  return { title, body: `${lines.join('\n')}\n` };
}

/** A CommonMark code span around `text` (one line, bounded): a fence longer than any run of backticks inside. */
export function code(text: string): string {
  const clean = oneLine(text, 200);
  if (clean === '') return '(empty)';
  const longest = Math.max(0, ...(clean.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = clean.startsWith('`') || clean.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${clean}${pad}${fence}`;
}

function gb(size: number): string {
  return size >= 1 ? `${Math.round(size * 10) / 10} GB` : `${Math.round(size * 1000)} MB`;
}
