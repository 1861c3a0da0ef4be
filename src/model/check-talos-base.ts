// `boot.config.talosBase`: a role's Talos machine config (`talosctl gen config --with-secrets`), committed
// SOPS-encrypted for the agent's age key. What can be told without the key is told here, at the file's line: it
// exists, it is one YAML document, it is a SOPS file for age recipients, and it is the v1alpha1 document (keys stay
// plain in a SOPS file, only values are encrypted). Whether it decrypts, and whether the result is a config a node
// accepts, the agent finds when it renders (src/render/talos/base.ts), and rejects the commit there.
import { checkSopsRegexes } from './check-sops.ts';
import { namedFileProblem, refOf } from './documents.ts';
import type { FileRead } from './lab-tree.ts';
import { problem } from './problems.ts';
import type { LabProblem, Profile } from './types.ts';
import { YamlFile, type YamlLimits } from './yaml-source.ts';

/** Each base file named by a profile, with the first profile naming it (where a missing file is reported). */
export function talosBaseFiles(profiles: readonly Profile[]): Map<string, Profile> {
  const out = new Map<string, Profile>();
  for (const p of profiles) {
    const base = p.boot.kind === 'image' ? p.boot.config?.talosBase : undefined;
    if (base !== undefined && !out.has(base.file)) out.set(base.file, p);
  }
  return out;
}

/** The v1alpha1 document's top-level fields (talos.dev/v1.10/reference/configuration/v1alpha1/config: Config). */
const MAIN_FIELDS: ReadonlySet<string> = new Set(['version', 'debug', 'persist', 'machine', 'cluster']);

export function checkTalosBase(profile: Profile, file: string, read: FileRead | undefined, limits: YamlLimits): LabProblem[] {
  const ref = refOf(profile.refs, 'boot.config.talosBase');
  if (read?.refusal) return [namedFileProblem(ref, 'boot.config.talosBase', file, read.refusal)];
  if (read?.text === undefined) {
    return [problem(ref, 'missing-file', `boot.config.talosBase "${file}" does not exist in the lab repository: run talosctl gen config --with-secrets, encrypt the role's file with sops for the agent's age key and commit it as ${file}`)];
  }
  const parsed = YamlFile.parse(file, read.text, { limits });
  if (!parsed.yaml) {
    // A multi-document base (Talos 1.5+ configs may have more documents than v1alpha1): forseti decrypts one document.
    return parsed.problems.map((p) => (/multiple documents/.test(p.message) ? { ...p, message: 'a Talos base is one document, the v1alpha1 one: move the other documents (not secret) into the profile\'s config, which is merged over the base' } : p));
  }
  const yaml = parsed.yaml;
  const top = { file, line: 1, col: 1 };
  const value = yaml.value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [problem(top, 'schema', 'a Talos base must be the v1alpha1 document (a mapping), SOPS-encrypted')];
  const doc = value as Record<string, unknown>;
  const sops = doc['sops'];
  if (sops === null || typeof sops !== 'object' || Array.isArray(sops)) {
    return [problem(top, 'plaintext-secret', `${file} is not SOPS-encrypted (no sops metadata): it holds the cluster's PKI and join tokens; encrypt it with sops --encrypt --age <the agent's recipient> before committing it`)];
  }
  const problems: LabProblem[] = [];
  const age = (sops as Record<string, unknown>)['age'];
  if (!Array.isArray(age) || age.length === 0) problems.push(problem(yaml.refOf(['sops']), 'schema', 'sops.age: the base must be encrypted for the agent\'s age key (forseti decrypts age recipients only)'));
  problems.push(...checkSopsRegexes(yaml));
  if (doc['version'] === undefined) problems.push(problem(top, 'schema', 'the Talos base has no version field: it must be the v1alpha1 document talosctl gen config writes (version: v1alpha1, machine, cluster)'));
  for (const key of Object.keys(doc)) {
    if (key !== 'sops' && !MAIN_FIELDS.has(key)) problems.push(problem(yaml.refOf([key], 'key'), 'schema', `"${key}" is not a field of the Talos v1alpha1 document (version, debug, persist, machine, cluster); other documents go into the profile's config, which is merged over the base`));
  }
  return problems;
}
