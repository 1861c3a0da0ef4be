import { CHANGE_LABELS, listedHosts, revisionsLine, roleTransition, secretNote, summaryLine } from './format-common.ts';
import type { Plan } from './plan-types.ts';

/** For a terminal: a header, one aligned line per host that changes, the summary, then the diffs. */
export function formatPlanText(plan: Plan): string {
  const out: string[] = [`forseti plan: ${revisionsLine(plan)}`, `observed: ${plan.observed.description}`];
  for (const note of plan.notes) out.push(`note: ${note}`);
  for (const p of plan.base.problems ?? []) out.push(`  BASE: ${p}`);
  out.push('');
  const listed = listedHosts(plan);
  if (listed.length > 0) {
    const rows = [['HOST', 'CHANGE', 'ROLE', 'DETAILS'], ...listed.map((h) => [h.host, CHANGE_LABELS[h.change], roleTransition(h), h.details])];
    const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    for (const r of rows) out.push(r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] ?? 0) : cell)).join('  ').trimEnd());
    out.push('');
  }
  out.push(plan.changed ? summaryLine(plan) : `no changes: ${summaryLine(plan)}`);
  if (plan.converge.length > 0) out.push('', 'converged by:', ...plan.converge.map((c) => `  ${c.role}: ${c.signals}`));
  for (const h of listed) {
    if (h.diffs.length === 0) continue;
    out.push('', `# ${h.host}: ${CHANGE_LABELS[h.change]}`);
    for (const d of h.diffs) {
      if (d.secret) out.push(`# ${secretNote(h.host, d.file)}`);
      out.push(d.patch.trimEnd());
    }
  }
  return `${out.join('\n')}\n`;
}

/** HEAD does not validate: every problem, `file:line:col: message`, one per line. */
export function formatInvalidText(problems: string[]): string {
  return problems.map((p) => `${p}\n`).join('');
}
