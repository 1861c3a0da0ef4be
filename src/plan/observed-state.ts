// The observed side of the plan, from the status branch or, without one, from an assumption said out loud.
import type { RenderedHost } from '../render/host.ts';
import type { HostStatus } from '../status/host-status.ts';
import type { ObservedState, PlanSide } from './plan-types.ts';
import { renderSide } from './render-side.ts';
import type { ObservedHost, ObservedInventory } from './types.ts';

export function emptyObserved(at: number, note: string): ObservedState {
  return { source: 'empty', description: 'nothing (every host is new)', at, hosts: new Map(), notes: [note] };
}

/** Every host of BASE converged in its BASE role with BASE's artifacts; hosts kept off are Off. */
export function observedAtBase(base: PlanSide, at: number): ObservedState {
  const hosts = new Map<string, ObservedHost>();
  for (const [name, r] of renderSide(base)) {
    const d = r.desired;
    const state: ObservedHost =
      d.boot === 'off' || d.power === 'off'
        ? { phase: 'Off', since: at }
        : { phase: 'Converged', appliedRole: d.role, appliedDigest: d.digest, appliedRevision: base.revision, since: at };
    if (d.wipeToken !== undefined) state.wipedToken = d.wipeToken;
    hosts.set(name, state);
  }
  return {
    source: 'assumed-base',
    description: `assumed: every host converged at BASE ${short(base.revision)}`,
    at,
    hosts,
    notes: ['no status branch found: every host is taken as converged in its BASE role'],
  };
}

export interface StatusHostFile {
  status: HostStatus;
  inventory?: ObservedInventory;
}

export interface StatusInput {
  /** `status branch forseti-status at 1a2b3c4d5e6f` */
  description: string;
  at: number;
  files: Map<string, StatusHostFile>;
  /** Hosts rendered at a revision the status names; undefined when that revision cannot be loaded here. */
  renderedAt: (revision: string) => Map<string, RenderedHost> | undefined;
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
  const baseHosts = input.base ? renderSide(input.base) : undefined;
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
  for (const [name, file] of input.files) {
    const s = file.status;
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
    if (file.inventory) state.inventory = file.inventory;
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

export function short(revision: string): string {
  return /^[0-9a-f]{40}$/.test(revision) ? revision.slice(0, 12) : revision;
}
