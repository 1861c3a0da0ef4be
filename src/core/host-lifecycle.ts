import type { ConvergeStepRecord, ObservedBmc, ObservedHost, ObservedInventory, Phase, ProvisionStep } from './host-state.ts';
import { MAX_CONVERGE_STEPS } from './host-state.ts';
import { PROVISION_STEPS } from './host-state.ts';

/** Something forseti saw a machine do, or did to it. */
export type HostEvent =
  | { kind: 'enrolled'; inventory: ObservedInventory }
  | { kind: 'enroll-failed'; message: string; retryAt: number }
  /** `nonce`: the new attempt's (src/render/token.ts); absent, the attempt has no token and cannot phone home. */
  | { kind: 'provision-started'; role: string; digest: string; revision: string; nonce?: string }
  | { kind: 'wipe-started'; token: string; digest: string; revision: string; nonce?: string }
  | { kind: 'step'; step: ProvisionStep }
  | { kind: 'phone-home'; role: string }
  /**
   * A converge signal of the attempt under way (src/converge) moved: its step, with what it waits on, is progress
   * (the step timeout starts again). `installed`: the OS is on the disk now, so the host's PXE answer is the disk.
   */
  | { kind: 'converge-step'; step: ConvergeStepRecord; installed?: true }
  /** The profile's converge signals say Converged (`by`: the signals that did). */
  | { kind: 'converged'; by: string[] }
  /** `digest`: the attempt this failure ends, so the same change is not retried in a loop. */
  | { kind: 'failed'; message: string; step?: string; digest?: string; revision?: string }
  | { kind: 'powered-off' }
  | { kind: 'powered-on' }
  | { kind: 'rerendered'; digest: string; revision: string }
  /**
   * What the BMC holds after forseti wrote a boot override it keeps for every boot (`holds`; absent: none of forseti's),
   * whether it keeps one-time overrides (`onceKept: false` once found out), and when to retry a write that failed.
   */
  | { kind: 'bmc-boot'; holds?: 'pxe' | 'disk'; onceKept?: false; retryAt?: number; message?: string };

/**
 * Where events of a host are recorded and its state read back (src/observe/host-tracker.ts HostTracker): what acts
 * on hosts (src/bmc/executor.ts) needs no more of it.
 */
export interface HostRecorder {
  get(host: string): ObservedHost;
  /** Applies the event; resolves once the journal holds the result. */
  record(host: string, event: HostEvent): Promise<ObservedHost>;
}

/**
 * The next observed state of a host after an event. Pure. Steps only move forward within one provisioning,
 * and events that do not fit the current phase leave the state as it is (returned unchanged).
 */
export function applyEvent(state: ObservedHost, event: HostEvent, now: number): ObservedHost {
  switch (event.kind) {
    case 'enrolled': {
      const { lastError: _e, retryAt: _r, failures: _f, ...rest } = state;
      const next = { ...rest, inventory: event.inventory };
      return state.phase === 'Pending' || state.phase === 'Enrolling' ? withPhase(next, 'Ready', now) : next;
    }
    case 'enroll-failed': {
      const failures = (state.failures ?? 0) + 1;
      return { ...withPhase(state, 'Enrolling', now), failures, retryAt: event.retryAt, lastError: { message: event.message, step: 'enroll' } };
    }
    case 'provision-started': {
      const { lastError: _dropped, step: _step, attemptNonce: _nonce, attemptInstalledAt: _i, convergeSteps: _c, ...rest } = state;
      const nonce = event.nonce !== undefined ? { attemptNonce: event.nonce } : {};
      return { ...rest, phase: 'Provisioning', step: 'requested', stepSince: now, attemptRole: event.role, attemptDigest: event.digest, attemptRevision: event.revision, ...nonce, since: now };
    }
    case 'wipe-started': {
      const { lastError: _dropped, step: _step, attemptNonce: _nonce, attemptInstalledAt: _i, convergeSteps: _c, ...rest } = state;
      const nonce = event.nonce !== undefined ? { attemptNonce: event.nonce } : {};
      return { ...rest, phase: 'Wiping', step: 'requested', stepSince: now, attemptWipeToken: event.token, attemptDigest: event.digest, attemptRevision: event.revision, ...nonce, since: now };
    }
    case 'step': {
      if (state.phase !== 'Provisioning' && state.phase !== 'Wiping') return state;
      if (state.step && PROVISION_STEPS.indexOf(event.step) <= PROVISION_STEPS.indexOf(state.step)) return state;
      return { ...state, step: event.step, stepSince: now };
    }
    case 'phone-home':
      return phoneHome(state, event.role, now);
    case 'converge-step':
      return convergeStep(state, event.step, event.installed === true, now);
    case 'converged': {
      // The wipe role's signals (its image's reports) said done: the wipe is complete, as by its phone-home.
      if (state.phase === 'Wiping') return wipeCompleted(state, now);
      if (state.phase !== 'Provisioning') return state;
      const { lastError: _dropped, step: _step, ...rest } = state;
      return withPhase({ ...rest, appliedRole: state.attemptRole, appliedDigest: state.attemptDigest, appliedRevision: state.attemptRevision }, 'Converged', now);
    }
    case 'failed': {
      const lastError = event.step ? { message: event.message, step: event.step } : { message: event.message };
      return {
        ...state,
        phase: 'Failed',
        since: now,
        lastError,
        ...(event.digest !== undefined ? { attemptDigest: event.digest } : {}),
        ...(event.revision !== undefined ? { attemptRevision: event.revision } : {}),
      };
    }
    case 'powered-off': {
      const { lastError: _dropped, step: _step, ...rest } = state;
      return withPhase(rest, 'Off', now);
    }
    case 'powered-on':
      return state.phase === 'Off' && state.appliedRole !== undefined ? withPhase(state, 'Converged', now) : state;
    case 'rerendered':
      return { ...state, appliedDigest: event.digest, appliedRevision: event.revision };
    case 'bmc-boot': {
      const bmc: ObservedBmc = {};
      if (event.onceKept === false || state.bmc?.bootOnce === false) bmc.bootOnce = false;
      const holds = event.retryAt !== undefined ? state.bmc?.holds : event.holds;
      if (holds !== undefined) bmc.holds = holds;
      if (event.retryAt !== undefined) bmc.retryAt = event.retryAt;
      const { bmc: _previous, ...rest } = state;
      return Object.keys(bmc).length > 0 ? { ...rest, bmc } : rest;
    }
  }
}

/** During a wipe the phone-home (from the wipe image) completes the wipe; otherwise it completes an install. */
function phoneHome(state: ObservedHost, role: string, now: number): ObservedHost {
  if (state.phase === 'Wiping') return wipeCompleted(state, now);
  if (state.phase !== 'Provisioning') return state;
  if (role !== state.attemptRole) {
    return { ...state, phase: 'Failed', since: now, lastError: { message: `booted role ${role}, expected ${state.attemptRole ?? 'none'}`, step: 'phone-home' } };
  }
  const { lastError: _dropped, step: _step, ...rest } = state;
  return withPhase({ ...rest, appliedRole: state.attemptRole, appliedDigest: state.attemptDigest, appliedRevision: state.attemptRevision }, 'Converged', now);
}

/** The disks are blank now: nothing is installed any more, and this token never asks for a wipe again. */
function wipeCompleted(state: ObservedHost, now: number): ObservedHost {
  const { lastError: _e, step: _s, appliedRole: _r, appliedDigest: _d, appliedRevision: _v, ...rest } = state;
  return withPhase({ ...rest, ...(state.attemptWipeToken !== undefined ? { wipedToken: state.attemptWipeToken } : {}) }, 'Ready', now);
}

/** A step of a converge signal (of a provisioning or a wipe): recorded (the same step with a new detail replaces it) and counted as progress. */
function convergeStep(state: ObservedHost, record: ConvergeStepRecord, installed: boolean, now: number): ObservedHost {
  if (state.phase !== 'Provisioning' && state.phase !== 'Wiping') return state;
  const steps = state.convergeSteps ?? [];
  const last = steps.at(-1);
  const same = last !== undefined && last.signal === record.signal && last.name === record.name;
  if (same && last.detail === record.detail && last.result === record.result && (!installed || state.attemptInstalledAt !== undefined)) return state;
  const next = same ? [...steps.slice(0, -1), { ...record, at: last.at }] : [...steps, record];
  return {
    ...state,
    convergeSteps: next.slice(-MAX_CONVERGE_STEPS),
    stepSince: now,
    ...(installed && state.attemptInstalledAt === undefined ? { attemptInstalledAt: now } : {}),
  };
}

function withPhase(state: ObservedHost, phase: Phase, now: number): ObservedHost {
  return state.phase === phase ? state : { ...state, phase, since: now };
}

export function initialState(now: number): ObservedHost {
  return { phase: 'Pending', since: now };
}
