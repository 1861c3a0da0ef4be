import type { Site } from '../model/types.ts';
import { decide } from './decide.ts';
import { gateRollout } from './rollout.ts';
import { inMaintenanceWindow, scheduledPower, selects } from './schedules.ts';
import type { Action, DesiredHost, ObservedHost } from './types.ts';

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

/**
 * One reconcile pass over the whole lab, pure: power schedules adjust what each host should be, `decide` picks
 * each host's action, and the rollout gate holds back what groups and maintenance windows do not allow yet.
 */
export function reconcile(site: Site, inputs: ReconcileInput[], now: number): ReconcileDecision[] {
  const scheduleState = site.schedules.map((s) => ({ schedule: s, power: scheduledPower(s, now) }));
  const options = { now, provisionTimeoutMs: site.policies.provisionTimeoutSeconds * 1000, stepTimeoutMs: site.policies.stepTimeoutSeconds * 1000 };
  const decided = inputs.map((input) => {
    const host = { name: input.desired.name, role: input.desired.role, labels: input.labels };
    const offBy = scheduleState.find((s) => s.power === 'off' && selects(s.schedule.selector, host));
    const desired: DesiredHost = offBy && input.desired.power === 'on' ? { ...input.desired, power: 'off' } : input.desired;
    let action = decide(desired, input.observed, options);
    if (offBy && action.kind === 'power-off') action = { kind: 'power-off', reason: `power schedule ${offBy.schedule.name}` };
    return { host, desired, observed: input.observed, action };
  });
  const gated = gateRollout(site.rollout.groups, decided, inMaintenanceWindow(site.maintenance.windows, now));
  return decided.map((d, i) => ({ host: d.host.name, desired: d.desired, action: gated[i] ?? d.action }));
}
