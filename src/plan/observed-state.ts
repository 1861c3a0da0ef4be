// The observed side of the plan without a status branch: an assumption said out loud. With one, the status branch
// says it (src/status/observed-from-status.ts).
import type { ObservedState, PlanSide } from './plan-types.ts';
import type { ObservedHost } from '../core/host-state.ts';

export function emptyObserved(at: number, note: string): ObservedState {
  return { source: 'empty', description: 'nothing (every host is new)', at, hosts: new Map(), notes: [note] };
}

/** Every host of BASE converged in its BASE role with BASE's artifacts; hosts kept off are Off. */
export function observedAtBase(base: PlanSide, at: number): ObservedState {
  const hosts = new Map<string, ObservedHost>();
  for (const [name, r] of base.hosts) {
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

export function short(revision: string): string {
  return /^[0-9a-f]{40}$/.test(revision) ? revision.slice(0, 12) : revision;
}
