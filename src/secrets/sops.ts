// Decrypts SOPS files (getsops/sops) in YAML format whose data key is encrypted for age recipients, the way
// sops itself does it: the data key from `sops.age[].enc` (age, ASCII-armored); every leaf value
// `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` with AES-256-GCM under that key, the leaf's path as additional
// data (`key1:key2:` — keys joined with ":" plus a trailing ":", sequence indices not part of it); and the MAC:
// SHA-512 over every plaintext leaf in document order, upper-case hex, stored encrypted with the file's
// `lastmodified` as additional data. A file whose MAC does not match is rejected whole.
import { createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';
import { armor, Decrypter } from 'age-encryption';
import { isAlias, isMap, isPair, isScalar, isSeq, parseAllDocuments } from 'yaml';
import type { Document, YAMLMap } from 'yaml';

/** Anything wrong with a SOPS file; names the file, never a decrypted value. */
export class SopsError extends Error {
  override readonly name = 'SopsError';
  constructor(readonly file: string, message: string, options?: { cause?: unknown }) {
    super(`${file}: ${message}`, options);
  }
}

/** sops's default when a file names no suffix or regex. */
const DEFAULT_UNENCRYPTED_SUFFIX = '_unencrypted';
/** sops.go: MACOnlyEncryptedInitialization, so a MAC over encrypted values only never equals one over all. */
export const MAC_ONLY_ENCRYPTED_INIT = Buffer.from([
  0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b, 0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad,
  0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
]);
const ENCRYPTED_VALUE = /^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]/;

interface Rules {
  unencryptedSuffix?: string;
  encryptedSuffix?: string;
  unencryptedRegex?: RegExp;
  encryptedRegex?: RegExp;
  macOnlyEncrypted: boolean;
}

export type SopsValue = string | number | boolean | null | Buffer | SopsValue[] | { [key: string]: SopsValue };

/** The age identities (`AGE-SECRET-KEY-1…`) in an age key file; comments and blank lines skipped. */
export function parseAgeIdentities(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

export interface DecryptOptions {
  /** Told the path of every value the MAC does not cover (plain values of a `mac_only_encrypted` file): anyone could have written it. */
  unauthenticated?: (path: readonly string[]) => void;
}

/** The decrypted document of a SOPS YAML file, without its `sops` metadata. */
export async function decryptSopsYaml(text: string, identities: string[], file = 'secrets.sops.yaml', options: DecryptOptions = {}): Promise<Record<string, SopsValue>> {
  const docs = parseAllDocuments(text, { uniqueKeys: false }); // keys: checked in linear time by the lab loader before (yaml compares each with every earlier one)
  if (!Array.isArray(docs)) throw new SopsError(file, 'not a YAML stream');
  if (docs.length !== 1) throw new SopsError(file, `has ${docs.length} YAML documents; only single-document files are supported`);
  const doc = docs[0] as Document.Parsed;
  if (doc.errors.length > 0) throw new SopsError(file, `YAML syntax: ${doc.errors[0]?.message ?? 'error'}`);
  const root = doc.contents;
  if (!isMap(root)) throw new SopsError(file, 'the document must be a mapping');
  const metadata = root.get('sops', true);
  if (!isMap(metadata)) throw new SopsError(file, 'has no sops metadata: not a SOPS file');

  const meta = readMetadata(metadata, file);
  const dataKey = await decryptDataKey(meta.age, identities, file);
  const hash = createHash('sha512');
  if (meta.rules.macOnlyEncrypted) hash.update(MAC_ONLY_ENCRYPTED_INIT);

  const walk = (node: unknown, path: string[]): SopsValue => {
    if (isAlias(node)) return walk(node.resolve(doc), path);
    if (isMap(node)) return walkMap(node, path);
    if (isSeq(node)) return node.items.map((item) => walk(item, path));
    if (!isScalar(node)) throw new SopsError(file, `unsupported YAML node at ${describePath(path)}`);
    const raw = node.value;
    if (raw === null || raw === undefined) return null; // sops neither decrypts nor MACs a null
    const encrypted = shouldBeEncrypted(path, meta.rules);
    const value = encrypted ? decryptLeaf(raw, dataKey, path, file) : (plainLeaf(raw, path, file) as SopsValue);
    if (!meta.rules.macOnlyEncrypted || encrypted) hash.update(macBytes(value));
    else options.unauthenticated?.(path);
    return value;
  };
  const walkMap = (map: YAMLMap, path: string[]): { [key: string]: SopsValue } => {
    const out: { [key: string]: SopsValue } = Object.create(null) as { [key: string]: SopsValue };
    for (const pair of map.items) {
      if (!isPair(pair)) continue;
      const key = isScalar(pair.key) ? pair.key.value : pair.key;
      if (typeof key !== 'string') throw new SopsError(file, `a key under ${describePath(path)} is not a string; sops supports string keys only`);
      if (path.length === 0 && key === 'sops') continue;
      out[key] = walk(pair.value, [...path, key]);
    }
    return out;
  };

  const tree = walkMap(root, []);
  const computed = hash.digest('hex').toUpperCase();
  if (typeof meta.mac !== 'string' || meta.mac === '') throw new SopsError(file, 'has no MAC (sops.mac); refusing an unauthenticated file');
  let stored: string;
  try {
    stored = String(decryptValue(meta.mac, dataKey, meta.lastModified));
  } catch (err) {
    throw new SopsError(file, 'the MAC cannot be decrypted: the file was modified or its lastmodified changed', { cause: err });
  }
  if (stored.length !== computed.length || !timingSafeEqual(Buffer.from(stored), Buffer.from(computed))) {
    throw new SopsError(file, 'MAC mismatch: the file was modified after it was encrypted');
  }
  return tree;
}

interface Metadata {
  age: Array<{ recipient: string; enc: string }>;
  lastModified: string;
  mac: string | undefined;
  rules: Rules;
}

function readMetadata(metadata: YAMLMap, file: string): Metadata {
  const str = (key: string): string | undefined => {
    const node = metadata.get(key, true);
    if (node === undefined || node === null) return undefined;
    if (!isScalar(node)) throw new SopsError(file, `sops.${key} must be a scalar`);
    // The core schema (yaml's default) has no timestamps: lastmodified stays the exact string sops wrote.
    return String(node.value);
  };
  if (metadata.get('key_groups') !== undefined) throw new SopsError(file, 'uses key_groups (Shamir secret sharing), which forseti does not support');
  for (const key of ['unencrypted_comment_regex', 'encrypted_comment_regex']) {
    if (str(key)) throw new SopsError(file, `uses sops.${key}, which forseti does not support`);
  }
  const ageNode = metadata.get('age', true);
  const age: Metadata['age'] = [];
  if (isSeq(ageNode)) {
    for (const item of ageNode.items) {
      if (!isMap(item)) continue;
      const recipient = item.get('recipient');
      const enc = item.get('enc');
      if (typeof enc === 'string') age.push({ recipient: typeof recipient === 'string' ? recipient : '?', enc });
    }
  }
  if (age.length === 0) throw new SopsError(file, 'has no age recipients (sops.age); forseti decrypts age-encrypted SOPS files only');
  const lastModified = str('lastmodified');
  if (!lastModified) throw new SopsError(file, 'has no sops.lastmodified');
  const regex = (key: string): RegExp | undefined => {
    const pattern = str(key);
    if (!pattern) return undefined;
    try {
      return new RegExp(pattern);
    } catch {
      throw new SopsError(file, `sops.${key} is not a regular expression forseti can use`);
    }
  };
  const rules: Rules = { macOnlyEncrypted: metadata.get('mac_only_encrypted') === true };
  const unencryptedSuffix = str('unencrypted_suffix');
  const encryptedSuffix = str('encrypted_suffix');
  const unencryptedRegex = regex('unencrypted_regex');
  const encryptedRegex = regex('encrypted_regex');
  if (unencryptedSuffix) rules.unencryptedSuffix = unencryptedSuffix;
  if (encryptedSuffix) rules.encryptedSuffix = encryptedSuffix;
  if (unencryptedRegex) rules.unencryptedRegex = unencryptedRegex;
  if (encryptedRegex) rules.encryptedRegex = encryptedRegex;
  if (!unencryptedSuffix && !encryptedSuffix && !unencryptedRegex && !encryptedRegex) rules.unencryptedSuffix = DEFAULT_UNENCRYPTED_SUFFIX;
  return { age, lastModified, mac: str('mac'), rules };
}

async function decryptDataKey(age: Metadata['age'], identities: string[], file: string): Promise<Buffer> {
  if (identities.length === 0) throw new SopsError(file, 'no age identity is configured (FORSETI_AGE_KEY_FILE or the agent\'s ageKeyFile)');
  const decrypter = new Decrypter();
  for (const identity of identities) {
    try {
      decrypter.addIdentity(identity);
    } catch (err) {
      throw new SopsError(file, 'an age identity is malformed (expected AGE-SECRET-KEY-1…)', { cause: err });
    }
  }
  for (const { enc } of age) {
    try {
      const key = Buffer.from(await decrypter.decrypt(armor.decode(enc)));
      if (key.length !== 32) throw new SopsError(file, `the data key is ${key.length} bytes, expected 32`);
      return key;
    } catch (err) {
      if (err instanceof SopsError) throw err;
      // Not for our identities: try the next recipient.
    }
  }
  throw new SopsError(file, `none of the configured age identities is a recipient of this file (recipients: ${age.map((a) => a.recipient).join(', ')})`);
}

function shouldBeEncrypted(path: string[], rules: Rules): boolean {
  let encrypted = true;
  if (rules.unencryptedSuffix !== undefined && path.some((k) => k.endsWith(rules.unencryptedSuffix!))) encrypted = false;
  if (rules.encryptedSuffix !== undefined) encrypted = path.some((k) => k.endsWith(rules.encryptedSuffix!));
  if (rules.unencryptedRegex !== undefined && path.some((k) => rules.unencryptedRegex!.test(k))) encrypted = false;
  if (rules.encryptedRegex !== undefined) encrypted = path.some((k) => rules.encryptedRegex!.test(k));
  return encrypted;
}

function decryptLeaf(raw: unknown, key: Buffer, path: string[], file: string): SopsValue {
  if (raw === '') return ''; // sops leaves an empty string as it is
  if (typeof raw !== 'string') throw new SopsError(file, `the value at ${describePath(path)} should be encrypted but is not`);
  try {
    return decryptValue(raw, key, `${path.join(':')}:`);
  } catch (err) {
    throw new SopsError(file, `cannot decrypt the value at ${describePath(path)}: ${err instanceof Error ? err.message : 'error'}`, { cause: err });
  }
}

/** One `ENC[AES256_GCM,…]` value (aes/cipher.go: Decrypt). */
function decryptValue(text: string, key: Buffer, additionalData: string): SopsValue {
  const m = ENCRYPTED_VALUE.exec(text);
  if (!m) throw new Error('not in sops\'s ENC[AES256_GCM,…] format');
  const [data, iv, tag] = [m[1]!, m[2]!, m[3]!].map((b64) => Buffer.from(b64, 'base64'));
  const type = m[4]!;
  const decipher = createDecipheriv('aes-256-gcm', key, iv!);
  decipher.setAAD(Buffer.from(additionalData, 'utf8'));
  decipher.setAuthTag(tag!);
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(data!), decipher.final()]);
  } catch {
    throw new Error('authentication failed (wrong data key, or the value was moved or altered)');
  }
  const s = plain.toString('utf8');
  switch (type) {
    case 'str':
      return s;
    case 'int':
    case 'int64':
    case 'float':
      return Number(s);
    case 'bool':
      return /^(1|t|T|TRUE|true|True)$/.test(s);
    case 'bytes':
      return plain;
    default:
      throw new Error(`unknown value type "${type}"`);
  }
}

function plainLeaf(raw: unknown, path: string[], file: string): SopsValue {
  if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') return raw;
  if (typeof raw === 'bigint') return Number(raw);
  throw new SopsError(file, `the value at ${describePath(path)} has a type sops does not support`);
}

/** sops.go ToBytes: what a leaf contributes to the MAC. */
function macBytes(value: SopsValue): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (typeof value === 'boolean') return Buffer.from(value ? 'True' : 'False');
  if (typeof value === 'number') return Buffer.from(goFormatFloat(value));
  return Buffer.alloc(0);
}

/** Go's strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never an exponent. */
export function goFormatFloat(v: number): string {
  const s = String(v);
  if (!/e/i.test(s)) return s;
  const [mantissa, exponentText] = s.toLowerCase().split('e') as [string, string];
  const exponent = Number(exponentText);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  const point = (mantissa.replace('-', '').indexOf('.') === -1 ? mantissa.replace('-', '').length : mantissa.replace('-', '').indexOf('.')) + exponent;
  let out: string;
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return negative ? `-${out}` : out;
}

function describePath(path: string[]): string {
  return path.length === 0 ? 'the top level' : path.join('.');
}
