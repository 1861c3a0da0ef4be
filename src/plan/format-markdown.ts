import { showInvisible } from '../model/invisible-chars.ts';
import { CHANGE_LABELS, listedHosts, revisionsLine, secretNote, summaryLine } from './format-common.ts';
import { short } from './observed-state.ts';
import type { HostPlan, Plan } from './plan-types.ts';

/** The first line of every comment: CI finds the comment to update by it. */
export const COMMENT_MARKER = '<!-- forseti-plan -->';

/** GitHub rejects comments over 65,536 characters; Gitea's limit is larger. Leave room for the tail. */
export const DEFAULT_MAX_CHARS = 60_000;

/**
 * A pull-request comment: a summary table (host | change | details), then one collapsible block of diffs per host.
 * Whatever does not fit in `maxChars` is counted, not cut mid-way.
 */
export function formatPlanMarkdown(plan: Plan, maxChars = DEFAULT_MAX_CHARS): string {
  const head: string[] = [COMMENT_MARKER, '### forseti plan', '', `${code(revisionsLine(plan))} · observed: ${escapeCell(plan.observed.description)}`, ''];
  for (const note of plan.notes) head.push(`> **note:** ${escapeCell(note)}`, '>');
  if (plan.notes.length > 0) head.pop();
  const baseProblems = plan.base.problems ?? [];
  if (baseProblems.length > 0) head.push('', '<details><summary>BASE problems</summary>', '', ...fenced(baseProblems.join('\n'), ''), '', '</details>');
  if (plan.notes.length > 0 || baseProblems.length > 0) head.push('');
  head.push(`**${plan.changed ? summaryLine(plan) : `no changes: ${summaryLine(plan)}`}**`);
  if (plan.converge.length > 0) head.push('', `converged by: ${plan.converge.map((c) => `${code(c.role)} ${escapeCell(c.signals)}`).join(' · ')}`);

  const listed = listedHosts(plan);
  const tail = ['', `<sub>Tokens are placeholders; secret configs are shown as rendered from Git, which holds no secret.</sub>`];
  let budget = maxChars - size(head) - size(tail) - 200; // room for the "do not fit" lines

  const table: string[] = [];
  let shownRows = 0;
  if (listed.length > 0) {
    table.push('', '| host | change | details |', '|---|---|---|');
    for (const h of listed) {
      const row = `| ${code(h.host)} | ${CHANGE_LABELS[h.change]} | ${escapeCell(h.details)} |`;
      if (budget - row.length - 1 < 0) break;
      table.push(row);
      budget -= row.length + 1;
      shownRows++;
    }
    if (shownRows < listed.length) table.push('', `… and ${listed.length - shownRows} more hosts: run \`forseti plan\` locally for all of them.`);
  }

  const blocks: string[] = [];
  let omitted = 0;
  for (const h of listed.slice(0, shownRows)) {
    if (h.diffs.length === 0) continue;
    const block = hostBlock(h);
    if (budget - size(block) < 0) {
      omitted++;
      continue;
    }
    blocks.push(...block);
    budget -= size(block);
  }
  if (omitted > 0) blocks.push('', `The diffs of ${omitted} more host${omitted === 1 ? '' : 's'} do not fit in one comment: run \`forseti plan\` locally.`);
  // Validation refuses invisible characters in lab text; should one come from elsewhere, the reviewer sees it written out.
  return showInvisible(`${[...head, ...table, ...blocks, ...tail].join('\n')}\n`);
}

/** HEAD does not validate: the comment lists every problem. */
export function formatInvalidMarkdown(head: string, problems: string[]): string {
  return showInvisible(`${[
    COMMENT_MARKER,
    '### forseti plan',
    '',
    `**HEAD ${code(short(head))} is invalid: ${problems.length} problem${problems.length === 1 ? '' : 's'}.** Nothing can be planned; the agent would reject this commit whole.`,
    '',
    ...fenced(problems.join('\n'), ''),
  ].join('\n')}\n`);
}

function hostBlock(h: HostPlan): string[] {
  const files = h.diffs.map((d) => d.file).join(', ');
  const lines = ['', `<details><summary><code>${escapeHtml(h.host)}</code>: ${CHANGE_LABELS[h.change]} (${escapeHtml(files)})</summary>`];
  for (const d of h.diffs) {
    lines.push('');
    if (d.secret) lines.push(`_${escapeCell(secretNote(h.host, d.file))}_`, '');
    lines.push(...fenced(d.patch.trimEnd(), 'diff'));
  }
  lines.push('', '</details>');
  return lines;
}

/** A code block whose fence is longer than any run of backticks inside it. */
function fenced(text: string, lang: string): string[] {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return [`${fence}${lang}`, text, fence];
}

function code(text: string): string {
  return text.includes('`') ? `<code>${escapeHtml(text)}</code>` : `\`${text}\``;
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Table cells and prose: no HTML, no column breaks, no stray formatting. */
function escapeCell(text: string): string {
  return escapeHtml(text).replace(/([\\*_`[\]|])/g, '\\$1').replace(/\n/g, ' ');
}

function size(lines: string[]): number {
  return lines.reduce((n, l) => n + l.length + 1, 0);
}
