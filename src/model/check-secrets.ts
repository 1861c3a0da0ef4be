// Secrets never live in the lab repository: the agent resolves credentials by name.
// Flags keys named like secrets that hold literal values, and values that look like secrets.

import type { ScanMeter } from '../core/template.ts';
import { problem } from './problems.ts';
import type { LabProblem } from './types.ts';
import { urlCredentials } from './url-credentials.ts';
import { textRefs, type YamlFile } from './yaml-source.ts';

const SECRET_WORDS: ReadonlySet<string> = new Set(['password', 'passwd', 'pwd', 'passphrase', 'secret', 'token', 'key', 'apikey', 'privatekey']);
/** A public key, or an SSH fingerprint of one (bmc.sshHostKey): public, whatever its key is called. */
const PUBLIC_KEY = /^\s*(ssh-(rsa|ed25519|dss)|ecdsa-sha2-|sk-(ssh|ecdsa)|[Ss][Hh][Aa]256:[A-Za-z0-9+/]{43}=?\s*$)/;
/** Cheap test that rules out nearly every value before the patterns below run. */
const MIGHT_BE_SECRET = /-----BEGIN|@|pass|pwd|secret|token|key/i;
const ONLY_PLACEHOLDERS = /^\s*(\{\{[^{}]*\}\}\s*)+$/;

/** A word (letters, digits, `_`, `.`, `-`) that ends in one of these names a secret when a literal is assigned to it. */
const SECRET_NAME_END = /(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|private[_-]?key|access[_-]?key)$/i;
const PEM = /-----BEGIN[ A-Z0-9]*-----/g;
const WORD_RUN = /[\w.-]+/g;
const SPACE = /\s/;
const VALUE_CHAR = /[^\s&;,'"{]/;

/**
 * Which keys name a secret (`password`, `apiKey`, `bmc_token`, …), remembered per key: a lab of 10,000 hosts asks
 * about the same few keys again and again. One per loader.
 */
export class SecretKeys {
  private readonly known = new Map<string, boolean>();

  has(key: string): boolean {
    let secret = this.known.get(key);
    if (secret === undefined) {
      secret = splitWords(key).some((w) => SECRET_WORDS.has(w));
      if (this.known.size < 10_000) this.known.set(key, secret);
    }
    return secret;
  }
}

function splitWords(key: string): string[] {
  return key.split(/[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])/).map((w) => w.toLowerCase());
}

function isLiteral(value: string): boolean {
  return value.trim() !== '' && !ONLY_PLACEHOLDERS.test(value) && !PUBLIC_KEY.test(value);
}

/** Secret-looking spans of a text: offset of each and what it looks like. Linear in the text's length. */
export function secretSpans(text: string, meter?: ScanMeter): Array<{ offset: number; message: string }> {
  const spans: Array<{ offset: number; message: string }> = [];
  if (!MIGHT_BE_SECRET.test(text)) return spans;
  for (const m of text.matchAll(PEM)) spans.push({ offset: m.index, message: `contains a PEM block (${m[0]})` });
  for (const url of urlCredentials(text, meter)) spans.push({ offset: url.start, message: 'contains a URL with a password in it' });
  spans.push(...secretAssignments(text, meter));
  return spans;
}

/**
 * `name = value` or `name: value` where the name ends in a secret word and the value is a literal (not empty, not a
 * `{{ }}` placeholder, not empty quotes). What /(?<![\w.-])([\w.-]*(?:password|…))\s*[=:][ \t]*(?!\{\{|["']?\s*$|["']\s*["'])["']?[^\s&;,'"{]/gi
 * matched, in one pass: that expression backtracked over every run of spaces after the `=` once per space.
 */
function secretAssignments(text: string, meter?: ScanMeter): Array<{ offset: number; message: string }> {
  const spans: Array<{ offset: number; message: string }> = [];
  let resume = 0;
  for (const word of text.matchAll(WORD_RUN)) {
    if (meter) meter.steps += word[0].length;
    if (word.index < resume || !SECRET_NAME_END.test(word[0].slice(-16))) continue;
    let i = skip(text, word.index + word[0].length, (c) => SPACE.test(c), meter);
    if (text[i] !== '=' && text[i] !== ':') continue;
    i = skip(text, i + 1, (c) => c === ' ' || c === '\t', meter);
    const quote = text[i] === '"' || text[i] === "'";
    const value = quote ? i + 1 : i;
    if (text.startsWith('{{', i) || skip(text, value, (c) => SPACE.test(c), meter) === text.length) continue;
    if (quote && '"\''.includes(text[skip(text, i + 1, (c) => SPACE.test(c), meter)] ?? 'x')) continue;
    if (!VALUE_CHAR.test(text[value] ?? '\n')) continue;
    spans.push({ offset: word.index, message: `sets ${word[0]} to a literal value` });
    resume = value + 1;
  }
  return spans;
}

function skip(text: string, from: number, over: (c: string) => boolean, meter?: ScanMeter): number {
  let i = from;
  while (i < text.length && over(text[i] ?? '')) i++;
  if (meter) meter.steps += i - from + 1;
  return i;
}

const ADVICE = 'name a credential the agent holds instead (e.g. bmc.credential)';

export function checkYamlSecrets(yaml: YamlFile, secretKeys: SecretKeys = new SecretKeys()): LabProblem[] {
  const isSecretKey = (key: string): boolean => secretKeys.has(key);
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
  const spans = secretSpans(text);
  const refAt = spans.length > 0 ? textRefs(file, text) : undefined;
  return spans.map((span) => problem(refAt?.(span.offset) ?? { file, line: 1, col: 1 }, 'plaintext-secret', `${span.message}; ${ADVICE}`));
}

