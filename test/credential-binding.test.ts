// The matchers that decide where a credential may be sent (src/secrets/credential-binding.ts), and the bindings the
// secrets file, the environment and the lab's SOPS file give.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressAllowed, CredentialBindingError, parseAddressRule, parseBinding, parseUrlPrefix, urlAllowed } from '../src/secrets/credential-binding.ts';
import { Secrets } from '../src/secrets/secrets.ts';
import { ownCredentialProblem, reservedCredentials } from '../src/agent/credential-check.ts';
import type { AgentConfig } from '../src/agent/config.ts';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { encryptSopsYaml } from './fixtures/sops-encrypt.ts';

const rules = (...texts: string[]) => texts.map((t) => parseAddressRule('c', t));
const prefixes = (...texts: string[]) => texts.map((t) => parseUrlPrefix('c', t));

test('addresses: IPv4 networks, single addresses, ports, names; only canonical literals match networks', () => {
  const r = rules('10.77.1.0/24', '10.9.0.7:623', 'oa1.lab:22');
  const table: Array<[string, number, boolean]> = [
    ['10.77.1.0', 443, true],
    ['10.77.1.255', 1, true],
    ['10.77.2.1', 443, false],
    ['10.77.0.255', 443, false],
    ['10.9.0.7', 623, true],
    ['10.9.0.7', 443, false], // the rule names a port
    ['10.9.0.8', 623, false],
    ['oa1.lab', 22, true],
    ['OA1.LAB', 22, true],
    ['oa1.lab', 23, false],
    ['oa1.lab.', 22, false],
    ['oa1.lab.evil.com', 22, false],
    ['evil-oa1.lab', 22, false],
    // other spellings of an address are names: they match no network
    ['10.77.1', 443, false],
    ['167643393', 443, false],
    ['0x0a.77.1.1', 443, false],
    ['010.077.001.001', 443, false],
  ];
  for (const [address, port, allowed] of table) assert.equal(addressAllowed(r, address, port), allowed, `${address}:${port}`);
  assert.equal(addressAllowed(rules('0.0.0.0/0'), '203.0.113.9', 1), true);
  assert.equal(addressAllowed(rules('10.77.1.7'), '10.77.1.7', 22), true);
  assert.equal(addressAllowed(rules('10.77.1.7/32'), '10.77.1.6', 22), false);
  assert.equal(addressAllowed(rules('10.77.1.0/24'), 'fd00::1', 443), false);
  assert.equal(addressAllowed([], '10.77.1.1', 443), false, 'no rules: nowhere');
});

test('addresses: IPv6 networks, bracketed ports, mapped IPv4 kept apart', () => {
  const r = rules('fd00:77:1::/48', '[2001:db8::7]:443', '[fd00:99::/64]:623');
  const table: Array<[string, number, boolean]> = [
    ['fd00:77:1::1', 443, true],
    ['fd00:77:1:ffff:ffff:ffff:ffff:ffff', 1, true],
    ['fd00:77:2::1', 443, false],
    ['FD00:77:1:0:0:0:0:9', 443, true],
    ['2001:db8::7', 443, true],
    ['2001:db8::7', 80, false],
    ['2001:db8:0:0:0:0:0:7', 443, true],
    ['2001:db8::8', 443, false],
    ['fd00:99::5', 623, true],
    ['fd00:99::5', 443, false],
    ['fe80::1%eth0', 443, false],
    ['::ffff:10.77.1.1', 443, false],
  ];
  for (const [address, port, allowed] of table) assert.equal(addressAllowed(r, address, port), allowed, `[${address}]:${port}`);
  assert.equal(addressAllowed(rules('::ffff:10.77.1.0/120'), '::ffff:10.77.1.9', 443), true);
  assert.equal(addressAllowed(rules('::ffff:10.77.1.0/120'), '10.77.1.9', 443), false);
});

test('address rules that are wrong are refused with the credential named', () => {
  for (const bad of ['10.77.1.0/33', '10.77.1.0/x', '10.77.1.0/', 'fd00::/129', '10.0.0.1:0', '10.0.0.1:65536', '[fd00::1]:x', 'a b', 'host/24', '-x.lab']) {
    assert.throws(() => parseAddressRule('asgard-ilo', bad), (err: unknown) => err instanceof CredentialBindingError && /credential "asgard-ilo": address/.test(err.message), bad);
  }
});

test('URL prefixes: scheme, host and port exactly, the path by whole segments', () => {
  const p = prefixes('https://gitea.lab/api/v1', 'https://hooks.slack.com/services/');
  const table: Array<[string, boolean]> = [
    ['https://gitea.lab/api/v1/repos/a/b/statuses/0', true],
    ['https://gitea.lab/api/v1', true],
    ['https://GITEA.lab:443/api/v1/x', true],
    ['https://gitea.lab/api/v10/x', false],
    ['https://gitea.lab/api/v2/x', false],
    ['https://gitea.lab/api/v1/../../steal', false],
    ['https://gitea.lab/api/v1/%2e%2e/%2e%2e/steal', false],
    ['https://gitea.lab/api/v1/..%2f..%2fsteal', false],
    ['https://gitea.lab/api/v1/x%5c..%5c..', false],
    ['https://gitea.lab/api/v1\\..\\..\\steal', false],
    ['http://gitea.lab/api/v1/x', false],
    ['https://gitea.lab:8443/api/v1/x', false],
    ['https://gitea.lab@evil.example/api/v1/x', false],
    ['https://user:pw@gitea.lab/api/v1/x', false],
    ['https://gitea.lab.evil.com/api/v1/x', false],
    ['https://gitea.lab./api/v1/x', false],
    ['https://evil.example/https://gitea.lab/api/v1', false],
    ['https://evil.example#https://gitea.lab/api/v1', false],
    ['not a url', false],
    ['https://hooks.slack.com/services/T0/B0/x', true],
    ['https://hooks.slack.com/servicesX/T0', false],
    ['https://hooks.slack.com/services', false],
  ];
  for (const [url, allowed] of table) assert.equal(urlAllowed(p, url), allowed, url);
  assert.equal(urlAllowed(prefixes('https://[fd00::5]:8443/hook'), 'https://[fd00:0::5]:8443/hook/a'), true);
  assert.equal(urlAllowed(prefixes('https://[fd00::5]:8443/hook'), 'https://[fd00::6]:8443/hook/a'), false);
  assert.equal(urlAllowed(prefixes('http://127.0.0.1:9419/alerts'), 'http://127.0.0.1:9419/alerts'), true);
  assert.equal(urlAllowed(prefixes('http://127.0.0.1:9419/'), 'http://127.0.0.1:9419/anything'), true);
  for (const bad of ['ftp://x/', 'https://u:p@x/', 'https://x/?a=1', 'https://x/#f', 'x']) assert.throws(() => parseUrlPrefix('c', bad), CredentialBindingError, bad);
});

test('a binding: use with its destinations; no use is no binding; a wrong one is refused', () => {
  const b = parseBinding('ilo', { use: ['bmc'], addresses: ['10.77.1.0/24'], allowInsecureTls: true });
  assert.deepEqual([...(b?.use ?? [])], ['bmc']);
  assert.equal(b?.allowInsecureTls, true);
  assert.equal(parseBinding('legacy', { username: 'u', password: 'p' }), undefined);
  assert.deepEqual([...(parseBinding('git', { use: 'git' })?.use ?? [])], ['git']);
  const refused: Array<[Record<string, unknown>, RegExp]> = [
    [{ use: ['bmcx'] }, /use "bmcx" is not one of git, webhook, bmc, alerts, forge/],
    [{ use: [] }, /at least one/],
    [{ use: ['bmc'] }, /use bmc needs addresses/],
    [{ use: ['alerts'] }, /use alerts needs urls/],
    [{ use: ['forge'] }, /use forge needs urls/],
    [{ use: ['git'], addresses: ['10.0.0.0/8'] }, /addresses apply to use bmc only/],
    [{ use: ['bmc'], addresses: ['10.0.0.0/8'], urls: ['https://x/'] }, /urls apply to use alerts, forge and omni only/],
    [{ use: ['omni'] }, /use omni needs urls: .*siderolink/],
    [{ addresses: ['10.0.0.0/8'] }, /addresses without use/],
    [{ use: ['bmc'], addresses: ['10.0.0.0/8'], allowInsecureTls: 'yes' }, /allowInsecureTls must be true or false/],
    [{ use: ['bmc'], addresses: [7] }, /addresses must be a list of strings/],
  ];
  for (const [entry, message] of refused) assert.throws(() => parseBinding('c', entry), message, JSON.stringify(entry));
});

test('the secrets file and the environment give bindings; a wrong one stops the load', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-binding-'));
  try {
    const file = join(dir, 'secrets.yaml');
    writeFileSync(file, 'ilo: {username: a, password: b, use: [bmc], addresses: [10.77.1.0/24]}\nold: {username: a, password: c}\n');
    const env = { FORSETI_CREDENTIAL_STATUS_USERNAME: 'x', FORSETI_CREDENTIAL_STATUS_PASSWORD: 'tok', FORSETI_CREDENTIAL_STATUS_USE: 'alerts', FORSETI_CREDENTIAL_STATUS_URLS: 'https://gitea.lab/api/v1, https://gitea2.lab/api/v1' };
    const secrets = await Secrets.load(file, env);
    assert.equal(secrets.origin('ilo')?.source, 'secrets file');
    assert.equal(addressAllowed(secrets.origin('ilo')?.binding?.addresses ?? [], '10.77.1.4', 443), true);
    assert.equal(secrets.origin('old')?.binding, undefined);
    assert.equal(secrets.origin('status')?.source, 'environment');
    assert.equal(urlAllowed(secrets.origin('status')?.binding?.urls ?? [], 'https://gitea2.lab/api/v1/x'), true);
    assert.equal(secrets.origin('nothing'), undefined);
    assert.deepEqual(secrets.unbound(), ['old']);
    writeFileSync(file, 'ilo: {username: a, password: b, use: [bmc]}\n');
    await assert.rejects(Secrets.load(file, {}), /credential "ilo": use bmc needs addresses/);
    await assert.rejects(Secrets.load(undefined, { ...env, FORSETI_CREDENTIAL_STATUS_ALLOW_INSECURE_TLS: 'maybe' }), /credential "STATUS": allowInsecureTls must be true or false/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the lab\'s SOPS file binds its credentials only where its MAC covers the binding', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-binding-sops-'));
  try {
    const identity = await generateIdentity();
    const recipient = await identityToRecipient(identity);
    const env = { FORSETI_AGE_KEY: identity };
    const entry = { username: 'Administrator', password: 'oa-pass', use: ['bmc'], addresses: ['10.77.1.0/24'] };
    const origin = async (sops: string) => {
      writeFileSync(join(dir, 'secrets.sops.yaml'), sops);
      return (await (await Secrets.load(undefined, env)).withLab(dir)).origin('oa');
    };
    // every value encrypted and in the MAC
    let o = await origin(await encryptSopsYaml({ oa: entry, unbound: { username: 'u', password: 'p' } }, [recipient]));
    assert.equal(o?.source, 'secrets.sops.yaml');
    assert.equal(addressAllowed(o?.binding?.addresses ?? [], '10.77.1.9', 22), true);
    // the addresses in clear, but in the MAC: a committer cannot change them without the data key
    o = await origin(await encryptSopsYaml({ oa: entry }, [recipient], { unencryptedSuffix: 'addresses' }));
    assert.equal(addressAllowed(o?.binding?.addresses ?? [], '10.77.1.9', 22), true);
    // in clear and outside the MAC (mac_only_encrypted): anyone could have written them, so no binding
    const open = await encryptSopsYaml({ oa: entry }, [recipient], { unencryptedSuffix: 'addresses', macOnlyEncrypted: true });
    assert.match(open, /mac_only_encrypted: true/);
    assert.match(open, /- 10\.77\.1\.0\/24/);
    o = await origin(open);
    assert.equal(o?.binding, undefined);
    assert.match(o?.problem ?? '', /its addresses is not covered by the SOPS MAC/);
    assert.equal((await origin(open.replace('10.77.1.0/24', '0.0.0.0/0')))?.binding, undefined, 'the changed clear value verifies, and still binds nothing');
    // a wrong binding in the lab's file leaves the entry unbound, with why; it does not stop the agent
    o = await origin(await encryptSopsYaml({ oa: { ...entry, use: ['bmcx'] } }, [recipient]));
    assert.equal(o?.binding, undefined);
    assert.match(o?.problem ?? '', /use "bmcx" is not one of/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the agent\'s own credentials: the forge token is reserved, bound to use forge only and to URLs that allow the forge\'s API', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-binding-own-'));
  try {
    const forge = { type: 'gitea' as const, api: 'https://gitea.lab/api/v1', repository: 'lab/lab', credential: 'forge-token', labels: [] };
    const config = { lab: { url: 'https://gitea.lab/lab/lab.git', branch: 'main' }, discovery: { forge } } as unknown as Pick<AgentConfig, 'lab' | 'webhook' | 'discovery'>;
    const problemWith = async (entry: string): Promise<string | undefined> => {
      writeFileSync(join(dir, 'secrets.yaml'), `forge-token: ${entry}\n`);
      return ownCredentialProblem(config, await Secrets.load(join(dir, 'secrets.yaml'), {}));
    };
    assert.equal(reservedCredentials(config).get('forge-token'), 'discovery.forge.credential (its forge API token)');
    assert.equal(await problemWith('{username: t, password: p, use: [forge], urls: [https://gitea.lab/api]}'), undefined);
    assert.match(await problemWith('{username: t, password: p, use: [forge, alerts], urls: [https://gitea.lab/api]}') ?? '', /may say use: \[forge\] only/);
    assert.match(await problemWith('{username: t, password: p, use: [forge], urls: [https://gitea.evil/api]}') ?? '', /its urls do not allow discovery\.forge\.api https:\/\/gitea\.lab\/api\/v1/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
