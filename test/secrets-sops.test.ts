// Credentials from the lab's SOPS file (age): files written by sops itself, files from our own encryptor,
// tampering, wrong keys, and the order secrets file > environment > SOPS.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { armor, Decrypter, generateIdentity, identityToRecipient } from 'age-encryption';
import { CredentialMissingError, Secrets } from '../src/secrets/secrets.ts';
import { decryptSopsYaml, goFormatFloat, SopsError } from '../src/secrets/sops.ts';
import { encryptSopsYaml } from './fixtures/sops-encrypt.ts';

const VECTORS = fileURLToPath(new URL('./fixtures/sops/', import.meta.url));
/** Public test identity of the vectors (see fixtures/sops/README.md). */
const VECTOR_IDENTITY = 'AGE-SECRET-KEY-1EQUCGFZH8UZKSZ0Z5N5T234YRNDT4U9H7QNYXWRRNJYDDVXE6FWSCPGNJ7';

describe('SOPS files written by sops', () => {
  it('decrypts with unencrypted_regex: ints and strings in the MAC, only matching keys in clear', async () => {
    const text = await readFile(join(VECTORS, 'age_unencrypted_regex.yaml'), 'utf8');
    const tree = await decryptSopsYaml(text, [VECTOR_IDENTITY]);
    assert.deepEqual(JSON.parse(JSON.stringify(tree)), { a: { unencrypted_1: { a: 'aaa', b: 'aaa', c: [123, 456] }, encrypted: 'xxx' }, b: 'xxx' });
  });

  it('decrypts with encrypted_suffix', async () => {
    const text = await readFile(join(VECTORS, 'age_encrypted_suffix.yaml'), 'utf8');
    const tree = await decryptSopsYaml(text, [VECTOR_IDENTITY]);
    assert.deepEqual(JSON.parse(JSON.stringify(tree)), {
      a: { '1_encrypted': { a: 'xxx', b: 'xxx' }, '2_plain': 'aaa', '3_nested_encrypted': { a: { i: 'xxx' }, b: { ii: 'xxx' } } },
      b_encrypted: 'xxx',
    });
  });

  it('a changed clear value fails the MAC; a moved encrypted value fails its path check', async () => {
    const text = await readFile(join(VECTORS, 'age_unencrypted_regex.yaml'), 'utf8');
    await assert.rejects(decryptSopsYaml(text.replace('    - 456', '    - 457'), [VECTOR_IDENTITY]), /MAC mismatch/);
    const encryptedB = /^b: (ENC\[.*\])$/m.exec(text)![1]!;
    const moved = text.replace(/^  encrypted: ENC\[.*\]$/m, `  encrypted: ${encryptedB}`);
    await assert.rejects(decryptSopsYaml(moved, [VECTOR_IDENTITY]), (err: Error) => err instanceof SopsError && /a\.encrypted/.test(err.message));
  });

  it('an identity that is not a recipient is refused, naming the recipients', async () => {
    const text = await readFile(join(VECTORS, 'age_unencrypted_regex.yaml'), 'utf8');
    await assert.rejects(decryptSopsYaml(text, [await generateIdentity()]), /none of the configured age identities.*age1se5ghfy/);
  });

  it('age-encryption opens a data key encrypted by Go age (getsops/sops age/keysource_test.go)', async () => {
    const enc = `-----BEGIN AGE ENCRYPTED FILE-----
YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBvY2t2NkdLUGRvY3l2OGNy
MVJWcUhCOEZrUG8yeCtnRnhxL0I5NFk4YjJFCmE4SVQ3MEdyZkFqRWpSa2F0NVhF
VDUybzBxdS9nSGpHSVRVMUI0UEVqZkkKLS0tIGJjeGhNQ0Y5L2VZRVVYSm90djFF
bzdnQ3UwTGljMmtrbWNMV1MxYkFzUFUK4xjOZOTGdcbzuwUY/zeBXhcF+Md3e5PQ
EylloI7MNGbadPGb
-----END AGE ENCRYPTED FILE-----`;
    const d = new Decrypter();
    d.addIdentity('AGE-SECRET-KEY-1G0Q5K9TV4REQ3ZSQRMTMG8NSWQGYT0T7TZ33RAZEE0GZYVZN0APSU24RK7');
    assert.equal(await d.decrypt(armor.decode(enc), 'text'), 'data');
  });

  it('formats floats for the MAC like Go (no exponent)', () => {
    assert.equal(goFormatFloat(1.5), '1.5');
    assert.equal(goFormatFloat(1e21), '1000000000000000000000');
    assert.equal(goFormatFloat(1.25e-7), '0.000000125');
    assert.equal(goFormatFloat(-3), '-3');
  });
});

describe('Secrets with the lab repository\'s secrets.sops.yaml', () => {
  let dir: string;
  let identity: string;
  let keyFile: string;
  const PASSWORD = 'oa-s3cret-never-shown';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fsecrets-'));
    identity = await generateIdentity();
    keyFile = join(dir, 'age.key');
    await writeFile(keyFile, `# created by the test\n# public key: ${await identityToRecipient(identity)}\n${identity}\n`, { mode: 0o600 });
    const sops = await encryptSopsYaml(
      {
        'asgard-oa': { username: 'Administrator', password: PASSWORD },
        'oden-imm': { username: 'USERID', password: 'imm-pass' },
        note_unencrypted: 'kept in clear',
        port: 22,
        flag: true,
      },
      [await identityToRecipient(await generateIdentity()), await identityToRecipient(identity)],
    );
    await writeFile(join(dir, 'secrets.sops.yaml'), sops);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('our encryptor\'s file keeps passwords out of the clear and decrypts back', async () => {
    const text = await readFile(join(dir, 'secrets.sops.yaml'), 'utf8');
    assert.ok(!text.includes(PASSWORD));
    assert.match(text, /note_unencrypted: kept in clear/);
    const tree = await decryptSopsYaml(text, [identity]);
    assert.deepEqual(JSON.parse(JSON.stringify(tree))['asgard-oa'], { username: 'Administrator', password: PASSWORD });
    assert.equal(tree['port'], 22);
    assert.equal(tree['flag'], true);
  });

  it('resolves a credential from SOPS with FORSETI_AGE_KEY_FILE', async () => {
    const secrets = await (await Secrets.load(undefined, { FORSETI_AGE_KEY_FILE: keyFile })).withLab(dir);
    assert.deepEqual(secrets.resolve('asgard-oa', 'bld-001'), { username: 'Administrator', password: PASSWORD });
    assert.equal(secrets.sopsProblem, undefined);
  });

  it('the agent\'s secrets file wins over the environment, which wins over SOPS', async () => {
    const file = join(dir, 'local.yaml');
    await writeFile(file, 'asgard-oa: {username: local, password: local-pass}\n');
    const env = { FORSETI_CREDENTIAL_ODEN_IMM_USERNAME: 'envuser', FORSETI_CREDENTIAL_ODEN_IMM_PASSWORD: 'env-pass' };
    const secrets = await (await Secrets.load(file, env, { ageKeyFile: keyFile })).withLab(dir);
    assert.equal(secrets.resolve('asgard-oa').username, 'local');
    assert.equal(secrets.resolve('oden-imm').username, 'envuser');
  });

  it('without the right age key, a missing credential says why SOPS gave nothing, and no secret', async () => {
    const otherKey = join(dir, 'other.key');
    await writeFile(otherKey, `${await generateIdentity()}\n`);
    const secrets = await (await Secrets.load(undefined, {}, { ageKeyFile: otherKey })).withLab(dir);
    assert.throws(
      () => secrets.resolve('asgard-oa', 'bld-001'),
      (err: Error) => err instanceof CredentialMissingError && /bld-001/.test(err.message) && /not a recipient|none of the configured/.test(err.message) && !err.message.includes(PASSWORD),
    );
    const none = await (await Secrets.load(undefined, {})).withLab(dir);
    assert.match(none.sopsProblem ?? '', /no age identity is configured/);
  });

  it('a lab without secrets.sops.yaml is fine', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'fsecrets-empty-'));
    try {
      const secrets = await (await Secrets.load(undefined, {})).withLab(empty);
      assert.equal(secrets.sopsProblem, undefined);
      assert.throws(() => secrets.resolve('x'), CredentialMissingError);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
