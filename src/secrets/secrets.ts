import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { SOPS_FILE } from '../model/lab-files.ts';
import type { LabLimits } from '../model/lab-limits.ts';
import { LabTree } from '../model/lab-tree.ts';
import { decryptSopsYaml, parseAgeIdentities, SopsError } from './sops.ts';
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
    /** The SOPS file as committed (encrypted), for problems at the line of a value. */
    readonly sopsText?: string,
  ) {}

  static async load(file: string | undefined, env: NodeJS.ProcessEnv = process.env, options: SecretsOptions = {}): Promise<Secrets> {
    const entries = new Map<string, Credential>();
    if (file) collect((parse(await readFile(file, 'utf8')) ?? {}) as unknown, entries);
    return new Secrets(entries, env, options);
  }

  /**
   * These secrets plus the credentials of `<labDir>/secrets.sops.yaml`, if there is one. A SOPS file that
   * cannot be opened (no age key, not a recipient, MAC mismatch) adds nothing; `sopsProblem` says why, and so
   * does the error of any credential that is then missing. It is read like every file of the lab (a regular file
   * inside the tree, within `limits`); validation refuses a commit whose SOPS file is not.
   */
  async withLab(labDir: string, limits?: LabLimits): Promise<Secrets> {
    let read;
    try {
      read = new LabTree(labDir, limits ? { limits } : {}).read(LAB_SOPS_FILE);
    } catch (err) {
      return new Secrets(this.fromFile, this.env, this.options, new Map(), errorMessage(err));
    }
    if (read.refusal) return new Secrets(this.fromFile, this.env, this.options, new Map(), read.refusal.message);
    const text = read.text;
    if (text === undefined) return new Secrets(this.fromFile, this.env, this.options);
    try {
      const tree = await decryptSopsYaml(text, await this.ageIdentities(), LAB_SOPS_FILE);
      const entries = new Map<string, Credential>();
      collect(tree, entries);
      return new Secrets(this.fromFile, this.env, this.options, entries, undefined, decryptedValues(tree), text);
    } catch (err) {
      if (!(err instanceof SopsError)) throw err;
      return new Secrets(this.fromFile, this.env, this.options, new Map(), err.message);
    }
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

  private async ageIdentities(): Promise<string[]> {
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

function collect(data: unknown, into: Map<string, Credential>): void {
  if (typeof data !== 'object' || data === null) return;
  for (const [name, value] of Object.entries(data as Record<string, unknown>)) {
    const v = value as Partial<Record<keyof Credential, unknown>> | null;
    if (typeof v?.username === 'string' && typeof v.password === 'string') into.set(name, { username: v.username, password: v.password });
  }
}
