// The observed side of `forseti plan` read from the status branch the agent writes: each host's status file becomes
// the host state the reconcile decision takes (src/core/host-state.ts ObservedHost).
import type { ObservedHost } from '../core/host-state.ts';
import { errorMessage } from '../core/errors.ts';
import { short } from '../plan/observed-state.ts';
import type { ObservedState, PlanSide } from '../plan/plan-types.ts';
import type { RenderedHost } from '../render/host.ts';
import { parseHostStatus, type HostStatus } from './host-status.ts';
import { hostOfStatusFile, readStatusFiles, resolveStatusBranch } from './status-branch.ts';

export interface StatusBranchHosts {
  /** The ref that resolved: `forseti-status` or `origin/forseti-status`. */
  ref: string;
  commit: string;
  /** By host name (the file name without `.yaml`). */
  hosts: Map<string, HostStatus>;
  /** Files that could not be read, said out loud. */
  notes: string[];
}

/** The hosts' status files of the local branch, else the remote-tracking one; null when neither exists. */
export async function readStatusBranchHosts(gitdir: string, branch: string): Promise<StatusBranchHosts | null> {
  const head = await resolveStatusBranch(gitdir, branch);
  if (!head) return null;
  const hosts = new Map<string, HostStatus>();
  const notes: string[] = [];
  for (const [path, text] of await readStatusFiles(gitdir, head.commit)) {
    const host = hostOfStatusFile(path);
    if (host === undefined) continue;
    try {
      hosts.set(host, parseHostStatus(text));
    } catch (err) {
      notes.push(`${head.ref}:${path} cannot be read (${errorMessage(err)}): ${host} is taken as never seen`);
    }
  }
  if (hosts.size === 0 && notes.length === 0) notes.push(`${head.ref} has no hosts/ directory: no host has been seen yet`);
  return { ...head, hosts, notes };
}

export interface StatusInput {
  /** `status branch forseti-status at 1a2b3c4d5e6f` */
  description: string;
  at: number;
  /** Each host's status file, by host name. */
  hosts: Map<string, HostStatus>;
  /** Hosts rendered at a revision the status names; undefined when that revision cannot be loaded here. */
  renderedAt: (revision: string) => ReadonlyMap<string, RenderedHost> | undefined;
  /** Valid BASE, for artifacts of revisions that cannot be loaded. */
  base: PlanSide | null;
  /** Notes gathered while reading (unreadable files, ...). */
  notes?: string[];
}

/**
 * The status files carry role, phase and revisions but no artifact digest: the digest is that of the host
 * rendered at the revision the status names. A revision not loadable here (not fetched, invalid) takes BASE's
 * artifacts when the role matches, and the plan says so.
 */
export function observedFromStatus(input: StatusInput): ObservedState {
  const notes = [...(input.notes ?? [])];
  const unknownRevisions = new Set<string>();
  const baseHosts = input.base?.hosts;
  const artifactsAt = (revision: string | null, host: string, role: string): { role: string; digest?: string; wipeToken?: string } => {
    if (revision === null) return { role };
    const at = input.renderedAt(revision)?.get(host)?.desired;
    if (at) return { role: at.role, digest: at.digest, ...(at.wipeToken !== undefined ? { wipeToken: at.wipeToken } : {}) };
    unknownRevisions.add(revision);
    const base = baseHosts?.get(host)?.desired;
    if (!base || base.role !== role) return { role };
    return { role, digest: base.digest, ...(base.wipeToken !== undefined ? { wipeToken: base.wipeToken } : {}) };
  };

  const hosts = new Map<string, ObservedHost>();
  for (const [name, s] of input.hosts) {
    const since = timeOf(s.since, input.at);
    const state: ObservedHost = { phase: s.phase, since };
    if (s.revision !== null) {
      const applied = artifactsAt(s.revision, name, s.role);
      state.appliedRole = applied.role;
      if (applied.digest !== undefined) state.appliedDigest = applied.digest;
      // The status branch does not record wipes: a host that ran a revision is taken to have had its wipe then.
      if (applied.wipeToken !== undefined) state.wipedToken = applied.wipeToken;
      state.appliedRevision = s.revision;
    }
    if ((s.phase === 'Provisioning' || s.phase === 'Wiping' || s.phase === 'Failed') && s.attemptedRevision !== null) {
      const attempt = artifactsAt(s.attemptedRevision, name, s.role);
      state.attemptRole = s.role;
      if (attempt.digest !== undefined) state.attemptDigest = attempt.digest;
      if (attempt.wipeToken !== undefined) state.attemptWipeToken = attempt.wipeToken;
      state.attemptRevision = s.attemptedRevision;
      // `since` on the status branch moves with every step; the provisioning began at the first entry of this phase.
      state.since = phaseStart(s, since, input.at);
      state.stepSince = since;
      if (s.step) state.step = s.step;
    }
    if (s.lastError) state.lastError = s.lastError.step ? { message: s.lastError.message, step: s.lastError.step } : { message: s.lastError.message };
    if (s.inventory) state.inventory = { ...s.inventory };
    if (s.bmc) state.bmc = { ...s.bmc };
    hosts.set(name, state);
  }
  for (const revision of [...unknownRevisions].sort()) {
    notes.push(`revision ${short(revision)} named on the status branch cannot be loaded here: its artifacts are taken as BASE's`);
  }
  return { source: 'status-branch', description: input.description, at: input.at, hosts, notes };
}

function phaseStart(s: HostStatus, fallback: number, now: number): number {
  let start = fallback;
  for (const t of [...(s.history ?? [])].reverse()) {
    if (t.phase !== s.phase) break;
    start = Math.min(start, timeOf(t.at, now));
  }
  return start;
}

function timeOf(iso: string, fallback: number): number {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? fallback : t;
}
