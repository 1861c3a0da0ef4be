// Argo-style sync and health of one host, from what the agent knows now. A drift module that compares the
// machine's real state (BMC power, boot order, running OS) with the commit replaces this function.

export const SYNC_STATES = ['Synced', 'OutOfSync', 'Unknown'] as const;
export type SyncState = (typeof SYNC_STATES)[number];
export const HEALTH_STATES = ['Healthy', 'Progressing', 'Degraded', 'Missing'] as const;
export type HealthState = (typeof HEALTH_STATES)[number];

export interface SyncHealthInput {
  /** Desired role in the served commit. */
  role: string;
  phase: string;
  /** Role the host last converged with; unknown when read from the status branch. */
  appliedRole?: string;
  lastError?: { message: string } | null;
}

/**
 * Synced: the host runs (or, when Off, is kept off as) what the commit declares. Health follows the phase:
 * Pending is a host forseti has not reached yet (Missing), Failed or a failing enrolment is Degraded.
 */
export function syncAndHealth(host: SyncHealthInput): { sync: SyncState; health: HealthState } {
  switch (host.phase) {
    case 'Converged':
      return { sync: host.appliedRole === undefined || host.appliedRole === host.role ? 'Synced' : 'OutOfSync', health: 'Healthy' };
    case 'Off':
      return { sync: 'Synced', health: 'Healthy' };
    case 'Ready':
      return { sync: 'OutOfSync', health: 'Healthy' };
    case 'Enrolling':
      return { sync: 'OutOfSync', health: host.lastError ? 'Degraded' : 'Progressing' };
    case 'Provisioning':
    case 'Wiping':
      return { sync: 'OutOfSync', health: 'Progressing' };
    case 'Failed':
      return { sync: 'OutOfSync', health: 'Degraded' };
    case 'Pending':
      return { sync: 'OutOfSync', health: 'Missing' };
    default:
      return { sync: 'Unknown', health: 'Missing' };
  }
}
