// Argo CD-style sync and health, decided in this one place for every reader: the agent's /v1/status and
// status branch (with the drift it measured), the dashboard, and `forseti status` on files from older agents.
import type { DesiredHost, ObservedHost } from '../core/host-state.ts';

export const SYNC_STATES = ['Synced', 'OutOfSync', 'Unknown'] as const;
export type SyncState = (typeof SYNC_STATES)[number];
export const HEALTH_STATES = ['Healthy', 'Progressing', 'Degraded', 'Missing'] as const;
export type HealthState = (typeof HEALTH_STATES)[number];

/** Drift kinds that mean forseti cannot see the machine any more (src/observe/drift.ts). */
export const BLIND_DRIFTS: ReadonlySet<string> = new Set(['bmc-unreachable', 'host-silent']);

const KNOWN_PHASES: ReadonlySet<string> = new Set(['Pending', 'Enrolling', 'Ready', 'Provisioning', 'Converged', 'Failed', 'Wiping', 'Off']);

/**
 * What is known of one host. Only `phase` and `role` are always there; the rest is what the agent knows live
 * and an old status file may lack, and a missing field never makes a host look worse than its phase.
 */
export interface SyncHealthInput {
  phase: string;
  /** Desired role in the served commit. */
  role: string;
  /** Whether the commit wants the machine running (false: role `off`, `power: off` or a power schedule). */
  wantOn?: boolean;
  /** Digest of what the commit renders for the host, and of what it last converged with. */
  digest?: string;
  appliedDigest?: string;
  /** Role the host last converged with. */
  appliedRole?: string;
  lastError?: { message: string } | null;
  /** Kinds of the drift measured now (`powered-off`, `bmc-unreachable`, ...). */
  drifts?: readonly string[];
}

export interface SyncHealth {
  sync: SyncState;
  health: HealthState;
}

/**
 * - Unknown/Missing before the first observation (Pending, or a phase this version does not know) and while
 *   the machine cannot be seen (its BMC stopped answering, or it went silent): forseti cannot tell.
 * - Drift makes a host OutOfSync and Degraded, whatever its phase says.
 * - Synced: converged in the desired role with the desired artifacts, or kept off as declared.
 * - Health follows the phase: Failed (and an enrolment that keeps failing) is Degraded, Provisioning, Wiping and
 *   Enrolling are Progressing, Converged and Ready are Healthy; a host that should run but is Off is Missing.
 */
export function syncAndHealth(host: SyncHealthInput): SyncHealth {
  const drifts = host.drifts ?? [];
  if (!KNOWN_PHASES.has(host.phase) || host.phase === 'Pending') return { sync: 'Unknown', health: 'Missing' };
  if (drifts.some((d) => BLIND_DRIFTS.has(d))) return { sync: 'Unknown', health: 'Missing' };
  const sync: SyncState = drifts.length === 0 && inSync(host) ? 'Synced' : 'OutOfSync';
  return { sync, health: drifts.length > 0 ? 'Degraded' : healthOf(host) };
}

function inSync(host: SyncHealthInput): boolean {
  if (host.wantOn === false) return host.phase === 'Off';
  if (host.phase === 'Off') return host.wantOn === undefined;
  if (host.phase !== 'Converged') return false;
  const sameRole = host.appliedRole === undefined || host.appliedRole === host.role;
  const sameDigest = host.digest === undefined || host.appliedDigest === undefined || host.digest === host.appliedDigest;
  return sameRole && sameDigest;
}

function healthOf(host: SyncHealthInput): HealthState {
  switch (host.phase) {
    case 'Failed':
      return 'Degraded';
    case 'Enrolling':
      return host.lastError ? 'Degraded' : 'Progressing';
    case 'Provisioning':
    case 'Wiping':
      return 'Progressing';
    case 'Off':
      return host.wantOn === true ? 'Missing' : 'Healthy';
    default:
      // Converged or Ready; a converged host the commit wants off is on its way there.
      return host.wantOn === false ? 'Progressing' : 'Healthy';
  }
}

/** The input from what the agent holds: the served commit's desired state, the observed state, the drift now. */
export function syncHealthInput(desired: DesiredHost, observed: ObservedHost | undefined, drifts: readonly { kind: string }[] = []): SyncHealthInput {
  if (!observed) return { phase: 'Pending', role: desired.role };
  return {
    phase: observed.phase,
    role: desired.role,
    wantOn: desired.power === 'on' && desired.boot !== 'off',
    digest: desired.digest,
    ...(observed.appliedDigest !== undefined ? { appliedDigest: observed.appliedDigest } : {}),
    ...(observed.appliedRole !== undefined ? { appliedRole: observed.appliedRole } : {}),
    lastError: observed.lastError ?? null,
    drifts: drifts.map((d) => d.kind),
  };
}

const HEALTH_RANK: Record<HealthState, number> = { Healthy: 0, Progressing: 1, Missing: 2, Degraded: 3 };

export interface SiteSyncHealth extends SyncHealth {
  /** Hosts per sync and per health state, every state listed (zeros included). */
  counts: { sync: Record<SyncState, number>; health: Record<HealthState, number> };
}

/**
 * The site from its hosts. Sync: OutOfSync when any host is, or when the newest commit was rejected (the
 * branch head is not what serves); else Unknown when any host is, or before the first commit applied; else
 * Synced. Health: the worst host's (Degraded > Missing > Progressing > Healthy); a lab with no hosts is Healthy.
 */
export function siteSyncHealth(hosts: Iterable<SyncHealth>, site: { revision: string | null; rejected: boolean }): SiteSyncHealth {
  const counts: SiteSyncHealth['counts'] = {
    sync: { Synced: 0, OutOfSync: 0, Unknown: 0 },
    health: { Healthy: 0, Progressing: 0, Degraded: 0, Missing: 0 },
  };
  let health: HealthState = 'Healthy';
  for (const host of hosts) {
    counts.sync[host.sync]++;
    counts.health[host.health]++;
    if (HEALTH_RANK[host.health] > HEALTH_RANK[health]) health = host.health;
  }
  let sync: SyncState = 'Synced';
  if (counts.sync.OutOfSync > 0 || site.rejected) sync = 'OutOfSync';
  else if (counts.sync.Unknown > 0 || site.revision === null) sync = 'Unknown';
  return { sync, health, counts };
}

export function isSyncState(v: unknown): v is SyncState {
  return (SYNC_STATES as readonly unknown[]).includes(v);
}

export function isHealthState(v: unknown): v is HealthState {
  return (HEALTH_STATES as readonly unknown[]).includes(v);
}
