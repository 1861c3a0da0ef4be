import type { Site } from '../model/types.ts';
import { decide } from './decide.ts';
import { gateRollout } from './rollout.ts';
import { FiringCache, inMaintenanceWindow, scheduledPowerSince, selects, type SelectableHost } from './schedules.ts';
import type { Action } from './types.ts';
import type { DesiredHost, ObservedHost } from '../core/host-state.ts';

export interface ReconcileInput {
  desired: DesiredHost;
  observed: ObservedHost;
  labels: Record<string, string>;
}

export interface ReconcileDecision {
  host: string;
  /** The desired state after power schedules applied. */
  desired: DesiredHost;
  action: Action;
}

type ScheduleState = { name: string; selector: Site['schedules'][number]['selector']; power: 'on' | 'off'; since: number };

/**
 * One reconcile pass over the whole lab, pure: power schedules adjust what each host should be, `decide` picks
 * each host's action, and the rollout gate holds back what groups and maintenance windows do not allow yet.
 * `firings`: the owner's cache of cron firings, so each distinct expression is evaluated once per pass.
 */
export function reconcile(site: Site, inputs: ReconcileInput[], now: number, firings = new FiringCache()): ReconcileDecision[] {
  const schedules = site.schedules.flatMap((s): ScheduleState[] => {
    const state = scheduledPowerSince(s, now, firings);
    return state ? [{ name: s.name, selector: s.selector, ...state }] : [];
  });
  const options = { now, provisionTimeoutMs: site.policies.provisionTimeoutSeconds * 1000, stepTimeoutMs: site.policies.stepTimeoutSeconds * 1000 };
  const decided = inputs.map((input) => {
    const host = { name: input.desired.name, role: input.desired.role, labels: input.labels };
    const offBy = schedules.find((s) => s.power === 'off' && selects(s.selector, host));
    const desired: DesiredHost = offBy && input.desired.power === 'on' ? { ...input.desired, power: 'off', keptOffBy: `power schedule ${offBy.name}` } : input.desired;
    const action = offBy ? decide(desired, input.observed, options) : namePowerOn(decide(desired, input.observed, options), input, host, schedules);
    return { host, desired, observed: input.observed, action };
  });
  const gated = gateRollout(site.rollout.groups, decided, inMaintenanceWindow(site.maintenance.windows, now, firings));
  return decided.map((d, i) => ({ host: d.host.name, desired: d.desired, action: gated[i] ?? d.action }));
}

/**
 * A power-on is the schedule's when its `powerOn` fired after the host went off; a host declared off by its role or
 * by `power: off` is not the schedule's doing. (What a schedule turns off names it through `keptOffBy`.)
 */
function namePowerOn(action: Action, input: ReconcileInput, host: SelectableHost, schedules: ScheduleState[]): Action {
  const declared = input.desired;
  if (declared.boot === 'off' || declared.power === 'off') return action;
  if (action.kind !== 'power-on') return action;
  const onBy = schedules.find((s) => s.power === 'on' && s.since > input.observed.since && selects(s.selector, host));
  return onBy ? { ...action, reason: `power schedule ${onBy.name}: ${action.reason}` } : action;
}
