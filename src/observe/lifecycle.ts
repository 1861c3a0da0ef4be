import type { ObservedHost, Phase, ProvisionStep } from '../plan/types.ts';
import { PROVISION_STEPS } from '../plan/types.ts';

/** Something forseti saw a machine do, or did to it. */
export type HostEvent =
  | { kind: 'provision-started'; role: string; digest: string; revision: string }
  | { kind: 'step'; step: ProvisionStep }
  | { kind: 'phone-home'; role: string }
  | { kind: 'failed'; message: string; step?: string }
  | { kind: 'powered-off' }
  | { kind: 'rerendered'; digest: string; revision: string };

/**
 * The next observed state of a host after an event. Pure. Steps only move forward within one provisioning,
 * and events that do not fit the current phase leave the state as it is (returned unchanged).
 */
export function applyEvent(state: ObservedHost, event: HostEvent, now: number): ObservedHost {
  switch (event.kind) {
    case 'provision-started': {
      const { lastError: _dropped, step: _step, ...rest } = state;
      return { ...rest, phase: 'Provisioning', step: 'power-cycled', stepSince: now, attemptRole: event.role, attemptDigest: event.digest, attemptRevision: event.revision, since: now };
    }
    case 'step': {
      if (state.phase !== 'Provisioning') return state;
      if (state.step && PROVISION_STEPS.indexOf(event.step) <= PROVISION_STEPS.indexOf(state.step)) return state;
      return { ...state, step: event.step, stepSince: now };
    }
    case 'phone-home': {
      if (state.phase !== 'Provisioning') return state;
      if (event.role !== state.attemptRole) {
        return { ...state, phase: 'Failed', since: now, lastError: { message: `booted role ${event.role}, expected ${state.attemptRole ?? 'none'}`, step: 'phone-home' } };
      }
      const { lastError: _dropped, step: _step, ...rest } = state;
      return withPhase({ ...rest, appliedRole: state.attemptRole, appliedDigest: state.attemptDigest, appliedRevision: state.attemptRevision }, 'Converged', now);
    }
    case 'failed':
      return { ...state, phase: 'Failed', since: now, lastError: event.step ? { message: event.message, step: event.step } : { message: event.message } };
    case 'powered-off': {
      const { lastError: _dropped, step: _step, ...rest } = state;
      return withPhase(rest, 'Off', now);
    }
    case 'rerendered':
      return { ...state, appliedDigest: event.digest, appliedRevision: event.revision };
  }
}

function withPhase(state: ObservedHost, phase: Phase, now: number): ObservedHost {
  return state.phase === phase ? state : { ...state, phase, since: now };
}

export function initialState(now: number): ObservedHost {
  return { phase: 'Pending', since: now };
}
