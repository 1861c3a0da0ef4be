// The commit's Talos bases (`boot.config.talosBase`) decrypted with the agent's age key, at the load step: a base
// that does not decrypt and verify rejects the commit at its file and line before anything is rendered, and the
// secrets of those that do are redaction patterns before anything of the commit can be logged.
import type { LabProblem, Lab } from '../model/types.ts';
import { problem } from '../model/problems.ts';
import type { SecretValue } from '../redact/redactor.ts';
import { talosConfigSecrets, type TalosBase, type TalosBaseResolver } from '../render/talos/index.ts';
import type { Secrets } from '../secrets/secrets.ts';
import { SopsError } from '../secrets/sops.ts';

export interface OpenedTalosBases {
  bases: ReadonlyMap<string, TalosBase>;
  patterns: SecretValue[];
  problems: LabProblem[];
}

export async function openTalosBases(resolver: TalosBaseResolver, lab: Lab, secrets: Secrets): Promise<OpenedTalosBases> {
  const uses = [...lab.profiles.values()].some((p) => p.boot.kind === 'image' && p.boot.config?.talosBase !== undefined);
  if (!uses) return { bases: new Map(), patterns: [], problems: [] };
  let identities: string[];
  try {
    identities = await secrets.ageIdentities();
  } catch (err) {
    if (!(err instanceof SopsError)) throw err;
    identities = [];
  }
  const bases = await resolver.resolve(lab, identities);
  const patterns: SecretValue[] = [];
  const problems: LabProblem[] = [];
  for (const base of bases.values()) {
    if (!base.ok) problems.push(problem(base.ref, 'talos-base', base.message));
    else for (const password of talosConfigSecrets(base.text)) patterns.push({ password });
  }
  return { bases, patterns, problems };
}
