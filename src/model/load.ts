import { checkSiteSections } from './check-site-sections.ts';
// Loads a lab repository working tree: parse every document, check it against its JSON Schema,
// build the model, then run the checks that span files. Reports every problem, never just the first.

import { checkOperations } from './check-operations.ts';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildHost, buildImage, buildProfile, buildSite } from './build.ts';
import { checkNetwork } from './check-network.ts';
import { checkReferences } from './check-references.ts';
import { checkTextSecrets, checkYamlSecrets } from './check-secrets.ts';
import { checkProfileTemplates } from './check-templates.ts';
import { LabInvalidError } from './errors.ts';
import { compareProblems, formatRef, problem } from './problems.ts';
import { schemaProblems } from './schema-problems.ts';
import { validatorFor, type DocumentKind } from './schemas.ts';
import type { FieldRefs, Host, Image, Lab, LabProblem, Profile, Site } from './types.ts';
import { YamlFile } from './yaml-source.ts';

export { formatProblem } from './problems.ts';

const SITE_FILE = 'site.yaml';
const KIND_DIRS = [
  { dir: 'hosts', kind: 'Host', noun: 'host' },
  { dir: 'profiles', kind: 'Profile', noun: 'profile' },
  { dir: 'images', kind: 'Image', noun: 'image' },
] as const;
const YAML_FILE = /\.ya?ml$/;

interface LoadedDocument {
  yaml: YamlFile;
  /** False when the document failed its schema: it takes no part in cross-file checks. */
  valid: boolean;
}

/** Reads files relative to the lab root, remembering read failures as problems. */
class LabReader {
  readonly problems: LabProblem[] = [];

  constructor(readonly dir: string) {}

  text(file: string): string | undefined {
    try {
      return readFileSync(join(this.dir, file), 'utf8');
    } catch (e) {
      if (!isNotFound(e)) this.problems.push(problem({ file, line: 1, col: 1 }, 'read-error', `cannot read: ${errorMessage(e)}`));
      return undefined;
    }
  }

  yamlFilesIn(dir: string): string[] {
    try {
      return readdirSync(join(this.dir, dir), { withFileTypes: true })
        .filter((entry) => entry.isFile() && YAML_FILE.test(entry.name))
        .map((entry) => `${dir}/${entry.name}`)
        .sort();
    } catch (e) {
      if (!isNotFound(e)) this.problems.push(problem({ file: dir, line: 1, col: 1 }, 'read-error', `cannot list: ${errorMessage(e)}`));
      return [];
    }
  }
}

export async function loadLab(dir: string): Promise<{ lab: Lab | null; problems: LabProblem[] }> {
  const reader = new LabReader(dir);
  const problems: LabProblem[] = [];
  const load = (file: string, kind: DocumentKind): LoadedDocument | undefined => {
    const text = reader.text(file);
    if (text === undefined) return undefined;
    const loaded = loadDocument(file, text, kind);
    problems.push(...loaded.problems);
    return loaded.document;
  };

  let site: Site | undefined;
  const siteText = reader.text(SITE_FILE);
  if (siteText === undefined) {
    problems.push(problem({ file: SITE_FILE, line: 1, col: 1 }, 'missing-site', `the lab repository has no ${SITE_FILE} (expected at ${join(dir, SITE_FILE)})`));
  } else {
    const loaded = loadDocument(SITE_FILE, siteText, 'Site');
    problems.push(...loaded.problems);
    if (loaded.document?.valid) {
      site = buildSite(loaded.document.yaml.value, loaded.document.yaml.refs);
      problems.push(...checkSiteSections(loaded.document.yaml.value, loaded.document.yaml.refs));
    }
  }

  const documents = { Host: [] as LoadedDocument[], Profile: [] as LoadedDocument[], Image: [] as LoadedDocument[] };
  const broken = { Host: new Set<string>(), Profile: new Set<string>(), Image: new Set<string>() };
  for (const { dir: kindDir, kind } of KIND_DIRS) {
    for (const file of reader.yamlFilesIn(kindDir)) {
      const document = load(file, kind);
      if (document?.valid) documents[kind].push(document);
      else broken[kind].add(stem(file));
    }
  }

  const configFiles = new Map<string, string | undefined>();
  const readConfigFile = (path: string): string | undefined => {
    if (!configFiles.has(path)) configFiles.set(path, reader.text(path));
    return configFiles.get(path);
  };

  const hosts = documents.Host.map((d) => buildHost(d.yaml.value, d.yaml.refs));
  const loadedProfiles = documents.Profile.map((d) => ({ yaml: d.yaml, profile: buildProfile(d.yaml.value, d.yaml.refs, readConfigFile) }));
  const images = documents.Image.map((d) => buildImage(d.yaml.value, d.yaml.refs));

  for (const { profile, yaml } of loadedProfiles) {
    const config = profile.boot.kind === 'image' ? profile.boot.config : undefined;
    if (config?.file !== undefined && configFiles.get(config.file) === undefined) {
      problems.push(problem(ref(profile.refs, 'boot.config.file'), 'missing-file', `boot.config.file "${config.file}" does not exist in the lab repository`));
      continue;
    }
    problems.push(...checkProfileTemplates(profile, yaml));
  }
  for (const [file, text] of configFiles) if (text !== undefined) problems.push(...checkTextSecrets(file, text));

  const hostMap = uniqueByName('host', hosts, problems);
  const profileMap = uniqueByName('profile', loadedProfiles.map((p) => p.profile), problems);
  const imageMap = uniqueByName('image', images, problems);
  problems.push(...checkNetwork(site, hosts));
  problems.push(...checkReferences({ hosts, profiles: profileMap, images: imageMap, brokenProfiles: broken.Profile, brokenImages: broken.Image }));
  if (site) problems.push(...checkOperations(site, hosts, profileMap, broken.Profile));
  problems.push(...reader.problems);

  problems.sort(compareProblems);
  if (problems.length > 0 || !site) return { lab: null, problems };
  return { lab: { site, hosts: hostMap, profiles: profileMap, images: imageMap }, problems };
}

/** Like `loadLab`, but throws LabInvalidError listing every problem. */
export async function loadLabOrThrow(dir: string): Promise<Lab> {
  const { lab, problems } = await loadLab(dir);
  if (!lab) throw new LabInvalidError(dir, problems);
  return lab;
}

/** Parse, secret scan, schema check and file-name check of one document. */
function loadDocument(file: string, text: string, kind: DocumentKind): { document?: LoadedDocument; problems: LabProblem[] } {
  const parsed = YamlFile.parse(file, text);
  const yaml = parsed.yaml;
  if (!yaml) return { problems: parsed.problems };
  const problems = checkYamlSecrets(yaml);
  const validate = validatorFor(kind);
  const valid = validate(yaml.value);
  if (!valid) problems.push(...schemaProblems(yaml, validate.errors ?? []));
  const name = (yaml.value as { name?: unknown } | null)?.name;
  if (kind !== 'Site' && typeof name === 'string' && name !== stem(file)) {
    problems.push(problem(ref(yaml.refs, 'name'), 'name-mismatch', `name "${name}" must equal the file name without extension ("${stem(file)}")`));
  }
  return { document: { yaml, valid }, problems };
}

function uniqueByName<T extends Host | Profile | Image>(noun: string, entities: readonly T[], problems: LabProblem[]): Map<string, T> {
  const byName = new Map<string, T>();
  for (const entity of entities) {
    const first = byName.get(entity.name);
    if (first) problems.push(problem(ref(entity.refs, 'name'), 'duplicate-name', `${noun} "${entity.name}" is already declared at ${formatRef(ref(first.refs, 'name'))}`));
    else byName.set(entity.name, entity);
  }
  return byName;
}

function ref(refs: FieldRefs, path: string): FieldRefs[string] {
  return refs[path] ?? refs[''] ?? { file: '?', line: 1, col: 1 };
}

function stem(file: string): string {
  return (file.split('/').pop() ?? file).replace(YAML_FILE, '');
}

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
