import { Secrets } from '../../secrets/secrets.ts';
import { formatDuration, RECONCILE_STAGES, type ReconcileRecord } from '../../observe/activity.ts';
import { printableDeep, terminalSafe } from '../../redact/terminal.ts';
import { readStatusFromAgent, readStatusFromRepo, type StatusRow, type StatusSnapshot } from '../../status/read-status.ts';
import { flag, parseArgs, UsageError } from '../args.ts';

const HELP = `usage: forseti status [--agent URL | --repo URL|DIR] [--branch NAME] [--credential NAME] [--json]

  --agent URL        ask a running agent (GET URL/v1/status): live phases and steps
  --repo URL|DIR     read the status branch the agent commits to: a smart-HTTP URL, a checkout, or a bare
                     repository such as the agent's stateDir/status/repo.git (default: the current directory)
  --branch NAME      status branch name (default forseti-status)
  --credential NAME  for an HTTP --repo: FORSETI_CREDENTIAL_<NAME>_USERNAME/_PASSWORD from the environment
  --json             everything as JSON: the site's sync, health and last five commit applies with their
                     stage timings, and per host its row with its last five actions and their timings
`;

/** `forseti status`: one line per host, from the agent's API or from the status branch. */
export async function statusCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['json', 'help']);
  if (args.flags.has('help')) {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.positional.length > 0) throw new UsageError(`forseti status: unexpected argument ${args.positional[0]}`);
  const agent = flag(args, 'agent');
  const repo = flag(args, 'repo');
  if (agent && repo) throw new UsageError('forseti status: give --agent or --repo, not both');
  const credential = flag(args, 'credential');
  const branch = flag(args, 'branch');
  const snapshot = agent
    ? await readStatusFromAgent(agent)
    : await readStatusFromRepo(repo ?? '.', {
        ...(branch ? { branch } : {}),
        ...(credential ? { auth: (await Secrets.load(undefined)).resolve(credential) } : {}),
      });
  // Errors and events carry what BMCs and machines said: their control characters are escaped, so only the colours
  // formatStatus adds itself reach the terminal.
  if (args.flags.has('json')) process.stdout.write(terminalSafe(`${JSON.stringify(snapshot, null, 2)}\n`));
  else process.stdout.write(formatStatus(printableDeep(snapshot), Date.now(), process.stdout.isTTY === true && !process.env.NO_COLOR));
  return 0;
}

const short = (rev: string | null): string => (rev ? rev.slice(0, 7) : '-');

export function age(iso: string | undefined, now: number): string {
  const t = iso ? Date.parse(iso) : Number.NaN;
  if (!Number.isFinite(t)) return '-';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d`;
}

function revisionCell(row: StatusRow): string {
  if (row.attemptRevision && row.attemptRevision !== row.revision && row.phase !== 'Converged') return `${short(row.revision)}→${short(row.attemptRevision)}`;
  return short(row.revision);
}

function lastCell(row: StatusRow): string {
  const text = row.error ? `error: ${row.error}` : (row.lastEvent ?? '');
  return text.length > 70 ? `${text.slice(0, 69)}…` : text;
}

const COLOURS: Record<string, string> = { Converged: '32', Synced: '32', Healthy: '32', Provisioning: '34', Wiping: '33', Progressing: '34', Failed: '31', Degraded: '31', OutOfSync: '33', Missing: '90', Unknown: '90' };

/** `last reconcile 1a2b3c4 applied 5m ago in 1.3 s (validate 120 ms, render 900 ms, ...), 3 hosts acted on`. */
export function reconcileLine(r: ReconcileRecord, now: number): string {
  const when = age(r.finished ?? r.started, now);
  const stages = RECONCILE_STAGES.filter((s) => r.stages[s] !== undefined).map((s) => `${s} ${formatDuration(r.stages[s])}`);
  const head = r.result === 'running' ? `last reconcile ${short(r.revision)} running for ${when}` : `last reconcile ${short(r.revision)} ${r.result} ${when} ago in ${formatDuration(r.durationMs)}`;
  const problems = r.result === 'rejected' && r.problems ? `, ${r.problems} problem${r.problems === 1 ? '' : 's'}` : '';
  const acted = r.result === 'rejected' ? '' : `, ${r.hostsActedOn} host${r.hostsActedOn === 1 ? '' : 's'} acted on${actionsText(r.actions)}`;
  return `${head}${stages.length > 0 ? ` (${stages.join(', ')})` : ''}${problems}${acted}`;
}

function actionsText(actions: Record<string, number> | undefined): string {
  const parts = Object.entries(actions ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([kind, n]) => `${kind} ${n}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/** The header lines and the table, as printed. Pure: `now` for the SINCE column, `colour` for a terminal. */
export function formatStatus(snapshot: StatusSnapshot, now: number, colour = false): string {
  const paintWord = (word: string): string => (colour && COLOURS[word] ? `\x1b[${COLOURS[word]}m${word}\x1b[0m` : word);
  const lines = [`revision ${short(snapshot.revision)} from ${snapshot.source}`, `site ${paintWord(snapshot.sync)}, ${paintWord(snapshot.health)}`];
  const last = snapshot.reconciles.at(-1);
  if (last) lines.push(reconcileLine(last, now));
  if (snapshot.rejected) {
    lines.push(`rejected ${short(snapshot.rejected.revision)}: ${snapshot.rejected.errors.length} problem${snapshot.rejected.errors.length === 1 ? '' : 's'}; ${short(snapshot.revision)} keeps serving`);
    for (const e of snapshot.rejected.errors.slice(0, 10)) lines.push(`  ${e}`);
    if (snapshot.rejected.errors.length > 10) lines.push(`  … and ${snapshot.rejected.errors.length - 10} more`);
  }
  if (snapshot.hosts.length === 0) return `${lines.join('\n')}\nno hosts\n`;
  const header = ['HOST', 'ROLE', 'PHASE', 'SYNC', 'HEALTH', 'REVISION', 'SINCE', 'LAST EVENT / ERROR'];
  const rows = snapshot.hosts.map((r) => [r.host, r.role || '-', r.step && r.phase !== 'Converged' ? `${r.phase}/${r.step}` : r.phase, r.sync, r.health, revisionCell(r), age(r.since, now), lastCell(r)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const paint = (cell: string, i: number): string => {
    const padded = i === header.length - 1 ? cell : cell.padEnd(widths[i] ?? 0);
    const code = colour ? COLOURS[cell.split('/')[0] ?? ''] : undefined;
    return code ? `\x1b[${code}m${padded}\x1b[0m` : padded;
  };
  lines.push('', header.map((h, i) => (i === header.length - 1 ? h : h.padEnd(widths[i] ?? 0))).join('  '));
  for (const row of rows) lines.push(row.map(paint).join('  ').trimEnd());
  return `${lines.join('\n')}\n`;
}
