// Drift: a difference between what the current commit declares and what the lab does, found by reading the BMCs
// and by what hosts report. Always measured against the current desired state only, so a `git revert` simply
// changes what is desired: forseti never defends the state the revert undid.

import type { BootOverride, PowerState } from '../core/power.ts';
import type { DesiredHost, ObservedHost } from '../core/host-state.ts';
import type { HostDriftPolicy } from './drift-policy.ts';
import type { DriftMode } from '../model/site-drift.ts';

export const DRIFT_KINDS = ['powered-off', 'powered-on', 'boot-override-lost', 'role-mismatch', 'bmc-unreachable', 'host-silent'] as const;
export type DriftKind = (typeof DRIFT_KINDS)[number];

/** What one scan read from a host's BMC. Absent fields were not read in this scan. */
export interface BmcReading {
  at: number;
  /** `unknown`: the BMC cannot tell (manual, Wake-on-LAN). */
  power?: PowerState;
  /** null: no override is active. */
  bootOverride?: BootOverride | null;
  /** The BMC did not answer (or refused us): the error's message, which names host and BMC and no password. */
  error?: string;
}

/** When a host was last heard of outside its BMC: DHCP renewals and phone-homes. */
export interface HostSighting {
  /** Epoch ms of the last DHCP packet or phone-home. */
  lastSeen?: number;
  lastPhoneHome?: { at: number; role: string };
}

export interface DriftDesired extends DesiredHost {
  drift: HostDriftPolicy;
}

export interface DriftObserved extends ObservedHost {
  seen?: HostSighting;
}

export type Correction =
  | { kind: 'power-on' }
  | { kind: 'power-off' }
  /** One-time PXE again, no power action: the host is still on its way to the network boot. */
  | { kind: 'boot-override'; device: 'pxe' }
  /** One-time PXE and power cycle into the desired role (the executor's provision action). */
  | { kind: 'reprovision' };

export interface Drift {
  host: string;
  kind: DriftKind;
  /** One line for people: what Git says, what the lab does. */
  message: string;
  /** Revision of the desired state compared against. */
  revision: string;
  mode: DriftMode;
  /** Where the mode came from: `site`, `group rack=a`, `host`. */
  policySource: string;
  /** What converging back means; null when forseti has nothing that fixes it (an unreachable BMC). */
  correction: Correction | null;
  /** Whether the caller carries out the correction now: only under `heal`. `paused` and `detect` never act. */
  act: boolean;
}

/** Drift of one host. Pure: the same inputs always give the same list, in a fixed order. */
export function detectDrift(desired: DriftDesired, observed: DriftObserved, reading: BmcReading | null, now: number): Drift[] {
  const drifts: Drift[] = [];
  const add = (kind: DriftKind, message: string, correction: Correction | null): void => {
    const { mode, source } = desired.drift;
    drifts.push({ host: desired.name, kind, message, revision: desired.revision, mode, policySource: source, correction, act: mode === 'heal' && correction !== null });
  };
  const wantOn = desired.power === 'on' && desired.boot !== 'off';
  const convergedAsDesired = observed.phase === 'Converged' && observed.appliedRole === desired.role;
  const rev = short(desired.revision);

  // Wake-on-LAN and manual hosts have nothing to read back: their BMC readings say nothing.
  const read = desired.enrollable === false ? null : reading;
  if (read?.error !== undefined) {
    add('bmc-unreachable', `the BMC of ${desired.name} does not answer: ${read.error}`, null);
  } else if (read) {
    if (wantOn && convergedAsDesired && read.power === 'off') {
      add('powered-off', `${desired.name} should be on (converged as ${desired.role} at ${rev}) but its BMC reads off`, { kind: 'power-on' });
    }
    if (!wantOn && observed.phase === 'Off' && read.power === 'on') {
      add('powered-on', `${desired.name} is declared off at ${rev} but its BMC reads on`, { kind: 'power-off' });
    }
    if (overrideLost(desired, observed, read, now)) {
      const doing = observed.phase === 'Wiping' ? 'is booting the wipe role' : `is provisioning ${desired.role}`;
      add('boot-override-lost', `${desired.name} ${doing} but its one-time PXE boot override is gone before its first DHCP`, { kind: 'boot-override', device: 'pxe' });
    }
  }

  const phoneHome = observed.seen?.lastPhoneHome;
  if (convergedAsDesired && phoneHome && phoneHome.at >= observed.since && phoneHome.role !== desired.role) {
    add('role-mismatch', `${desired.name} phoned home as ${phoneHome.role || 'no role'} but is declared ${desired.role} at ${rev}`, { kind: 'reprovision' });
  }

  const silentAfter = desired.drift.silentAfterMs;
  if (wantOn && convergedAsDesired && silentAfter > 0) {
    const lastSeen = Math.max(observed.since, observed.seen?.lastSeen ?? 0, phoneHome?.at ?? 0);
    if (now - lastSeen > silentAfter) {
      add('host-silent', `${desired.name} has not been seen (DHCP, phone-home) for ${Math.round((now - lastSeen) / 1000)} s`, null);
    }
  }
  return drifts;
}

/**
 * The one-time PXE override is set right before the power cycle and consumed by the firmware at the end of
 * POST, moments before the first DHCP. Gone while the host has not reached DHCP past a grace period means the
 * BMC dropped it (IPMI clears unused boot flags after 60 s, a BMC reset clears them too).
 */
function overrideLost(desired: DriftDesired, observed: DriftObserved, reading: BmcReading, now: number): boolean {
  if (!NETWORK_BOOTING.has(observed.phase) || observed.attemptDigest !== desired.digest) return false;
  // Before `power-cycled` the executor is still writing the override; after `dhcp` it was consumed as it should be.
  if (observed.step !== undefined && observed.step !== 'power-cycled') return false;
  if (reading.bootOverride === undefined) return false;
  if (reading.bootOverride !== null && reading.bootOverride.device === 'pxe') return false;
  return now - (observed.stepSince ?? observed.since) >= desired.drift.bootOverrideGraceMs;
}

/** Phases in which the host was sent to a one-time PXE boot: installing its role, or booting the wipe role. */
export const NETWORK_BOOTING: ReadonlySet<ObservedHost['phase']> = new Set(['Provisioning', 'Wiping']);

function short(revision: string): string {
  return revision.slice(0, 7);
}

// Sync and health (Argo CD's Synced/OutOfSync/Unknown, Healthy/Progressing/Degraded/Missing) are decided from
// these drifts in one place for every reader: syncAndHealth in src/observe/sync-health.ts.
