import type { Action, BootAnswer } from './types.ts';
import type { DesiredHost, ObservedHost, ObservedInventory } from '../core/host-state.ts';

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
    if (observed.phase === 'Off') return { kind: 'none', reason: offNote(desired, 'off as declared') };
    if (desired.capabilities?.powerOff === false) return powerOffByHand(desired, offWhy(desired));
    if (observed.phase === 'Failed' && observed.lastError?.step === 'power-off' && observed.attemptDigest === desired.digest) {
      return { kind: 'none', reason: offNote(desired, `power off failed: ${observed.lastError.message}; a new commit retries`) };
    }
    return { kind: 'power-off', reason: offWhy(desired) };
  }

  const enrolment = enrolmentAction(desired, observed, options.now);
  if (enrolment) return enrolment;

  const shortfall = observed.inventory ? unmetRequirement(desired, observed.inventory) : null;

  const inProgress = observed.phase === 'Provisioning' || observed.phase === 'Wiping';
  const sameAttempt = observed.phase === 'Wiping' ? observed.attemptWipeToken === desired.wipeToken : observed.attemptDigest === desired.digest;
  if (inProgress && sameAttempt) return timeoutOrWait(desired, observed, options);

  if (observed.phase === 'Failed' && observed.attemptDigest === desired.digest && observed.attemptWipeToken === desired.wipeToken) {
    return { kind: 'none', reason: `last attempt failed: ${observed.lastError?.message ?? 'unknown error'}; a new commit retries` };
  }

  if (shortfall) return { kind: 'refuse', reason: shortfall };

  if (desired.wipeToken !== undefined && desired.wipeToken !== observed.wipedToken) {
    return { kind: 'wipe', reason: `wipe requested (token ${desired.wipeToken})` };
  }

  if (observed.phase === 'Off' && observed.appliedRole === desired.role && observed.appliedDigest === desired.digest && desired.afterInstall === 'disk') {
    return { kind: 'power-on', reason: `role ${desired.role} is installed; power on from disk` };
  }

  if (observed.phase === 'Converged' && observed.appliedRole === desired.role) {
    const disk = bootBackToDisk(desired, observed, options.now);
    if (disk) return disk;
    if (observed.appliedDigest === desired.digest) return { kind: 'none', reason: 'converged' };
    return { kind: 'rerender', reason: `role ${desired.role} unchanged; new artifacts serve at the next boot` };
  }

  const fromRole = observed.appliedRole;
  const what = fromRole === undefined ? `provision role ${desired.role}` : `reprovision from role ${fromRole} to ${desired.role}`;
  const reason = observed.bmc?.bootOnce === false ? `${what}; ${NO_ONCE}: PXE for every boot until it is installed, then the disk` : what;
  return fromRole === undefined ? { kind: 'provision', reason } : { kind: 'provision', reason, fromRole };
}

/** How plans and logs say that a host's BMC keeps no one-time boot override (ObservedBmc.bootOnce false). */
export const NO_ONCE = 'its BMC keeps no one-time boot override';

/**
 * An installed host whose BMC was left at PXE for every boot (it keeps no one-time override) gets its boot set to the
 * disk; the iPXE "boot from disk" answer guards it meanwhile. A failed write waits for its retry time.
 */
function bootBackToDisk(desired: DesiredHost, observed: ObservedHost, now: number): Action | null {
  if (observed.bmc?.holds !== 'pxe' || desired.afterInstall !== 'disk' || desired.boot !== 'image') return null;
  if (observed.bmc.retryAt !== undefined && now < observed.bmc.retryAt) {
    return { kind: 'wait', reason: `setting the boot back to the disk failed; retrying in ${Math.ceil((observed.bmc.retryAt - now) / 1000)} s` };
  }
  return { kind: 'boot-disk', reason: `${NO_ONCE} and holds PXE for every boot: set it to the disk now that role ${desired.role} is installed` };
}

/**
 * Why a host is kept off: its role (boot off), what turned its power off (a power schedule, src/plan/reconcile.ts),
 * or its own `power: off`.
 */
function offWhy(desired: DesiredHost): string {
  if (desired.boot === 'off') return `role ${desired.role} keeps the host off`;
  return desired.keptOffBy ?? 'power: off declared';
}

/**
 * A reason that does not say on its own why the host is off, naming what turned its power off when that was not its
 * role or its own declaration. Plain functions, not closures: a pass decides for every host (10,000 of them).
 */
function offNote(desired: DesiredHost, reason: string): string {
  const by = desired.boot === 'off' ? undefined : desired.keptOffBy;
  return by === undefined ? reason : `${by}: ${reason}`;
}

/** A host whose driver cannot power it off: a human does, once; no failure and no retry loop. */
function powerOffByHand(desired: DesiredHost, why: string): Action {
  if (desired.capabilities?.operator) {
    return { kind: 'power-off-by-hand', by: 'operator', reason: `${why}; the operator is asked to power ${desired.name} off` };
  }
  return { kind: 'power-off-by-hand', by: 'os', reason: `${why}; ${desired.name} cannot be powered off remotely (Wake-on-LAN): shut it down from its OS or by hand` };
}

/** New hosts are enrolled first: the BMC must answer and its inventory is checked against the role. */
function enrolmentAction(desired: DesiredHost, observed: ObservedHost, now: number): Action | null {
  if (desired.enrollable === false || observed.inventory) return null;
  if (observed.phase !== 'Pending' && observed.phase !== 'Enrolling') return null;
  if (observed.retryAt !== undefined && now < observed.retryAt) {
    return { kind: 'wait', reason: `BMC unreachable (${observed.lastError?.message ?? 'no answer'}); retrying in ${Math.ceil((observed.retryAt - now) / 1000)} s` };
  }
  return { kind: 'enroll', reason: 'read the BMC and its inventory' };
}

function timeoutOrWait(desired: DesiredHost, observed: ObservedHost, options: DecideOptions): Action {
  // A converge signal's step (a Talos boot stage, an installer step) is where the host is, once one was reported.
  const signalStep = observed.convergeSteps?.at(-1);
  const step = signalStep?.name ?? observed.step ?? 'requested';
  const waitingOn = signalStep?.detail !== undefined ? `; waiting on ${signalStep.detail}` : '';
  const wiping = observed.phase === 'Wiping';
  // A wipe runs the site's wipe role: its declared timeouts, not those of the role to be installed after it.
  const timeouts = wiping ? desired.wipeTimeouts : desired.convergeTimeouts;
  const provisionTimeoutMs = timeouts?.provisionMs ?? options.provisionTimeoutMs;
  const stepTimeoutMs = timeouts?.stepMs ?? options.stepTimeoutMs;
  if (options.now - observed.since > provisionTimeoutMs) {
    const awaited = signalStep ? 'not Converged' : 'no phone-home';
    return { kind: 'fail', reason: `${awaited} within ${seconds(provisionTimeoutMs)} s (last step: ${step}${waitingOn})`, step };
  }
  if (options.now - (observed.stepSince ?? observed.since) > stepTimeoutMs) {
    return { kind: 'fail', reason: `no progress past step ${step} within ${seconds(stepTimeoutMs)} s${waitingOn}`, step };
  }
  return { kind: 'wait', reason: `${wiping ? 'wiping' : `provisioning role ${desired.role}`} (step ${step}${waitingOn})` };
}

/** The first requirement of the role that the BMC's inventory contradicts, naming both facts. */
export function unmetRequirement(desired: DesiredHost, inventory: ObservedInventory): string | null {
  const req = desired.requires ?? {};
  const checks: Array<[keyof ObservedInventory & keyof NonNullable<DesiredHost['requires']>, string]> = [
    ['memoryGiB', 'memoryGiB'],
    ['cpus', 'cpus'],
    ['disks', 'disks'],
  ];
  for (const [key, label] of checks) {
    const need = req[key];
    const have = inventory[key];
    if (need !== undefined && typeof have === 'number' && have < need) {
      return `role ${desired.role} needs ${label} >= ${need} but the BMC of ${desired.name} reports ${have}`;
    }
  }
  return null;
}

/**
 * What a host's iPXE gets when it PXE-boots, whoever powered it on. A converged host whose role installs to disk
 * is sent to its disk, so a PXE-first boot order never reinstalls it.
 */
export function bootAnswer(desired: DesiredHost, observed: ObservedHost): BootAnswer {
  if (desired.boot === 'off' || desired.power === 'off') return 'exit';
  if (observed.phase === 'Wiping') return 'wipe';
  if (desired.boot === 'chain') return 'chain';
  const installed = observed.phase === 'Converged' && observed.appliedRole === desired.role;
  if (installed && desired.afterInstall === 'disk') return 'disk';
  // The attempt under way wrote the disk (a Talos install that rebooted, an installer that finished): booting the
  // installer again would install again, and Talos must never PXE-install twice.
  const installedNow = observed.phase === 'Provisioning' && observed.attemptInstalledAt !== undefined && observed.attemptRole === desired.role;
  if (installedNow && desired.afterInstall === 'disk') return 'disk';
  return 'install';
}

function seconds(ms: number): number {
  return Math.round(ms / 1000);
}
