// The files a lab repository is made of, by name: what the loader reads and what the agent looks for.

export const SITE_FILE = 'site.yaml';
/** The SOPS-encrypted credentials the agent looks for at the root of the lab repository. */
export const SOPS_FILE = 'secrets.sops.yaml';
export type EntityKind = 'Host' | 'Profile' | 'Image';
export const KIND_DIRS: ReadonlyArray<{ dir: string; kind: EntityKind; noun: string }> = [
  { dir: 'hosts', kind: 'Host', noun: 'host' },
  { dir: 'profiles', kind: 'Profile', noun: 'profile' },
  { dir: 'images', kind: 'Image', noun: 'image' },
];
export const YAML_FILE = /\.ya?ml$/;
