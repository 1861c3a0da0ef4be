// What a discovery run prints: one line per machine (proposed, skipped as already declared, refused), where the
// files went, and the lab's problems if any; or the same as one JSON document.
import { formatProblem } from '../model/load.ts';
import type { LabProblem } from '../model/types.ts';
import type { MachineFacts } from './facts.ts';
import type { Proposal } from './propose-host.ts';

export interface RunReport {
  command: string;
  found: MachineFacts[];
  proposals: Proposal[];
  notes: string[];
  /** Where the files went; undefined: nothing was written (a dry run, nothing proposed, or a problem). */
  written?: { destination: string; paths: string[]; commit?: string };
  /** The lab's problems with the proposals in it (nothing was written), or after they landed. */
  problems: LabProblem[];
  /** Why the run stopped before proposing (a refused credential, an unreachable BMC, an invalid lab). */
  error?: string;
}

export function formatJson(report: RunReport): string {
  const proposals = report.proposals.map((p) => (p.kind === 'proposed' ? { kind: p.kind, machine: p.machine, name: p.name, file: p.file, host: p.document } : p));
  return `${JSON.stringify({ ...report, proposals, problems: report.problems.map(formatProblem) }, null, 2)}\n`;
}

export function formatHuman(report: RunReport): string {
  const lines = [`${report.command}: ${report.found.length} machine${report.found.length === 1 ? '' : 's'} found`];
  for (const note of report.notes) lines.push(`  note: ${note}`);
  for (const p of report.proposals) {
    if (p.kind === 'proposed') {
      const hw = p.document.hardware;
      const facts = [`${p.document.macs.length} MAC${p.document.macs.length === 1 ? '' : 's'}`, hw?.memoryGiB !== undefined ? `${hw.memoryGiB} GiB` : '', `ip ${p.document.ip}`, `bmc ${p.document.bmc.type} ${p.document.bmc.address ?? ''}`.trim()].filter(Boolean);
      lines.push(`  proposed ${p.file}: ${p.machine} (${facts.join(', ')})`);
    } else if (p.kind === 'declared') lines.push(`  skipped  ${p.machine}: ${p.why}`);
    else lines.push(`  refused  ${p.machine}: ${p.why}`);
  }
  for (const problem of report.problems) lines.push(`  ${formatProblem(problem)}`);
  if (report.written) lines.push(`${report.written.paths.length} file${report.written.paths.length === 1 ? '' : 's'} ${report.written.destination}${report.written.commit ? ` (${report.written.commit.slice(0, 12)})` : ''}`);
  if (report.error) lines.push(report.error);
  return `${lines.join('\n')}\n`;
}
