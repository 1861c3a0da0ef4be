// One file of the lab repository at a time: read it, parse it, scan it for secrets, check it against its JSON
// Schema and its file name. What spans files is left to the loader.

import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkYamlSecrets } from './check-secrets.ts';
import { problem } from './problems.ts';
import { schemaProblems } from './schema-problems.ts';
import { validatorFor, type DocumentKind } from './schemas.ts';
import type { FieldRefs, LabProblem } from './types.ts';
import { YamlFile } from './yaml-source.ts';

export const SITE_FILE = 'site.yaml';
export type EntityKind = 'Host' | 'Profile' | 'Image';
export const KIND_DIRS: ReadonlyArray<{ dir: string; kind: EntityKind; noun: string }> = [
  { dir: 'hosts', kind: 'Host', noun: 'host' },
  { dir: 'profiles', kind: 'Profile', noun: 'profile' },
  { dir: 'images', kind: 'Image', noun: 'image' },
];
export const YAML_FILE = /\.ya?ml$/;

export interface LoadedDocument {
  yaml: YamlFile;
  /** False when the document failed its schema: it takes no part in cross-file checks. */
  valid: boolean;
}

/** A file's text; `problem` when it exists but cannot be read; neither when it does not exist. */
export interface ReadResult {
  text?: string;
  problem?: LabProblem;
}

export function readText(dir: string, file: string): ReadResult {
  try {
    return { text: readFileSync(join(dir, file), 'utf8') };
  } catch (e) {
    return isNotFound(e) ? {} : { problem: problem({ file, line: 1, col: 1 }, 'read-error', `cannot read: ${errorMessage(e)}`) };
  }
}

/** The YAML files directly inside `kindDir` (regular files only), sorted. */
export function listYamlFiles(dir: string, kindDir: string): { files: string[]; problem?: LabProblem } {
  try {
    const files = readdirSync(join(dir, kindDir), { withFileTypes: true })
      .filter((entry) => entry.isFile() && YAML_FILE.test(entry.name))
      .map((entry) => `${kindDir}/${entry.name}`)
      .sort();
    return { files };
  } catch (e) {
    if (isNotFound(e)) return { files: [] };
    return { files: [], problem: problem({ file: kindDir, line: 1, col: 1 }, 'read-error', `cannot list: ${errorMessage(e)}`) };
  }
}

/** Whether `file` is a regular file now, as `listYamlFiles` would see it (symbolic links are not). */
export function isRegularFile(dir: string, file: string): boolean {
  try {
    return lstatSync(join(dir, file)).isFile();
  } catch (e) {
    if (isNotFound(e) || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw e;
  }
}

export function isSymbolicLink(dir: string, file: string): boolean {
  try {
    return lstatSync(join(dir, file)).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Parse, secret scan, schema check and file-name check of one document. */
export function loadDocument(file: string, text: string, kind: DocumentKind): { document?: LoadedDocument; problems: LabProblem[] } {
  const parsed = YamlFile.parse(file, text);
  const yaml = parsed.yaml;
  if (!yaml) return { problems: parsed.problems };
  const problems = checkYamlSecrets(yaml);
  const validate = validatorFor(kind);
  const valid = validate(yaml.value);
  if (!valid) problems.push(...schemaProblems(yaml, validate.errors ?? []));
  const name = (yaml.value as { name?: unknown } | null)?.name;
  if (kind !== 'Site' && typeof name === 'string' && name !== stem(file)) {
    problems.push(problem(refOf(yaml.refs, 'name'), 'name-mismatch', `name "${name}" must equal the file name without extension ("${stem(file)}")`));
  }
  return { document: { yaml, valid }, problems };
}

export function refOf(refs: FieldRefs, path: string): FieldRefs[string] {
  return refs[path] ?? refs[''] ?? { file: '?', line: 1, col: 1 };
}

export function stem(file: string): string {
  return (file.split('/').pop() ?? file).replace(YAML_FILE, '');
}

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
