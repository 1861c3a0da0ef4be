// Secrets never live in the lab repository: the agent resolves credentials by name.
// Flags keys named like secrets that hold literal values, and values that look like secrets.

import { problem } from './problems.ts';
import type { LabProblem } from './types.ts';
import { refInText, type YamlFile } from './yaml-source.ts';

const SECRET_WORDS = new Set(['password', 'passwd', 'pwd', 'passphrase', 'secret', 'token', 'key', 'apikey', 'privatekey']);
/** A public key, or an SSH fingerprint of one (bmc.sshHostKey): public, whatever its key is called. */
const PUBLIC_KEY = /^\s*(ssh-(rsa|ed25519|dss)|ecdsa-sha2-|sk-(ssh|ecdsa)|[Ss][Hh][Aa]256:[A-Za-z0-9+/]{43}=?\s*$)/;
/** Cheap test that rules out nearly every value before the patterns below run. */
const MIGHT_BE_SECRET = /-----BEGIN|@|pass|pwd|secret|token|key/i;
const ONLY_PLACEHOLDERS = /^\s*(\{\{[^{}]*\}\}\s*)+$/;

const VALUE_PATTERNS: ReadonlyArray<{ pattern: RegExp; describe: (m: RegExpExecArray) => string }> = [
  { pattern: /-----BEGIN[ A-Z0-9]*-----/g, describe: (m) => `contains a PEM block (${m[0]})` },
  { pattern: /\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:[^\s/@]+@/gi, describe: () => 'contains a URL with a password in it' },
  {
    pattern: /(?<![\w.-])([\w.-]*(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|private[_-]?key|access[_-]?key))\s*[=:][ \t]*(?!\{\{|["']?\s*$|["']\s*["'])["']?[^\s&;,'"{]/gi,
    describe: (m) => `sets ${m[1] ?? 'a secret'} to a literal value`,
  },
];

const secretKeyCache = new Map<string, boolean>();

function isSecretKey(key: string): boolean {
  let secret = secretKeyCache.get(key);
  if (secret === undefined) {
    secret = splitWords(key).some((w) => SECRET_WORDS.has(w));
    if (secretKeyCache.size < 10_000) secretKeyCache.set(key, secret);
  }
  return secret;
}

function splitWords(key: string): string[] {
  return key.split(/[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])/).map((w) => w.toLowerCase());
}

function isLiteral(value: string): boolean {
  return value.trim() !== '' && !ONLY_PLACEHOLDERS.test(value) && !PUBLIC_KEY.test(value);
}

/** Secret-looking spans of a text: offset of each and what it looks like. */
function secretSpans(text: string): Array<{ offset: number; message: string }> {
  const spans: Array<{ offset: number; message: string }> = [];
  if (!MIGHT_BE_SECRET.test(text)) return spans;
  for (const { pattern, describe } of VALUE_PATTERNS) {
    for (const m of text.matchAll(pattern)) spans.push({ offset: m.index, message: describe(m) });
  }
  return spans;
}

const ADVICE = 'name a credential the agent holds instead (e.g. bmc.credential)';

export function checkYamlSecrets(yaml: YamlFile): LabProblem[] {
  const problems: LabProblem[] = [];
  const path: Array<string | number> = []; // a stack: visiting every node must not allocate a path each
  const visit = (value: unknown, key: string | undefined): void => {
    if (typeof value === 'string') {
      if (!MIGHT_BE_SECRET.test(value) && !(key !== undefined && isSecretKey(key))) return;
      const dotted = path.join('.');
      if (key !== undefined && isSecretKey(key) && isLiteral(value)) {
        problems.push(problem(yaml.refs[dotted] ?? yaml.documentRef, 'plaintext-secret', `${dotted}: "${key}" holds a literal secret; ${ADVICE}`));
        return;
      }
      for (const span of secretSpans(value)) problems.push(problem(yaml.refInString([...path], span.offset), 'plaintext-secret', `${dotted}: ${span.message}; ${ADVICE}`));
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => {
        path.push(i);
        visit(item, key);
        path.pop();
      });
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        path.push(k);
        visit(v, k);
        path.pop();
      }
    }
  };
  visit(yaml.value, undefined);
  return problems;
}

/** For template files read from disk (config templates). */
export function checkTextSecrets(file: string, text: string): LabProblem[] {
  return secretSpans(text).map((span) => problem(refInText(file, text, span.offset), 'plaintext-secret', `${span.message}; ${ADVICE}`));
}

