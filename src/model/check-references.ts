// Names that point elsewhere: a host's role names a profile, a profile's boot names an image,
// and the profile's requirements must hold for the hardware the host declares.

import { problem } from './problems.ts';
import type { Host, Image, LabProblem, Profile, SourceRef } from './types.ts';

export interface ReferenceContext {
  hosts: readonly Host[];
  profiles: ReadonlyMap<string, Profile>;
  images: ReadonlyMap<string, Image>;
  /** Names whose file exists but did not load: no "unknown" problem on top of that file's own. */
  brokenProfiles: ReadonlySet<string>;
  brokenImages: ReadonlySet<string>;
}

const known = (names: Iterable<string>): string => {
  const list = [...names].sort();
  return list.length ? list.join(', ') : 'none';
};

export function checkReferences(ctx: ReferenceContext): LabProblem[] {
  const problems: LabProblem[] = [];
  for (const profile of ctx.profiles.values()) {
    if (profile.boot.kind !== 'image' || ctx.images.has(profile.boot.image) || ctx.brokenImages.has(profile.boot.image)) continue;
    const ref = profile.refs['boot.image'] ?? profile.refs[''];
    if (ref) problems.push(problem(ref, 'unknown-image', `image "${profile.boot.image}" of profile ${profile.name} is not in images/ (known: ${known(ctx.images.keys())})`));
  }
  for (const host of ctx.hosts) {
    const ref = host.refs.role ?? host.refs[''];
    if (!ref) continue;
    const profile = ctx.profiles.get(host.role);
    if (profile) problems.push(...unmetRequirements(host, profile, ref));
    else if (!ctx.brokenProfiles.has(host.role)) {
      problems.push(problem(ref, 'unknown-profile', `role "${host.role}" of host ${host.name} is not a profile in profiles/ (known: ${known(ctx.profiles.keys())})`));
    }
  }
  return problems;
}

function unmetRequirements(host: Host, profile: Profile, ref: SourceRef): LabProblem[] {
  const problems: LabProblem[] = [];
  const req = profile.requires;
  const hw = host.hardware;
  const atLeast = (field: string, needed: number | undefined, declared: number | undefined): void => {
    if (needed === undefined || (declared !== undefined && declared >= needed)) return;
    const has = declared === undefined ? `declares no hardware.${field}` : `declares ${declared}`;
    problems.push(problem(ref, 'unmet-requirement', `role ${profile.name} needs ${field} >= ${needed} but host ${host.name} ${has}`));
  };
  atLeast('memoryGiB', req.memoryGiB, hw.memoryGiB);
  atLeast('cpus', req.cpus, hw.cpus);
  atLeast('disks', req.disks, hw.disks.length);
  if (req.firmware && !req.firmware.includes(hw.firmware)) {
    problems.push(problem(ref, 'unmet-requirement', `role ${profile.name} needs firmware ${req.firmware.join(' or ')} but host ${host.name} declares ${hw.firmware}`));
  }
  return problems;
}
