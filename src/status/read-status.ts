// What `forseti status` shows, from either source: the agent's API (live) or the status branch (what the
// agent last committed). Both become the same rows, so the table and --json do not care where they came from.
import * as fs from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import git from 'isomorphic-git';
import type { GitCredentials } from '../source/auth.ts';
import { fetchBranch } from '../source/fetch-branch.ts';
import { httpClientWithTimeout } from '../source/http-client.ts';
import { scrubSecrets } from '../redact/redactor.ts';
import { redactUrl } from '../redact/url.ts';
import { parseHostStatus, type HostStatus } from './host-status.ts';
import { hostOfStatusFile, readStatusFiles, resolveStatusBranch, type StatusFiles } from './status-branch.ts';
import { parseSiteStatus, type RejectedRevision, type SiteStatus } from './site-status.ts';
import { parseStatusView, type HostView, type StatusView } from './status-view.ts';
import type { HostAction, ReconcileRecord } from '../observe/activity.ts';
import { siteSyncHealth, syncAndHealth, type HealthState, type SyncState } from '../observe/sync-health.ts';
import { errorMessage } from '../core/errors.ts';
import { stripUndefined } from '../core/objects.ts';

export interface StatusRow {
  host: string;
  role: string;
  phase: string;
  step?: string;
  sync: SyncState;
  health: HealthState;
  /** Revision the host last converged at; null before its first convergence. */
  revision: string | null;
  /** Revision the agent is (or was last) driving it toward. */
  attemptRevision: string | null;
  /** `step: message` of the last error, while the host has one. */
  error?: string;
  /** The newest event or transition the source knows of. */
  lastEvent?: string;
  /** ISO time of the last phase change. */
  since?: string;
  enclosure?: { name: string; bay: number };
  /** The host's last actions with their timings, oldest first (agents that record them). */
  actions?: HostAction[];
}

export interface StatusSnapshot {
  /** Where this came from, safe to print (no credentials). */
  source: string;
  /** The lab revision the agent serves. */
  revision: string | null;
  rejected: RejectedRevision | null;
  /** The site's sync and health: as the agent wrote them, else aggregated from the rows the same way. */
  sync: SyncState;
  health: HealthState;
  /** The last commit applies, oldest first (agents that record them). */
  reconciles: ReconcileRecord[];
  hosts: StatusRow[];
}

/** The snapshot with the site's sync and health: `given` when the source said, else from the rows. */
function snapshot(base: { source: string; revision: string | null; rejected: RejectedRevision | null; hosts: StatusRow[] }, given: { sync?: SyncState; health?: HealthState; reconciles?: ReconcileRecord[] } = {}): StatusSnapshot {
  const computed = siteSyncHealth(base.hosts, { revision: base.revision, rejected: base.rejected !== null });
  return { source: base.source, revision: base.revision, rejected: base.rejected, sync: given.sync ?? computed.sync, health: given.health ?? computed.health, reconciles: given.reconciles ?? [], hosts: base.hosts };
}

/** The agent did not answer GET /v1/status with a status document. */
export class AgentStatusError extends Error {
  override readonly name = 'AgentStatusError';
  constructor(readonly url: string, reason: string) {
    super(`cannot read status from the agent at ${url}: ${reason}`);
  }
}

/** The repository has no status branch (the agent has not pushed yet, or another branch name is configured). */
export class StatusBranchNotFoundError extends Error {
  override readonly name = 'StatusBranchNotFoundError';
  constructor(readonly where: string, readonly branch: string) {
    super(`${where} has no branch ${branch} (has the agent pushed status yet? is the branch named differently? --branch)`);
  }
}

/** The repository could not be read (not a repository, unreachable, refused). */
export class StatusRepoError extends Error {
  override readonly name = 'StatusRepoError';
  constructor(readonly where: string, reason: string) {
    super(`cannot read status from ${where}: ${reason}`);
  }
}

const isoOf = (t: number | string | undefined): string | undefined => (t === undefined ? undefined : typeof t === 'number' ? new Date(t).toISOString() : t);
const errorText = (e: { message: string; step?: string } | null | undefined): string | undefined => (e ? (e.step ? `${e.step}: ${e.message}` : e.message) : undefined);

export function rowFromView(name: string, host: HostView): StatusRow {
  const computed = syncAndHealth(host);
  const last = host.events?.at(-1);
  return stripUndefined({
    host: name,
    role: host.role,
    phase: host.phase,
    step: host.step,
    sync: host.sync ?? computed.sync,
    health: host.health ?? computed.health,
    revision: host.appliedRevision ?? null,
    attemptRevision: host.attemptRevision ?? null,
    error: errorText(host.lastError),
    lastEvent: last?.message,
    since: isoOf(host.since),
    enclosure: host.enclosure,
    actions: host.actions,
  });
}

export function rowFromBranch(status: HostStatus): StatusRow {
  // What the agent decided with the drift it measured; files from older agents get what the phase says.
  const computed = status.sync && status.health ? { sync: status.sync, health: status.health } : syncAndHealth(status);
  const last = status.history?.at(-1);
  return stripUndefined({
    host: status.host,
    role: status.role,
    phase: status.phase,
    step: status.step,
    ...computed,
    revision: status.revision,
    attemptRevision: status.attemptedRevision,
    error: errorText(status.lastError),
    lastEvent: last ? (last.message ?? `${last.phase}${last.step ? ` (${last.step})` : ''}`) : undefined,
    since: status.since,
    actions: status.actions,
  });
}

export function snapshotFromView(view: StatusView, source: string): StatusSnapshot {
  return snapshot(
    {
      source,
      revision: view.site?.revision ?? view.revision,
      rejected: view.site?.rejected ?? null,
      hosts: Object.entries(view.hosts)
        .map(([name, host]) => rowFromView(name, host))
        .sort((a, b) => a.host.localeCompare(b.host)),
    },
    view.site ?? {},
  );
}

/** GET {agent}/v1/status. */
export async function readStatusFromAgent(agentUrl: string, options: { timeoutMs?: number } = {}): Promise<StatusSnapshot> {
  const safe = redactUrl(agentUrl);
  let url: URL;
  try {
    url = new URL('v1/status', agentUrl.endsWith('/') ? agentUrl : `${agentUrl}/`);
  } catch {
    throw new AgentStatusError(safe, 'not a URL');
  }
  let body: unknown;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 10_000), headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    body = await res.json();
  } catch (err) {
    throw new AgentStatusError(safe, errorMessage(err));
  }
  try {
    return snapshotFromView(parseStatusView(body, safe), `agent ${safe}`);
  } catch (err) {
    throw new AgentStatusError(safe, errorMessage(err));
  }
}

export interface ReadRepoOptions {
  /** Default `forseti-status`. */
  branch?: string;
  auth?: GitCredentials;
  timeoutMs?: number;
}

/**
 * The status branch of a remote (`http(s)://…`, fetched with isomorphic-git into a temporary directory) or of
 * a local repository: a checkout (its `.git`) or a bare repository, such as the agent's own
 * `stateDir/status/repo.git`. Locally the branch is looked up as `refs/heads/B`, then `refs/remotes/origin/B`.
 */
export async function readStatusFromRepo(repo: string, options: ReadRepoOptions = {}): Promise<StatusSnapshot> {
  const branch = options.branch ?? 'forseti-status';
  if (/^https?:\/\//i.test(repo)) return readRemote(repo, branch, options);
  const dir = resolve(repo);
  const gitdir = await findGitdir(dir);
  const head = await resolveStatusBranch(gitdir, branch);
  if (!head) throw new StatusBranchNotFoundError(dir, branch);
  return readCommit(gitdir, head.commit, `status branch ${branch} of ${dir}`, dir);
}

async function readRemote(url: string, branch: string, options: ReadRepoOptions): Promise<StatusSnapshot> {
  const safe = redactUrl(url);
  const gitdir = await mkdtemp(join(tmpdir(), 'forseti-status-read-'));
  try {
    let commit: string | null;
    try {
      await git.init({ fs, gitdir, bare: true, defaultBranch: branch });
      // fetch() wants a configured remote; the URL it uses is the one passed to it (the config never holds credentials).
      await git.addRemote({ fs, gitdir, remote: 'origin', url: safe });
      commit = await fetchBranch({ gitdir, http: httpClientWithTimeout(options.timeoutMs ?? 30_000), url, branch, cache: {}, ...(options.auth ? { auth: options.auth } : {}) });
    } catch (err) {
      throw new StatusRepoError(safe, scrubSecrets(errorMessage(err), [options.auth?.password]));
    }
    if (commit === null) throw new StatusBranchNotFoundError(safe, branch);
    return await readCommit(gitdir, commit, `status branch ${branch} of ${safe}`, safe);
  } finally {
    await rm(gitdir, { recursive: true, force: true });
  }
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

async function findGitdir(dir: string): Promise<string> {
  if (await isDir(join(dir, '.git'))) return join(dir, '.git');
  if ((await isDir(join(dir, 'objects'))) && (await stat(join(dir, 'HEAD')).catch(() => null))) return dir;
  throw new StatusRepoError(dir, 'not a git repository (neither a checkout with .git nor a bare repository)');
}

async function readCommit(gitdir: string, commit: string, source: string, where: string): Promise<StatusSnapshot> {
  let files: StatusFiles;
  try {
    files = await readStatusFiles(gitdir, commit);
  } catch (err) {
    throw new StatusRepoError(where, errorMessage(err));
  }
  const rows: StatusRow[] = [];
  for (const [path, text] of files) {
    const host = hostOfStatusFile(path);
    if (host === undefined) continue;
    try {
      rows.push(rowFromBranch(parseHostStatus(text)));
    } catch (err) {
      // One unreadable file must not hide the other hosts: it becomes a row that says what is wrong with it.
      rows.push({ host, role: '', phase: 'Unknown', sync: 'Unknown', health: 'Missing', revision: null, attemptRevision: null, error: `${path}: ${errorMessage(err)}` });
    }
  }
  const siteText = files.get('site.yaml');
  let site: SiteStatus | null = null;
  if (siteText !== undefined) {
    try {
      site = parseSiteStatus(siteText);
    } catch (err) {
      throw new StatusRepoError(where, `site.yaml: ${errorMessage(err)}`);
    }
  }
  return snapshot({ source, revision: site?.revision ?? null, rejected: site?.rejected ?? null, hosts: rows.sort((a, b) => a.host.localeCompare(b.host)) }, site ?? {});
}
