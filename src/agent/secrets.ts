import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';

export interface Credential {
  username: string;
  password: string;
}

export class CredentialMissingError extends Error {
  constructor(readonly credential: string, readonly host?: string) {
    super(`credential "${credential}"${host ? ` (for host ${host})` : ''} is not in the secrets file nor in FORSETI_CREDENTIAL_${envName(credential)}_USERNAME/_PASSWORD`);
    this.name = 'CredentialMissingError';
  }
}

function envName(credential: string): string {
  return credential.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/**
 * Credentials named in the lab repository are resolved here, on the agent's box: from its secrets file
 * (`name: {username, password}`) or from the environment. Never from Git.
 */
export class Secrets {
  private constructor(private readonly fromFile: Map<string, Credential>, private readonly env: NodeJS.ProcessEnv) {}

  static async load(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<Secrets> {
    const entries = new Map<string, Credential>();
    if (file) {
      const data = (parse(await readFile(file, 'utf8')) ?? {}) as Record<string, Partial<Credential>>;
      for (const [name, value] of Object.entries(data)) {
        if (typeof value?.username === 'string' && typeof value.password === 'string') entries.set(name, { username: value.username, password: value.password });
      }
    }
    return new Secrets(entries, env);
  }

  resolve(name: string, host?: string): Credential {
    const file = this.fromFile.get(name);
    if (file) return file;
    const key = envName(name);
    const username = this.env[`FORSETI_CREDENTIAL_${key}_USERNAME`];
    const password = this.env[`FORSETI_CREDENTIAL_${key}_PASSWORD`];
    if (username !== undefined && password !== undefined) return { username, password };
    throw new CredentialMissingError(name, host);
  }
}
