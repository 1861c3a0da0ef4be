import { selects, type HostSelector, type SelectableHost } from './schedules.ts';
import { DISRUPTIVE, type Action } from './types.ts';
import { type ObservedHost } from '../core/host-state.ts';

export interface RolloutGroup {
  name: string;
  selector: HostSelector;
  /** Hosts of the group that may be provisioning or wiping at once. */
  maxUnavailable: number;
}

export interface RolloutInput {
  host: SelectableHost;
  observed: ObservedHost;
  action: Action;
}

/**
 * Holds back disruptive actions (provision, wipe) so that no group has more than `maxUnavailable` hosts out of
 * service at once, and a group starts only when every group listed before it has nothing left to do.
 * A host belongs to the first group that selects it; hosts in no group are not limited. Pure.
 */
export function gateRollout(groups: RolloutGroup[], inputs: RolloutInput[], windowOpen: boolean): Action[] {
  // A lab without groups (and with its window open) holds nothing back: no pass over its hosts for the groups.
  if (groups.length === 0 && windowOpen) return inputs.map((input) => input.action);
  const groupOf = inputs.map((i) => groups.findIndex((g) => selects(g.selector, i.host)));
  const busy = groups.map(() => 0);
  const pending = groups.map(() => 0);
  inputs.forEach((input, i) => {
    const g = groupOf[i] ?? -1;
    if (g < 0) return;
    const out = isOutOfService(input.observed);
    if (out) busy[g] = (busy[g] ?? 0) + 1;
    if (out || DISRUPTIVE.has(input.action.kind)) pending[g] = (pending[g] ?? 0) + 1;
  });
  return inputs.map((input, i) => {
    const action = input.action;
    if (!DISRUPTIVE.has(action.kind)) return action;
    if (!windowOpen) return { kind: 'wait', reason: `${action.reason}: waiting for a maintenance window` };
    const g = groupOf[i] ?? -1;
    if (g < 0) return action;
    const group = groups[g] as RolloutGroup;
    const earlier = pending.slice(0, g).findIndex((n) => n > 0);
    if (earlier >= 0) return { kind: 'wait', reason: `${action.reason}: group ${group.name} waits for group ${groups[earlier]?.name ?? earlier}` };
    if ((busy[g] ?? 0) >= group.maxUnavailable) {
      return { kind: 'wait', reason: `${action.reason}: group ${group.name} has ${busy[g]} of ${group.maxUnavailable} hosts out of service` };
    }
    busy[g] = (busy[g] ?? 0) + 1;
    return action;
  });
}

function isOutOfService(observed: ObservedHost): boolean {
  return observed.phase === 'Provisioning' || observed.phase === 'Wiping';
}
