// Which SSH host key an Onboard Administrator may present. The password goes over password authentication, inside
// the SSH session: whoever answers on the OA's address with any key would get it, unless the key is checked before
// authentication. Two ways, as OpenSSH has them:
//   - a pin (`bmc.sshHostKey` in the host file): exactly that key, in OpenSSH's fingerprint form, `SHA256:` and the
//     unpadded base64 of the SHA-256 of the key blob (what `ssh-keygen -lf` and `ssh-keyscan | ssh-keygen -lf -` print,
//     and `forseti bmc probe` / `forseti discover oa` show);
//   - trust on first use: the first key seen is recorded in a store the caller owns (the agent's state directory), and
//     from then on only that key is accepted (OpenSSH's known_hosts with StrictHostKeyChecking=accept-new).
// Neither: the key is not checked, and what was seen is reported so the operator can pin it.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** `SHA256:` and 43 characters of unpadded base64. */
export const SSH_FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** OpenSSH's fingerprint of a public host key blob (RFC 4253 section 6.6 encoding). */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** `SHA256:…` as written (any case of the prefix, a trailing `=` allowed), in the form sshFingerprint gives. */
export function normalizeSshFingerprint(text: string): string {
  const normal = `SHA256:${text.trim().replace(/^sha256:/i, '').replace(/=+$/, '')}`;
  if (!SSH_FINGERPRINT.test(normal)) throw new Error(`"${text}" is not an SSH host key fingerprint (SHA256: and 43 characters of base64, as ssh-keygen -lf prints)`);
  return normal;
}

export interface RecordedHostKey {
  fingerprint: string;
  /** ISO time it was first seen. */
  firstSeen: string;
}

/** First-seen host keys by OA ("address:port"), for trust on first use. */
export interface SshHostKeyStore {
  /** Where the keys are kept, for messages ("remove its entry from …"). */
  readonly where: string;
  recorded(oa: string): Promise<RecordedHostKey | undefined>;
  /** Records `fingerprint` for `oa` unless a key is recorded already; resolves with what is recorded after. */
  recordFirst(oa: string, fingerprint: string): Promise<RecordedHostKey>;
}

/**
 * The store as one JSON file (`{"10.77.1.10:22": {"fingerprint": "SHA256:…", "firstSeen": "…"}}`), written whole
 * through a temporary file and a rename, so a crash leaves the old file or the new one. Writes are serialised.
 */
export class FileHostKeyStore implements SshHostKeyStore {
  private keys: Promise<Map<string, RecordedHostKey>> | undefined;
  private writing: Promise<unknown> = Promise.resolve();

  constructor(private readonly file: string, private readonly now: () => Date = () => new Date()) {}

  get where(): string {
    return this.file;
  }

  async recorded(oa: string): Promise<RecordedHostKey | undefined> {
    return (await this.load()).get(oa);
  }

  recordFirst(oa: string, fingerprint: string): Promise<RecordedHostKey> {
    const done = this.writing.then(async () => {
      const keys = await this.load();
      const known = keys.get(oa);
      if (known) return known;
      const entry = { fingerprint, firstSeen: this.now().toISOString() };
      const next = new Map(keys).set(oa, entry);
      await mkdir(dirname(this.file), { recursive: true });
      const temporary = `${this.file}.${process.pid}.tmp`;
      await writeFile(temporary, `${JSON.stringify(Object.fromEntries(next), null, 2)}\n`, { mode: 0o600 });
      await rename(temporary, this.file);
      keys.set(oa, entry);
      return entry;
    });
    this.writing = done.catch(() => undefined);
    return done;
  }

  private load(): Promise<Map<string, RecordedHostKey>> {
    this.keys ??= readFile(this.file, 'utf8').then(
      (text) => new Map(Object.entries(parseStore(text, this.file))),
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return new Map<string, RecordedHostKey>();
        throw err;
      },
    );
    // A failed read is tried again next time rather than remembered.
    this.keys.catch(() => (this.keys = undefined));
    return this.keys;
  }
}

function parseStore(text: string, file: string): Record<string, RecordedHostKey> {
  const parsed = JSON.parse(text) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${file} is not a JSON object of host keys`);
  const out: Record<string, RecordedHostKey> = {};
  for (const [oa, value] of Object.entries(parsed)) {
    const v = value as Partial<RecordedHostKey> | null;
    if (typeof v?.fingerprint !== 'string' || !SSH_FINGERPRINT.test(v.fingerprint)) throw new Error(`${file}: the entry of ${oa} holds no SHA256 fingerprint`);
    out[oa] = { fingerprint: v.fingerprint, firstSeen: typeof v.firstSeen === 'string' ? v.firstSeen : '' };
  }
  return out;
}

/** How a session checks the OA's key; see the top of this file. */
export interface HostKeyPolicy {
  /** `SHA256:…`: only this key. */
  pin?: string;
  /** Without a pin: the first key seen is kept here and required from then on. */
  store?: SshHostKeyStore;
}

/** What a check found: let the session go on, or why not. */
export type HostKeyVerdict =
  | { ok: true; how: 'pinned' | 'known' | 'first-use' | 'unverified'; fingerprint: string }
  | { ok: false; how: 'pin-mismatch' | 'changed'; fingerprint: string; expected: string; firstSeen?: string };

export async function checkHostKey(oa: string, fingerprint: string, policy: HostKeyPolicy): Promise<HostKeyVerdict> {
  if (policy.pin !== undefined) {
    const pin = normalizeSshFingerprint(policy.pin);
    return pin === fingerprint ? { ok: true, how: 'pinned', fingerprint } : { ok: false, how: 'pin-mismatch', fingerprint, expected: pin };
  }
  if (!policy.store) return { ok: true, how: 'unverified', fingerprint };
  const known = await policy.store.recorded(oa);
  if (known === undefined) {
    const kept = await policy.store.recordFirst(oa, fingerprint);
    if (kept.fingerprint === fingerprint) return { ok: true, how: 'first-use', fingerprint };
    return { ok: false, how: 'changed', fingerprint, expected: kept.fingerprint, firstSeen: kept.firstSeen };
  }
  if (known.fingerprint === fingerprint) return { ok: true, how: 'known', fingerprint };
  return { ok: false, how: 'changed', fingerprint, expected: known.fingerprint, firstSeen: known.firstSeen };
}
