// One redactor per process, created by whoever owns the secrets and handed to everything that lets text out
// (log destination, status branch, /v1/status, alerts, `forseti bmc`). It knows the resolved values, grouped by
// where they came from so a group can be replaced (the lab's SOPS file changes with each commit).
import { basicForms, secretPattern } from './encodings.ts';

export const REDACTED = '[redacted]';

/**
 * Secrets shorter than this (in characters) are redacted only where a whole value is the secret (a log field, a
 * status field, the whole message), never inside other text: a one-character password would otherwise turn every
 * line into `[redacted]`, and a password that short protects nothing anyway. Basic credentials (`user:password`
 * in base64) are redacted at any length: the encoded pair is long and unambiguous.
 */
export const MIN_SUBSTRING_SECRET_LENGTH = 6;

/**
 * Fields that name things or hold one of the agent's words (hosts, roles, steps, phases, revisions, kinds, sync and
 * health): what readers of logs, the status branch, the API and alerts decide with. Their values are left as they
 * are when they look like a name (no spaces, at most 256 characters), so no secret that happens to equal a word can
 * turn `role: compute` or `kind: commit-rejected` into `[redacted]`. Names come from the lab and the agent, never
 * from a secret; free text (messages, errors, inventories) is redacted wherever it sits.
 */
export const NAME_FIELDS: ReadonlySet<string> = new Set([
  'host', 'role', 'fromRole', 'appliedRole', 'attemptRole', 'phase', 'from', 'step', 'kind', 'event', 'alert',
  'revision', 'appliedRevision', 'attemptRevision', 'attemptedRevision', 'generation', 'sync', 'health', 'drift',
  'mode', 'answer', 'service', 'site', 'result',
]);
const NAME_VALUE = /^[^\s]{1,256}$/;
/** Fields whose keys are host names (`hosts` of the status documents): never redacted. */
const NAME_KEYED_FIELDS: ReadonlySet<string> = new Set(['hosts']);

/** A secret, with the user name it goes with when it is a password (for the Basic-header form). */
export interface SecretValue {
  password: string;
  username?: string;
}

interface Compiled {
  /** Matches any long secret, in any form, anywhere. */
  anywhere: RegExp | null;
  /** Matches a string that is, whole, one of the short secrets in any form. */
  whole: RegExp | null;
  /** Finds candidates in a serialized JSON line, short ones as whole quoted strings. */
  inLine: RegExp | null;
}

/** A host's attempt token: 32 lower-case hex digits, never inside a longer run of hex digits. */
const HEX_TOKEN = /(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])/g;

export class Redactor {
  private readonly groups = new Map<string, SecretValue[]>();
  private compiled: Compiled | null = null;
  /**
   * Hosts' attempt tokens by group. Thousands of them change as provisionings start, so they are found by a
   * scan for hex runs and a set lookup instead of joining the compiled pattern (hex is the same in every encoding).
   */
  private readonly tokenGroups = new Map<string, ReadonlySet<string>>();
  private tokens: ReadonlySet<string> = new Set();

  /** Replaces the secrets of one group (e.g. `agent-secrets`, `lab-secrets`, `host-tokens`). */
  set(group: string, secrets: ReadonlyArray<SecretValue | string>): void {
    this.groups.set(group, secrets.map((s) => (typeof s === 'string' ? { password: s } : s)).filter((s) => s.password !== ''));
    this.compiled = null;
  }

  /** Replaces one group of hex attempt tokens (`HEX_TOKEN`); any other value is ignored. */
  setTokens(group: string, tokens: Iterable<string>): void {
    this.tokenGroups.set(group, new Set([...tokens].filter((t) => /^[0-9a-f]{32}$/.test(t))));
    this.tokens = new Set([...this.tokenGroups.values()].flatMap((g) => [...g]));
  }

  /** The secrets too short for substring redaction, for a warning at start (`MIN_SUBSTRING_SECRET_LENGTH`). */
  shortSecrets(group: string): SecretValue[] {
    return (this.groups.get(group) ?? []).filter((s) => [...s.password].length < MIN_SUBSTRING_SECRET_LENGTH);
  }

  /** The text with every secret, in every form, replaced by `[redacted]`. */
  redact(text: string): string {
    const { anywhere, whole } = this.compile();
    if (whole?.test(text)) return REDACTED;
    const scrubbed = anywhere ? text.replace(anywhere, REDACTED) : text;
    return this.tokens.size > 0 ? scrubbed.replace(HEX_TOKEN, (m) => (this.tokens.has(m) ? REDACTED : m)) : scrubbed;
  }

  private holdsToken(text: string): boolean {
    if (this.tokens.size === 0) return false;
    for (const [m] of text.matchAll(HEX_TOKEN)) if (this.tokens.has(m)) return true;
    return false;
  }

  /**
   * A copy of `value` with every string in it (keys too) redacted, but a name in one of the `NAME_FIELDS` and the
   * host names that key a `hosts` map. Other values as they are.
   */
  redactDeep<T>(value: T): T {
    const { anywhere, whole } = this.compile();
    return anywhere || whole || this.tokens.size > 0 ? (this.deep(value) as T) : value;
  }

  /**
   * One serialized JSON log line, redacted: parsed and every string redacted when it may hold a secret (so the
   * line stays valid JSON and escapes cannot hide one), as plain text when it is not JSON.
   */
  redactLine(line: string): string {
    const { inLine } = this.compile();
    if (!inLine?.test(line) && !this.holdsToken(line)) return line;
    const newline = line.endsWith('\n') ? '\n' : '';
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return this.redact(line);
    }
    return `${JSON.stringify(this.deep(parsed))}${newline}`;
  }

  private deep(value: unknown, field = ''): unknown {
    if (typeof value === 'string') return NAME_FIELDS.has(field) && NAME_VALUE.test(value) ? value : this.redact(value);
    if (Array.isArray(value)) return value.map((v) => this.deep(v, field));
    if (typeof value === 'object' && value !== null && isPlain(value)) {
      const names = NAME_KEYED_FIELDS.has(field);
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [names && NAME_VALUE.test(k) ? k : this.redact(k), this.deep(v, k)]));
    }
    return value;
  }

  private compile(): Compiled {
    if (this.compiled) return this.compiled;
    const long = new Set<string>();
    const short = new Set<string>();
    for (const secrets of this.groups.values()) {
      for (const { password, username } of secrets) {
        ([...password].length >= MIN_SUBSTRING_SECRET_LENGTH ? long : short).add(password);
        if (username) for (const form of basicForms(username, password)) long.add(form);
      }
    }
    // Longest first: where two secrets start at one place, the whole of the longer one goes.
    const alternation = (values: Set<string>): string => [...values].sort((a, b) => b.length - a.length).map(secretPattern).join('|');
    const anywhere = long.size > 0 ? new RegExp(alternation(long), 'g') : null;
    const whole = short.size > 0 ? new RegExp(`^(?:${alternation(short)})$`) : null;
    const lineParts = [...(long.size > 0 ? [alternation(long)] : []), ...(short.size > 0 ? [`"(?:${alternation(short)})"`] : [])];
    const inLine = lineParts.length > 0 ? new RegExp(lineParts.join('|')) : null;
    this.compiled = { anywhere, whole, inLine };
    return this.compiled;
  }
}

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Removes the given secrets, in every form, from a message (error texts from lower layers are not trusted). For a
 * layer that holds one credential of its own (the Git source, the status writer) without the agent's redactor.
 */
export function scrubSecrets(message: string, secrets: Array<string | undefined>): string {
  const redactor = new Redactor();
  redactor.set('scrub', secrets.filter((s): s is string => typeof s === 'string'));
  return redactor.redact(message);
}
