import type { HostChangeKind, HostPlan, Plan } from './plan-types.ts';
import { CHANGE_KINDS } from './plan-types.ts';
import { short } from './observed-state.ts';

export const CHANGE_LABELS: Record<HostChangeKind, string> = {
  none: 'nothing',
  rerender: 're-render',
  provision: 'provision',
  reprovision: 'reprovision',
  wipe: 'wipe',
  'power-on': 'power on',
  'power-off': 'power off',
  'power-off-by-hand': 'power off by hand',
  refused: 'refused',
  removed: 'removed',
};

/** Hosts worth a line: something happens to them, or what they are served changes. */
export function listedHosts(plan: Plan): HostPlan[] {
  return plan.hosts.filter((h) => h.change !== 'none' || h.diffs.length > 0);
}

/** `worker`, `worker → compute`, `- → worker` (new), `worker → -` (removed). */
export function roleTransition(h: HostPlan): string {
  if (h.baseRole === h.headRole) return h.baseRole ?? '-';
  return `${h.baseRole ?? '-'} → ${h.headRole ?? '-'}`;
}

/** `3 hosts: 1 reprovision, 1 power off, 1 nothing` */
export function summaryLine(plan: Plan): string {
  const n = plan.hosts.length;
  const parts = CHANGE_KINDS.filter((k) => plan.summary[k] > 0).map((k) => `${plan.summary[k]} ${CHANGE_LABELS[k]}`);
  return `${n} host${n === 1 ? '' : 's'}${parts.length > 0 ? `: ${parts.join(', ')}` : ''}`;
}

export function revisionsLine(plan: Plan): string {
  return `BASE ${short(plan.base.revision)}${plan.base.valid ? '' : ' (invalid)'} → HEAD ${short(plan.head.revision)}`;
}

export function secretNote(host: string, file: string): string {
  return `${file} is marked secret: the agent serves it only to ${host}; its template in Git holds no secret`;
}
