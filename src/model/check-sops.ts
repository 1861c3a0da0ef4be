// The regular expressions a SOPS file's metadata names (sops.encrypted_regex, sops.unencrypted_regex) come from the
// commit, and the agent runs them against every key of the file when it decrypts it (src/agent/sops.ts). SOPS
// itself runs them with Go's RE2, which never backtracks; JavaScript's engine does, so `^(a+)+$` and a key of 40
// a's would hold the agent for good, and even quantifier-free alternations multiply (`(a|a)(a|a)…` has 2^n paths).
// forseti takes what SOPS files use: names, one alternation of them, optionally in one group and anchored
// (`^(data|stringData)$`, `^(password|token)$`, `_unencrypted$`). Such a pattern tries its names once per position
// of a key: linear in the key, whatever it is.

import { problem } from './problems.ts';
import type { LabProblem } from './types.ts';
import type { YamlFile } from './yaml-source.ts';

const MAX_PATTERN = 256;
/** A name: letters, digits, `_ . : / -`, or an escaped character. */
const NAME = String.raw`(?:[A-Za-z0-9_.:/-]|\\[^A-Za-z0-9])+`;
/** Anchors around a name, or an alternation of names with or without one group around it. */
const SIMPLE_PATTERN = new RegExp(String.raw`^\^?(?:\((?:\?:)?${NAME}(?:\|${NAME})*\)|${NAME}(?:\|${NAME})*)\$?$`);

export function checkSopsRegexes(yaml: YamlFile): LabProblem[] {
  const sops = (yaml.value as { sops?: unknown } | null)?.sops;
  if (sops === null || typeof sops !== 'object') return [];
  const problems: LabProblem[] = [];
  for (const key of ['encrypted_regex', 'unencrypted_regex']) {
    const pattern = (sops as Record<string, unknown>)[key];
    if (typeof pattern !== 'string' || simpleSopsPattern(pattern)) continue;
    problems.push(
      problem(
        yaml.refOf(['sops', key]),
        'schema',
        `sops.${key}: forseti runs this pattern on every key when it decrypts the file, and takes names and one alternation of them, anchored or not, at most ${MAX_PATTERN} characters, like ^(data|stringData)$ (no quantifiers, classes or nested groups; ".*password.*" matches as "password")`,
      ),
    );
  }
  return problems;
}

export function simpleSopsPattern(pattern: string): boolean {
  return pattern.length <= MAX_PATTERN && SIMPLE_PATTERN.test(pattern);
}
