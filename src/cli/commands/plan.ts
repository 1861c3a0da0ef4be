import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileProblem } from '../../model/documents.ts';
import { formatProblem, loadLab } from '../../model/load.ts';
import type { Lab, LabProblem } from '../../model/types.ts';
import { formatErrorJson, formatInvalidJson, formatPlanJson } from '../../plan/format-json.ts';
import { formatInvalidMarkdown, formatPlanMarkdown } from '../../plan/format-markdown.ts';
import { formatInvalidText, formatPlanText } from '../../plan/format-text.ts';
import { NotAGitRepositoryError } from '../../plan/not-a-repository-error.ts';
import { emptyObserved, observedAtBase, short } from '../../plan/observed-state.ts';
import { planChanges } from '../../plan/plan-changes.ts';
import type { ObservedState, PlanSide } from '../../plan/plan-types.ts';
import { renderSide } from '../../plan/render-side.ts';
import { RenderFailedError } from '../../render/generation.ts';
import { observedFromStatus, readStatusBranchHosts, type StatusBranchHosts } from '../../status/observed-from-status.ts';
import type { RenderedHost } from '../../render/host.ts';
import { RefusedTreeError } from '../../source/refused-tree-error.ts';
import { findGitdir, writeRevisionTree } from '../../source/write-revision-tree.ts';
import { resolveRevision } from '../../source/resolve-revision.ts';
import { flag, parseArgs, UsageError } from '../args.ts';
import { labLimitsFromArgs } from '../lab-limit-flags.ts';
import type { LabLimits } from '../../model/lab-limits.ts';
import { errorMessage } from '../../core/errors.ts';

const FORMATS = ['text', 'markdown', 'json'] as const;
type Format = (typeof FORMATS)[number];

/** Revisions named on the status branch that are loaded to learn what those hosts run; the rest take BASE's artifacts. */
const MAX_STATUS_REVISIONS = 8;

/**
 * `forseti plan --base REV --head REV [LAB_DIR]`: what merging HEAD would do to each host.
 * Exit 0: nothing changes; 1: something changes; 2: error (invalid HEAD, unknown revision, ...).
 * Only I/O here: checking out, loading, reading the status branch; the plan itself is `planChanges`.
 */
export async function planCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const baseRev = flag(args, 'base');
  const headRev = flag(args, 'head');
  if (!baseRev || !headRev) throw new UsageError('plan needs --base REV and --head REV');
  const format = (flag(args, 'format') ?? 'text') as Format;
  if (!FORMATS.includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`);
  const statusBranch = flag(args, 'status-branch') ?? 'forseti-status';
  const dir = resolve(args.positional[0] ?? '.');
  const limits = labLimitsFromArgs(args);

  const tmp = await mkdtemp(join(tmpdir(), 'forseti-plan-'));
  try {
    return await plan({ dir, baseRev, headRev, format, statusBranch, tmp, limits });
  } catch (err) {
    const message = errorMessage(err);
    if (format === 'json') process.stdout.write(formatErrorJson(message));
    process.stderr.write(`forseti plan: ${message}\n`);
    return 2;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

interface PlanRun {
  dir: string;
  baseRev: string;
  headRev: string;
  format: Format;
  statusBranch: string;
  tmp: string;
  limits: LabLimits;
}

async function plan(run: PlanRun): Promise<number> {
  const gitdir = await findGitdir(run.dir);
  if (!existsSync(join(gitdir, 'objects'))) throw new NotAGitRepositoryError(run.dir);
  const headCommit = await resolveRevision(gitdir, run.headRev);
  const baseCommit = await resolveRevision(gitdir, run.baseRev);
  const loadAt = async (commit: string, name: string): Promise<{ lab: Lab | null; problems: LabProblem[] }> => {
    const tree = join(run.tmp, name);
    try {
      await writeRevisionTree(gitdir, commit, tree);
    } catch (err) {
      // a tree the Git layer refuses is an invalid side, like one that fails validation
      if (err instanceof RefusedTreeError) return { lab: null, problems: [fileProblem(err.path, { code: 'unsafe-path', message: err.reason })] };
      throw err;
    }
    return loadLab(tree, { limits: run.limits });
  };

  const headLoaded = await loadAt(headCommit, 'head');
  if (!headLoaded.lab) return invalidHead(run.format, headCommit, headLoaded.problems);
  const baseLoaded = baseCommit === headCommit ? headLoaded : await loadAt(baseCommit, 'base');

  let observed: ObservedState;
  try {
    const head = renderSide(headCommit, headLoaded.lab);
    const validBase = baseLoaded.lab ? rendered(baseCommit, baseLoaded.lab) : null;
    observed = await observe(run, gitdir, validBase, head, loadAt);
    const result = planChanges(
      validBase ? validBase : { revision: baseCommit, lab: null, problems: baseLoaded.lab ? ['BASE cannot be rendered'] : baseLoaded.problems.map(formatProblem) },
      head,
      observed,
    );
    if (run.format === 'json') process.stdout.write(formatPlanJson(result));
    else if (run.format === 'markdown') process.stdout.write(formatPlanMarkdown(result));
    else process.stdout.write(formatPlanText(result));
    return result.changed ? 1 : 0;
  } catch (err) {
    if (err instanceof RenderFailedError) return invalidHead(run.format, headCommit, err.errors.map(renderProblem));
    throw err;
  }
}

/** The side rendered, or null when it cannot be. */
function rendered(revision: string, lab: Lab): PlanSide | null {
  try {
    return renderSide(revision, lab);
  } catch (err) {
    if (err instanceof RenderFailedError) return null;
    throw err;
  }
}

/** The status branch when there is one; else every host converged at BASE; else (BASE invalid) nothing. */
async function observe(
  run: PlanRun,
  gitdir: string,
  base: PlanSide | null,
  head: PlanSide,
  loadAt: (commit: string, name: string) => Promise<{ lab: Lab | null }>,
): Promise<ObservedState> {
  const at = Date.now();
  const status = await readStatusBranchHosts(gitdir, run.statusBranch);
  if (!status) {
    if (base) return observedAtBase(base, at);
    return emptyObserved(at, `no status branch ${run.statusBranch} and BASE is invalid: every host is taken as new`);
  }
  const rendered = await renderStatusRevisions(status, gitdir, base, head, loadAt);
  return observedFromStatus({
    description: `status branch ${status.ref} at ${short(status.commit)}`,
    at,
    hosts: status.hosts,
    renderedAt: (revision) => rendered.get(revision),
    base,
    notes: status.notes,
  });
}

/** Renders the lab at the revisions the status branch names (most named first), so observed digests are real. */
async function renderStatusRevisions(
  status: StatusBranchHosts,
  gitdir: string,
  base: PlanSide | null,
  head: PlanSide,
  loadAt: (commit: string, name: string) => Promise<{ lab: Lab | null }>,
): Promise<Map<string, ReadonlyMap<string, RenderedHost>>> {
  const counts = new Map<string, number>();
  for (const s of status.hosts.values()) {
    for (const rev of [s.revision, s.attemptedRevision]) if (rev) counts.set(rev, (counts.get(rev) ?? 0) + 1);
  }
  const out = new Map<string, ReadonlyMap<string, RenderedHost>>();
  const known = [base, head].filter((s): s is PlanSide => s !== null);
  const wanted = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([rev]) => rev);
  let loaded = 0;
  for (const rev of wanted) {
    const same = known.find((s) => s.revision === rev);
    if (same) {
      out.set(rev, same.hosts);
      continue;
    }
    if (loaded >= MAX_STATUS_REVISIONS) continue;
    loaded++;
    try {
      const commit = await resolveRevision(gitdir, rev);
      const { lab } = await loadAt(commit, `status-${loaded}`);
      if (lab) out.set(rev, renderSide(commit, lab).hosts);
    } catch {
      // not in this clone, invalid or not renderable: observedFromStatus falls back to BASE's artifacts and says so
    }
  }
  return out;
}

function invalidHead(format: Format, head: string, problems: LabProblem[]): number {
  const lines = problems.map(formatProblem);
  if (format === 'json') process.stdout.write(formatInvalidJson(head, problems));
  else if (format === 'markdown') process.stdout.write(formatInvalidMarkdown(head, lines));
  else process.stdout.write(formatInvalidText(lines));
  process.stderr.write(`HEAD ${short(head)} is invalid: ${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing can be planned\n`);
  return 2;
}

function renderProblem(err: RenderFailedError['errors'][number]): LabProblem {
  const ref = err.ref ?? { file: '?', line: 1, col: 1 };
  const prefix = err.ref ? `${ref.file}:${ref.line}:${ref.col}: ` : '';
  return { ref, code: 'render', message: err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message };
}
