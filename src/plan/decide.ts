import type { Action, BootAnswer, DesiredHost, ObservedHost } from './types.ts';

export interface DecideOptions {
  now: number;
  /** From the power cycle to the phone-home. */
  provisionTimeoutMs: number;
  /** From one provisioning step to the next. */
  stepTimeoutMs: number;
}

/**
 * The reconcile decision for one host: a pure function of what Git wants and what forseti observed.
 * A failed attempt is not retried for the same digest: a new commit (or a revert) is the way to try again,
 * so a broken role never power-cycles a blade in a loop.
 */
export function decide(desired: DesiredHost, observed: ObservedHost, options: DecideOptions): Action {
  if (desired.boot === 'off' || desired.power === 'off') {
    if (observed.phase === 'Off') return { kind: 'none', reason: 'off as declared' };
    return { kind: 'power-off', reason: desired.boot === 'off' ? `role ${desired.role} keeps the host off` : 'power: off declared' };
  }

  if (observed.phase === 'Provisioning' && observed.attemptDigest === desired.digest) {
    const step = observed.step ?? 'power-cycled';
    if (options.now - observed.since > options.provisionTimeoutMs) {
      return { kind: 'fail', reason: `no phone-home within ${seconds(options.provisionTimeoutMs)} s (last step: ${step})`, step };
    }
    if (options.now - (observed.stepSince ?? observed.since) > options.stepTimeoutMs) {
      return { kind: 'fail', reason: `no progress past step ${step} within ${seconds(options.stepTimeoutMs)} s`, step };
    }
    return { kind: 'wait', reason: `provisioning role ${desired.role} (step ${observed.step ?? 'started'})` };
  }

  if (observed.phase === 'Failed' && observed.attemptDigest === desired.digest) {
    return { kind: 'none', reason: `last attempt failed: ${observed.lastError?.message ?? 'unknown error'}; a new commit retries` };
  }

  if (observed.phase === 'Converged' && observed.appliedRole === desired.role) {
    if (observed.appliedDigest === desired.digest) return { kind: 'none', reason: 'converged' };
    return { kind: 'rerender', reason: `role ${desired.role} unchanged; new artifacts serve at the next boot` };
  }

  const fromRole = observed.appliedRole;
  const reason = fromRole === undefined ? `provision role ${desired.role}` : `reprovision from role ${fromRole} to ${desired.role}`;
  return fromRole === undefined ? { kind: 'provision', reason } : { kind: 'provision', reason, fromRole };
}

/**
 * What a host's iPXE gets when it PXE-boots, whoever powered it on. A converged host whose role installs to disk
 * is sent to its disk, so a PXE-first boot order never reinstalls it.
 */
export function bootAnswer(desired: DesiredHost, observed: ObservedHost): BootAnswer {
  if (desired.boot === 'off' || desired.power === 'off') return 'exit';
  if (desired.boot === 'chain') return 'chain';
  const installed = observed.phase === 'Converged' && observed.appliedRole === desired.role;
  if (installed && desired.afterInstall === 'disk') return 'disk';
  return 'install';
}

function seconds(ms: number): number {
  return Math.round(ms / 1000);
}
