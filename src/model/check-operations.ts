// The site's operational settings name roles, hosts and times: wipes, rollout groups, power schedules and
// maintenance windows. Each name must exist and each cron expression must parse.

import { cronProblem } from '../core/cron.ts';
import { problem } from './problems.ts';
import type { Host, HostSelector, LabProblem, Profile, Site } from './types.ts';
import type { SourceRef } from '../core/source-ref.ts';

/** The hosts as the operational checks see them: which ask for a wipe, and whether a name is declared. */
export interface OperationHosts {
  wiping: readonly Host[];
  has: (name: string) => boolean;
}

export function checkOperations(site: Site, hosts: readonly Host[] | OperationHosts, profiles: ReadonlyMap<string, Profile>, brokenProfiles: ReadonlySet<string>): LabProblem[] {
  const problems: LabProblem[] = [];
  const at = (path: string): SourceRef => site.refs[path] ?? site.refs[''] ?? { file: 'site.yaml', line: 1, col: 1 };
  const { wiping, has } = 'wiping' in hosts ? hosts : operationHosts(hosts);

  const wipeProfile = profiles.get(site.wipe.profile);
  if (wiping.length > 0 && !wipeProfile && !brokenProfiles.has(site.wipe.profile)) {
    for (const host of wiping) {
      problems.push(problem(host.refs['wipe'] ?? host.refs[''] ?? at(''), 'unknown-profile', `host ${host.name} asks for a wipe, but the wipe role "${site.wipe.profile}" (site.yaml wipe.profile) is not a profile in profiles/`));
    }
  } else if (wiping.length > 0 && wipeProfile && wipeProfile.boot.kind !== 'image') {
    problems.push(problem(at('wipe.profile'), 'unknown-profile', `wipe role "${site.wipe.profile}" must boot an image, not ${wipeProfile.boot.kind}`));
  }

  const checkSelector = (selector: HostSelector, path: string): void => {
    selector.roles?.forEach((role, i) => {
      if (!profiles.has(role) && !brokenProfiles.has(role)) problems.push(problem(at(`${path}.roles.${i}`), 'unknown-profile', `${path} selects role "${role}", which is not a profile in profiles/`));
    });
    selector.hosts?.forEach((name, i) => {
      if (!has(name)) problems.push(problem(at(`${path}.hosts.${i}`), 'unknown-host', `${path} selects host "${name}", which is not in hosts/`));
    });
  };
  const checkCron = (expression: string, path: string): void => {
    const error = cronProblem(expression);
    if (error) problems.push(problem(at(path), 'invalid-cron', error));
  };

  site.rollout.groups.forEach((g, i) => checkSelector(g.selector, `rollout.groups.${i}.selector`));
  site.schedules.forEach((s, i) => {
    checkSelector(s.selector, `schedules.${i}.selector`);
    checkCron(s.powerOff, `schedules.${i}.powerOff`);
    checkCron(s.powerOn, `schedules.${i}.powerOn`);
  });
  site.maintenance.windows.forEach((w, i) => checkCron(w.cron, `maintenance.windows.${i}.cron`));
  return problems;
}

function operationHosts(hosts: readonly Host[]): OperationHosts {
  const names = new Set(hosts.map((h) => h.name));
  return { wiping: hosts.filter((h) => h.wipe !== undefined), has: (name) => names.has(name) };
}
