import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { SOPS_FILE } from '../model/lab-files.ts';
import type { LabLimits } from '../model/lab-limits.ts';
import { labFiles } from '../model/snapshot-tree.ts';
import type { CommitSnapshot } from '../source/commit-snapshot.ts';
import { decryptSopsYaml, parseAgeIdentities, SopsError } from './sops.ts';
import { BINDING_KEYS, CredentialBindingError, envBindingEntry, parseBinding, type CredentialBinding } from './credential-binding.ts';
import { errorMessage } from '../core/errors.ts';

export interface Credential {
  username: string;
  password: string;
}

/** The SOPS file the agent looks for at the root of the lab repository. */
export const LAB_SOPS_FILE = SOPS_FILE;

export class CredentialMissingError extends Error {
  override readonly name = 'CredentialMissingError';
  constructor(readonly credential: string, readonly host?: string, sopsProblem?: string) {
    super(
      `credential "${credential}"${host ? ` (for host ${host})` : ''} is not in the secrets file, in FORSETI_CREDENTIAL_${envName(credential)}_USERNAME/_PASSWORD` +
        ` nor in the lab's ${LAB_SOPS_FILE}${sopsProblem ? ` (${sopsProblem})` : ''}`,
    );
  }
}

/** Where a credential resolves from, and what its operator bound it to (src/secrets/credential-binding.ts). */
export interface CredentialOrigin {
  source: 'secrets file' | 'environment' | typeof LAB_SOPS_FILE;
  /** Undefined: the entry says no `use`, so nothing a commit names may use it. */
  binding?: CredentialBinding;
  /** Why an entry of the lab's SOPS file has no binding forseti can trust, when it has one it cannot. */
  problem?: string;
}

type Bindings = Map<string, { binding?: CredentialBinding; problem?: string }>;

export interface SecretsOptions {
  /** age key file (`AGE-SECRET-KEY-1…` lines) that opens the lab's SOPS file. Default: env FORSETI_AGE_KEY_FILE. */
  ageKeyFile?: string;
}

function envName(credential: string): string {
  return credential.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/**
 * Credentials named in the lab repository are resolved here, on the agent's box, in this order: its secrets
 * file (`name: {username, password}`), the environment, and the lab repository's `secrets.sops.yaml` (the same
 * shape, encrypted with SOPS for the agent's age key). Plaintext credentials never come from Git.
 */
export class Secrets {
  private constructor(
    private readonly fromFile: Map<string, Credential>,
    private readonly env: NodeJS.ProcessEnv,
    private readonly options: SecretsOptions,
    private readonly fromSops: Map<string, Credential> = new Map(),
    /** Why the lab's SOPS file gave nothing, if it exists but could not be opened. */
    readonly sopsProblem?: string,
    /** Every value the SOPS file decrypted to, credential or not (user names aside). */
    private readonly sopsValues: string[] = [],
    /** The bindings of the secrets file's entries and of the environment's (by FORSETI_CREDENTIAL_ key). */
    private readonly operatorBindings: { file: Bindings; env: Bindings } = { file: new Map(), env: new Map() },
    private readonly sopsBindings: Bindings = new Map(),
    /** The SOPS file as committed (encrypted), for problems at the line of a value. */
    readonly sopsText?: string,
  ) {}

  /** A binding the operator wrote wrong (an unknown `use`, a bad CIDR) throws CredentialBindingError. */
  static async load(file: string | undefined, env: NodeJS.ProcessEnv = process.env, options: SecretsOptions = {}): Promise<Secrets> {
    const entries = new Map<string, Credential>();
    const fileBindings: Bindings = new Map();
    if (file) collect((parse(await readFile(file, 'utf8')) ?? {}) as unknown, entries, fileBindings, true);
    const envBindings: Bindings = new Map();
    for (const key of Object.keys(env)) {
      const name = /^FORSETI_CREDENTIAL_(.+)_PASSWORD$/.exec(key)?.[1];
      if (name) envBindings.set(name, bindingOf(name, envBindingEntry(env, name), true));
    }
    return new Secrets(entries, env, options, new Map(), undefined, [], { file: fileBindings, env: envBindings });
  }

  /**
   * These secrets plus the credentials of `<labDir>/secrets.sops.yaml`, if there is one. A SOPS file that
   * cannot be opened (no age key, not a recipient, MAC mismatch) adds nothing; `sopsProblem` says why, and so
   * does the error of any credential that is then missing. It is read like every file of the lab (a regular file
   * inside the tree, within `limits`); validation refuses a commit whose SOPS file is not.
   */
  async withLab(labDir: string, limits?: LabLimits, snapshot?: CommitSnapshot): Promise<Secrets> {
    let read;
    try {
      read = labFiles(labDir, limits ? { limits } : {}, snapshot).read(LAB_SOPS_FILE);
    } catch (err) {
      return this.withSops(new Map(), errorMessage(err));
    }
    if (read.refusal) return this.withSops(new Map(), read.refusal.message);
    const text = read.text;
    if (text === undefined) return this.withSops(new Map());
    try {
      // A binding is taken from the SOPS file only where its MAC covers it: a file that decrypts and verifies was
      // written whole by someone holding its data key, so its bindings are the author's of its values.
      const unauthenticated = new Set<string>();
      const tree = await decryptSopsYaml(text, await this.ageIdentities(), LAB_SOPS_FILE, { unauthenticated: (path) => unauthenticated.add(path.slice(0, 2).join(':')) });
      const entries = new Map<string, Credential>();
      const bindings: Bindings = new Map();
      collect(tree, entries, bindings, false, unauthenticated);
      return this.withSops(entries, undefined, decryptedValues(tree), bindings, text);
    } catch (err) {
      if (!(err instanceof SopsError)) throw err;
      return this.withSops(new Map(), err.message);
    }
  }

  private withSops(entries: Map<string, Credential>, problem?: string, values: string[] = [], bindings: Bindings = new Map(), text?: string): Secrets {
    return new Secrets(this.fromFile, this.env, this.options, entries, problem, values, this.operatorBindings, bindings, text);
  }

  /** Where `name` resolves from (the same order as `resolve`) and its binding; undefined when nothing holds it. */
  origin(name: string): CredentialOrigin | undefined {
    if (this.fromFile.has(name)) return { source: 'secrets file', ...this.operatorBindings.file.get(name) };
    const key = envName(name);
    if (this.env[`FORSETI_CREDENTIAL_${key}_USERNAME`] !== undefined && this.env[`FORSETI_CREDENTIAL_${key}_PASSWORD`] !== undefined) {
      return { source: 'environment', ...(this.operatorBindings.env.get(key) ?? bindingOf(key, envBindingEntry(this.env, key), false)) };
    }
    if (this.fromSops.has(name)) return { source: LAB_SOPS_FILE, ...this.sopsBindings.get(name) };
    return undefined;
  }

  /** The operator's entries (secrets file, environment) that say no `use`: nothing a commit names may use them. */
  unbound(): string[] {
    const names = [...this.fromFile.keys()].filter((n) => !this.operatorBindings.file.get(n)?.binding);
    for (const [key, b] of this.operatorBindings.env) if (!b.binding) names.push(`FORSETI_CREDENTIAL_${key}`);
    return names;
  }

  resolve(name: string, host?: string): Credential {
    const file = this.fromFile.get(name);
    if (file) return file;
    const key = envName(name);
    const username = this.env[`FORSETI_CREDENTIAL_${key}_USERNAME`];
    const password = this.env[`FORSETI_CREDENTIAL_${key}_PASSWORD`];
    if (username !== undefined && password !== undefined) return { username, password };
    const sops = this.fromSops.get(name);
    if (sops) return sops;
    throw new CredentialMissingError(name, host, this.sopsProblem);
  }

  /**
   * Every secret value these credentials hold, for the redactor: the passwords (with their users, for the Basic
   * form) from the secrets file, the environment and the lab's SOPS file, and whatever else the SOPS file decrypted.
   */
  values(): Credential[] {
    const fromEnv: Credential[] = [];
    for (const [key, password] of Object.entries(this.env)) {
      const name = /^FORSETI_CREDENTIAL_(.+)_PASSWORD$/.exec(key)?.[1];
      if (name && password) fromEnv.push({ username: this.env[`FORSETI_CREDENTIAL_${name}_USERNAME`] ?? '', password });
    }
    return [...this.fromFile.values(), ...fromEnv, ...this.fromSops.values(), ...this.sopsValues.map((password) => ({ username: '', password }))];
  }

  /**
   * What the lab's SOPS file decrypted to: its credentials by name, and its other values. The lab is semi-trusted
   * (anyone can encrypt to the agent's public age key), so these are not redaction patterns as they are: the agent
   * filters them first (src/agent/lab-secret-patterns.ts).
   */
  labValues(): { credentials: ReadonlyMap<string, Credential>; others: string[] } {
    const passwords = new Set([...this.fromSops.values()].map((c) => c.password));
    return { credentials: this.fromSops, others: this.sopsValues.filter((v) => !passwords.has(v)) };
  }

  /** The agent's age identities (FORSETI_AGE_KEY, the age key file); throws SopsError when the key file cannot be read. */
  async ageIdentities(): Promise<string[]> {
    const keyFile = this.options.ageKeyFile ?? this.env['FORSETI_AGE_KEY_FILE'];
    const identities = this.env['FORSETI_AGE_KEY'] ? parseAgeIdentities(this.env['FORSETI_AGE_KEY']) : [];
    if (keyFile) {
      const text = await readFile(keyFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new SopsError(LAB_SOPS_FILE, `cannot read the age key file ${keyFile}: ${err.code ?? 'error'}`);
      });
      identities.push(...parseAgeIdentities(text));
    }
    return identities;
  }
}

function decryptedValues(data: unknown, key = ''): string[] {
  if (typeof data === 'string') return key === 'username' ? [] : [data];
  if (typeof data !== 'object' || data === null) return [];
  return Object.entries(data as Record<string, unknown>).flatMap(([k, v]) => decryptedValues(v, Array.isArray(data) ? key : k));
}

/**
 * `name: {username, password, use?, addresses?, urls?, allowInsecureTls?}` entries. A wrong binding throws when
 * `strict` (the operator's file: the agent does not start), else it leaves the entry unbound with the reason; so does
 * a binding key in `unauthenticated` (`name:key`, not covered by the SOPS MAC).
 */
function collect(data: unknown, into: Map<string, Credential>, bindings: Bindings, strict: boolean, unauthenticated: ReadonlySet<string> = new Set()): void {
  if (typeof data !== 'object' || data === null) return;
  for (const [name, value] of Object.entries(data as Record<string, unknown>)) {
    const v = value as Partial<Record<keyof Credential, unknown>> | null;
    if (typeof v?.username !== 'string' || typeof v.password !== 'string') continue;
    into.set(name, { username: v.username, password: v.password });
    const forged = BINDING_KEYS.find((k) => unauthenticated.has(`${name}:${k}`));
    bindings.set(name, forged ? { problem: `its ${forged} is not covered by the SOPS MAC (a plain value in a mac_only_encrypted file); encrypt it` } : bindingOf(name, v as Record<string, unknown>, strict));
  }
}

function bindingOf(name: string, entry: Record<string, unknown>, strict: boolean): { binding?: CredentialBinding; problem?: string } {
  try {
    const binding = parseBinding(name, entry);
    return binding ? { binding } : {};
  } catch (err) {
    if (strict || !(err instanceof CredentialBindingError)) throw err;
    return { problem: err.message };
  }
}
