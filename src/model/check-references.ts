// Names that point elsewhere: a host's role names a profile, a profile's boot names an image,
// and the profile's requirements must hold for the hardware the host declares.

import { problem } from './problems.ts';
import type { Host, Image, LabProblem, Profile } from './types.ts';
import type { SourceRef } from '../core/source-ref.ts';

const known = (names: Iterable<string>): string => {
  const list = [...names].sort();
  return list.length ? list.join(', ') : 'none';
};

/** The image a profile boots exists (or is a file that failed on its own). */
export function checkProfileImage(profile: Profile, images: ReadonlyMap<string, Image>, brokenImages: ReadonlySet<string>): LabProblem[] {
  if (profile.boot.kind !== 'image' || images.has(profile.boot.image) || brokenImages.has(profile.boot.image)) return [];
  const ref = profile.refs['boot.image'] ?? profile.refs[''];
  return ref ? [problem(ref, 'unknown-image', `image "${profile.boot.image}" of profile ${profile.name} is not in images/ (known: ${known(images.keys())})`)] : [];
}

/** A host's role is a profile whose requirements its declared hardware meets. */
export function checkHostRole(host: Host, profiles: ReadonlyMap<string, Profile>, brokenProfiles: ReadonlySet<string>): LabProblem[] {
  const ref = host.refs.role ?? host.refs[''];
  if (!ref) return [];
  const profile = profiles.get(host.role);
  if (profile) return unmetRequirements(host, profile, ref);
  if (brokenProfiles.has(host.role)) return [];
  return [problem(ref, 'unknown-profile', `role "${host.role}" of host ${host.name} is not a profile in profiles/ (known: ${known(profiles.keys())})`)];
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
