import { describeConverge } from '../converge/converge-spec.ts';
import type { RenderedHost } from '../render/host.ts';
import { artifactDiffs } from './artifact-diff.ts';
import { decide, NO_ONCE } from './decide.ts';
import { short } from './observed-state.ts';
import { CHANGE_KINDS, type BaseSide, type HostChangeKind, type HostPlan, type ObservedState, type Plan, type PlanSide } from './plan-types.ts';
import type { Action } from './types.ts';
import type { ObservedHost } from '../core/host-state.ts';

/**
 * What merging HEAD would do to every host of BASE and HEAD, given what is observed. Pure: the agent's own
 * `decide` makes each decision against HEAD's rendering; tokens are placeholders. Throws RenderFailedError
 * when HEAD cannot be rendered (the agent would reject that commit).
 */
export function planChanges(base: BaseSide, head: PlanSide, observed: ObservedState): Plan {
  const headHosts = head.hosts;
  const baseHosts: ReadonlyMap<string, RenderedHost> = base.lab ? base.hosts : new Map();
  const names = [...new Set([...baseHosts.keys(), ...headHosts.keys()])].sort();
  const { policies } = head.lab.site;
  const options = { now: observed.at, provisionTimeoutMs: policies.provisionTimeoutSeconds * 1000, stepTimeoutMs: policies.stepTimeoutSeconds * 1000 };

  const hosts = names.map((name): HostPlan => {
    const before = baseHosts.get(name);
    const after = headHosts.get(name);
    // A removed host is given nothing any more; a diff of everything it had would only be noise.
    const diffs = after ? artifactDiffs(name, before, after) : [];
    const baseRole = before?.desired.role ?? null;
    const seen = observed.hosts.get(name);
    if (!after) {
      const running = seen?.appliedRole ?? baseRole;
      const still = running && seen?.phase !== 'Off' ? `it keeps running role ${running}` : 'its power is left as it is';
      return { host: name, change: 'removed', baseRole, headRole: null, details: `no longer declared: forseti forgets it, no power action (${still})`, diffs };
    }
    const state: ObservedHost = seen ?? { phase: 'Pending', since: observed.at };
    const action = decide(after.desired, state, options);
    const described = describe(action, after.desired.role, before === undefined && base.lab !== null);
    // What the status branch recorded of the BMC is said with every plan of the host, not only with a provisioning.
    const details = state.bmc?.bootOnce === false && !described.details.includes(NO_ONCE) ? `${described.details} (${NO_ONCE})` : described.details;
    return { host: name, change: described.change, baseRole, headRole: after.desired.role, details, diffs };
  });

  const summary = Object.fromEntries(CHANGE_KINDS.map((k) => [k, 0])) as Record<HostChangeKind, number>;
  for (const h of hosts) summary[h.change]++;
  const notes = [...observed.notes];
  const { rollout, maintenance } = head.lab.site;
  if (rollout.groups.length > 0 || maintenance.windows.length > 0) {
    notes.push('rollout groups and maintenance windows decide when provisioning and wipes start: this plan says what happens, not when');
  }
  if (!base.lab) notes.unshift(`BASE ${short(base.revision)} is invalid (${base.problems?.length ?? 0} problems): artifacts are diffed against nothing`);
  return {
    base: base.lab ? { revision: base.revision, valid: true } : { revision: base.revision, valid: false, problems: base.problems ?? [] },
    head: { revision: head.revision },
    observed: { source: observed.source, description: observed.description },
    notes,
    hosts,
    converge: convergeByRole(head),
    summary,
    changed: hosts.some((h) => h.change !== 'none'),
  };
}

/** The roles HEAD's hosts boot (not `off`), each with its converge declaration in words. */
function convergeByRole(head: PlanSide): Plan['converge'] {
  const roles = [...new Set([...head.lab.hosts.values()].map((h) => h.role))].sort();
  return roles.flatMap((role) => {
    const profile = head.lab.profiles.get(role);
    return profile && profile.boot.kind !== 'off' ? [{ role, signals: describeConverge(profile.converge) }] : [];
  });
}

function describe(action: Action, role: string, isNew: boolean): { change: HostChangeKind; details: string } {
  const fresh = (text: string): string => (isNew ? `new host: ${text}` : text);
  switch (action.kind) {
    case 'none':
      return { change: 'none', details: action.reason };
    case 'wait':
      return { change: 'none', details: `${action.reason}; HEAD does not change it` };
    case 'fail':
      return { change: 'none', details: `the provisioning under way fails: ${action.reason}; HEAD does not change it` };
    case 'rerender':
      return { change: 'rerender', details: action.reason };
    case 'power-off':
      return { change: 'power-off', details: action.reason };
    case 'power-on':
      return { change: 'power-on', details: action.reason };
    case 'power-off-by-hand':
      return { change: 'power-off-by-hand', details: action.reason };
    case 'provision':
      if (action.fromRole !== undefined) return { change: 'reprovision', details: action.reason };
      return { change: 'provision', details: fresh(action.reason) };
    case 'enroll':
      return { change: 'provision', details: fresh(`enrol (${action.reason}), then provision role ${role}`) };
    case 'wipe':
      return { change: 'wipe', details: `${action.reason}, then provision role ${role}` };
    case 'refuse':
      return { change: 'refused', details: action.reason };
    case 'boot-override':
      // Only drift healing sets an override alone; decide never plans it for a commit.
      return { change: 'none', details: action.reason };
    case 'boot-disk':
      // No change of the host: its BMC's PXE-for-every-boot override is set back to the disk, as after any install.
      return { change: 'none', details: action.reason };
    default:
      return unreachable(action);
  }
}

function unreachable(action: never): never {
  throw new Error(`unknown action ${JSON.stringify(action)}`);
}
