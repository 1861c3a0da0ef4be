// One file of the lab repository at a time: read it, parse it, scan it for secrets, check it against its JSON
// Schema and its file name. What spans files is left to the loader.

import { checkBootText } from './check-boot-text.ts';
import { checkInvisibleText } from './check-invisible.ts';
import { checkYamlSecrets, type SecretKeys } from './check-secrets.ts';
import { CONTROL_CHAR, printablePath, type LabFiles, type Refusal } from './lab-tree.ts';
import { DEFAULT_LAB_LIMITS, type LabLimits } from './lab-limits.ts';
import { capProblems, problem } from './problems.ts';
import { schemaProblems } from './schema-problems.ts';
import { validatorFor, type DocumentKind } from './schemas.ts';
import type { LabProblem } from './types.ts';
import type { FieldRefs, SourceRef } from '../core/source-ref.ts';
import { YamlFile } from './yaml-source.ts';
import { YAML_FILE } from './lab-files.ts';


export interface LoadedDocument {
  yaml: YamlFile;
  /** False when the document failed its schema: it takes no part in cross-file checks. */
  valid: boolean;
}

/** A YAML file directly inside a kind directory; `link`: a symbolic link (read through it, inside the tree only). */
export interface ListedFile {
  file: string;
  link: boolean;
}

/**
 * The YAML files directly inside `kindDir`, sorted: regular files, links and anything else that is not a directory
 * (reading it says what it is). Names with control characters are left out: the tree is refused for them whole.
 */
export function listYamlFiles(tree: LabFiles, kindDir: string): { files: ListedFile[]; problem?: LabProblem } {
  const listed = tree.listDir(kindDir);
  const files = listed.entries
    .filter((e) => e.kind !== 'dir' && YAML_FILE.test(e.name) && !CONTROL_CHAR.test(e.name))
    .map((e) => ({ file: `${kindDir}/${e.name}`, link: e.kind === 'link' }));
  return listed.refusal ? { files, problem: fileProblem(kindDir, listed.refusal) } : { files };
}

/** Whether `file` is something `listYamlFiles` lists, and whether it is a link; null if it lists nothing there. */
export function listedKind(tree: LabFiles, file: string): { link: boolean } | null {
  const kind = tree.entryKind(file);
  return kind === 'missing' || kind === 'dir' ? null : { link: kind === 'link' };
}

/** A refusal to read a file, placed at the file itself. */
export function fileProblem(file: string, refusal: Refusal): LabProblem {
  return problem({ file: printablePath(file), line: 1, col: 1 }, refusal.code, refusal.message);
}

/** A refusal to read a file, placed where the lab names it (`field "path": why`). */
export function namedFileProblem(ref: SourceRef, field: string, path: string, refusal: Refusal): LabProblem {
  return problem(ref, refusal.code, `${field} "${printablePath(path)}": ${refusal.message}`);
}

/** Parse, secret scan, schema check and file-name check of one document; at most `maxProblems` problems (and one more). */
export function loadDocument(file: string, text: string, kind: DocumentKind, limits: LabLimits = DEFAULT_LAB_LIMITS, secretKeys?: SecretKeys): { document?: LoadedDocument; problems: LabProblem[] } {
  const parsed = YamlFile.parse(file, text, { limits });
  const yaml = parsed.yaml;
  if (!yaml) return { problems: parsed.problems };
  const problems = [...checkYamlSecrets(yaml, secretKeys), ...checkInvisibleText(yaml)];
  const validate = validatorFor(kind);
  const valid = validate(yaml.value);
  if (!valid) problems.push(...schemaProblems(yaml, validate.errors ?? []));
  else problems.push(...checkBootText(kind, yaml));
  const name = (yaml.value as { name?: unknown } | null)?.name;
  if (kind !== 'Site' && typeof name === 'string' && name !== stem(file)) {
    problems.push(problem(refOf(yaml.refs, 'name'), 'name-mismatch', `name "${name}" must equal the file name without extension ("${stem(file)}")`));
  }
  return { document: { yaml, valid }, problems: capProblems(problems, limits.maxProblems, 'file') };
}

export function refOf(refs: FieldRefs, path: string): FieldRefs[string] {
  return refs[path] ?? refs[''] ?? { file: '?', line: 1, col: 1 };
}

export function stem(file: string): string {
  return (file.split('/').pop() ?? file).replace(YAML_FILE, '');
}
