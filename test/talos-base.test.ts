// The template's Talos roles with their bases (`boot.config.talosBase`): the configs `talosctl gen config
// --with-secrets` writes (test/fixtures/talos/, fake keys), SOPS-encrypted here for an age key made for the test.
// Every Talos host of the template gets a complete multi-document config with its own values and the event sink;
// `render --what config` and `plan` show no secret; a base that is broken or does not decrypt is refused at its line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { parse, stringify } from 'yaml';
import { loadLab, formatProblem } from '../src/model/load.ts';
import type { Lab } from '../src/model/types.ts';
import { renderHost, RenderError } from '../src/render/host.ts';
import { AgentUrls } from '../src/render/urls.ts';
import { checkTalosConfig, parseConfigDocuments, talosConfigSecrets, TalosBaseResolver, type TalosBase } from '../src/render/talos/index.ts';
import { talosHostValues } from '../src/render/talos-role-config.ts';
import { parseCidr } from '../src/render/net.ts';
import { openTalosBases } from '../src/agent/talos-bases.ts';
import { Secrets } from '../src/secrets/secrets.ts';
import { encryptSopsYaml } from './fixtures/sops-encrypt.ts';
import { runForseti, ROOT } from './fixtures/forseti-cli.ts';
import { git } from './fixtures/git/git-cli.ts';

const fixture = (name: string): string => readFileSync(join(ROOT, 'test/fixtures/talos', name), 'utf8');
const FAKE = JSON.parse(fixture('fake-secrets.json')) as { secrets: Record<string, string> };
const SECRETS = Object.values(FAKE.secrets);
const ROLES = ['controlplane', 'worker'] as const;

let work: string;
let identity: string;
let recipient: string;

/** The template with its Talos bases encrypted for `recipients` and the profiles' talosBase lines uncommented. */
async function templateWithBases(dir: string, recipients: string[]): Promise<void> {
  cpSync(join(ROOT, 'lab-repo-template'), dir, { recursive: true });
  for (const role of ROLES) {
    const plain = parse(fixture(`${role}.yaml`)) as Record<string, never>;
    writeFileSync(join(dir, `configs/talos-${role}.sops.yaml`), await encryptSopsYaml(plain, recipients));
    enableBase(dir, role);
  }
}

function enableBase(dir: string, role: string): void {
  const file = join(dir, `profiles/talos-${role}.yaml`);
  const text = readFileSync(file, 'utf8');
  const next = text.replace(`# talosBase: configs/talos-${role}.sops.yaml`, `talosBase: configs/talos-${role}.sops.yaml`);
  assert.notEqual(next, text, `the template's ${role} profile has a talosBase line to uncomment`);
  writeFileSync(file, next);
}

async function load(dir: string): Promise<Lab> {
  const { lab, problems } = await loadLab(dir);
  assert.ok(lab, problems.map(formatProblem).join('\n'));
  return lab;
}

const talosHosts = (lab: Lab): string[] => [...lab.hosts.values()].filter((h) => h.role.startsWith('talos-')).map((h) => h.name);

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'forseti-talos-base-'));
  identity = await generateIdentity();
  recipient = await identityToRecipient(identity);
});
after(() => rmSync(work, { recursive: true, force: true }));

test('every Talos host of the template is served a complete multi-document config with its own values and the event sink', async () => {
  const dir = join(work, 'served');
  await templateWithBases(dir, [recipient]);
  const lab = await load(dir);
  const bases = await new TalosBaseResolver().resolve(lab, [identity]);
  assert.deepEqual([...bases.keys()].sort(), ['configs/talos-controlplane.sops.yaml', 'configs/talos-worker.sops.yaml']);
  const urls = new AgentUrls(lab.site, { talosEventsPort: 4002 });
  const hosts = talosHosts(lab);
  assert.ok(hosts.includes('oden') && hosts.includes('bld-003'), `Talos hosts: ${hosts.join(', ')}`);
  for (const name of hosts) {
    const host = lab.hosts.get(name)!;
    const rendered = renderHost(host, { lab, urls, revision: 'r1', token: () => 'T', talosBases: bases });
    const text = rendered.config?.content ?? '';
    const values = talosHostValues({ host, profile: lab.profiles.get(host.role)!, ctx: { lab, urls, revision: 'r1', token: () => 'T' }, hostname: `${name}.${lab.site.network.domain}`, prefix: parseCidr(lab.site.network.subnet).prefix, eventSink: '10.77.0.5:4002' });
    assert.deepEqual(checkTalosConfig(text, values), [], `${name}'s config is one a node accepts, with its own values`);
    const docs = parseConfigDocuments(text);
    const main = docs.find((d) => d.key === 'v1alpha1')!.body as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- a parsed config, read field by field
    assert.equal(main['machine'].network.hostname, `${name}.lab.home.arpa`);
    assert.equal(main['machine'].install.disk, `/dev/${host.hardware.disks[0]!.name}`);
    assert.deepEqual(main['machine'].network.interfaces.filter((i: any) => i.deviceSelector?.hardwareAddr === host.macs[0]).map((i: any) => i.addresses), [[`${host.ip}/24`]]); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(main['cluster'].clusterName, 'homelab', 'the profile\'s patch is merged over the base');
    assert.deepEqual(docs.filter((d) => d.key !== 'v1alpha1').map((d) => d.body), [{ apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: '10.77.0.5:4002' }]);
    assert.equal(main['machine'].token, FAKE.secrets['machineToken'], 'the served config carries the cluster\'s secrets');
    assert.equal(rendered.config?.secret, true);
    assert.match(rendered.cmdline ?? '', / talos\.events\.sink=10\.77\.0\.5:4002 /);
    // The same host, for people: every secret a placeholder, still the same documents.
    const shown = renderHost(host, { lab, urls, revision: 'r1', token: () => 'T', talosBases: bases, redactConfigs: true });
    for (const s of [...SECRETS, ...talosConfigSecrets(text)]) assert.ok(!shown.config!.content.includes(s), `${name}: ${s.slice(0, 12)}… is not shown`);
    assert.equal(shown.desired.digest, rendered.desired.digest, 'what is shown does not change what the agent decides');
    assert.equal(parseConfigDocuments(shown.config!.content).length, docs.length);
  }
});

test('render --what config and plan show no secret, with or without the agent\'s key', async () => {
  const repo = join(work, 'repo');
  cpSync(join(ROOT, 'lab-repo-template'), repo, { recursive: true });
  await git(['init', '-q', '-b', 'main'], repo);
  await git(['add', '-A'], repo);
  await git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'template'], repo);
  await git(['checkout', '-q', '-b', 'pr'], repo);
  for (const role of ROLES) {
    writeFileSync(join(repo, `configs/talos-${role}.sops.yaml`), await encryptSopsYaml(parse(fixture(`${role}.yaml`)) as Record<string, never>, [recipient]));
    enableBase(repo, role);
  }
  await git(['add', '-A'], repo);
  await git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'talos bases'], repo);
  const before = process.env['FORSETI_AGE_KEY'];
  process.env['FORSETI_AGE_KEY'] = identity; // inherited by the CLI: even with the key at hand, nothing secret is printed
  try {
    const rendered = await runForseti(['render', '--host', 'oden', '--what', 'config', repo]);
    assert.equal(rendered.code, 0, rendered.stderr);
    const docs = parseConfigDocuments(rendered.stdout);
    assert.equal((docs[0]!.body['machine'] as Record<string, any>)['network'].hostname, 'oden.lab.home.arpa'); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.match(rendered.stdout, /token: "?\[redacted\]"?/);
    assert.match(rendered.stdout, /endpoint: https:\/\/10\.77\.0\.10:6443/, 'decrypted with the key: non-secret values are shown');
    const plan = await runForseti(['plan', '--base', 'main', '--head', 'pr', repo]);
    assert.equal(plan.code, 1, plan.stderr); // 1: the plan has changes
    assert.match(plan.stdout, /config-controlplane\.yaml/);
    const json = await runForseti(['plan', '--base', 'main', '--head', 'pr', '--format', 'json', repo]);
    // A new join token: only encrypted values change, and the plan still says the config changes (its digest line).
    await git(['checkout', '-q', '-b', 'rotate'], repo);
    const rotated = { ...(parse(fixture('controlplane.yaml')) as Record<string, any>) }; // eslint-disable-line @typescript-eslint/no-explicit-any -- a parsed config
    rotated['machine'] = { ...rotated['machine'], token: 'zz9zzz.rotatedforsetitok' };
    writeFileSync(join(repo, 'configs/talos-controlplane.sops.yaml'), await encryptSopsYaml(rotated as Record<string, never>, [recipient]));
    await git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', 'rotate the machine token'], repo);
    const rotation = await runForseti(['plan', '--base', 'pr', '--head', 'rotate', repo]);
    assert.equal(rotation.code, 1, rotation.stderr);
    assert.match(rotation.stdout, /^\+# encrypted values not shown; the base as committed: sha256:[0-9a-f]{64}$/m);
    assert.ok(!rotation.stdout.includes('zz9zzz.rotatedforsetitok'));
    for (const out of [rendered.stdout, plan.stdout, plan.stderr, json.stdout, rendered.stderr, rotation.stdout]) {
      for (const s of SECRETS) assert.ok(!out.includes(s), `${s.slice(0, 12)}… does not appear`);
    }
  } finally {
    if (before === undefined) delete process.env['FORSETI_AGE_KEY'];
    else process.env['FORSETI_AGE_KEY'] = before;
  }
  const withoutKey = await runForseti(['render', '--host', 'bld-003', '--what', 'config', repo]);
  assert.equal(withoutKey.code, 0, withoutKey.stderr);
  assert.match(withoutKey.stdout, /hostname: bld-003\.lab\.home\.arpa/);
  for (const s of SECRETS) assert.ok(!withoutKey.stdout.includes(s));
});

test('a base that is not SOPS, not YAML or not the v1alpha1 document is refused at its file and line by validation', async () => {
  const cases: Array<[string, string, RegExp]> = [
    ['plain', fixture('controlplane.yaml'), /^configs\/talos-controlplane\.sops\.yaml:1:1: .*not SOPS-encrypted/m],
    ['syntax', 'version: ENC[x]\nmachine: [unclosed\nsops: {}\n', /^configs\/talos-controlplane\.sops\.yaml:\d+:\d+: /m],
    ['multi', 'version: ENC[x]\nsops: {age: []}\n---\napiVersion: v1alpha1\nkind: HostnameConfig\n', /^configs\/talos-controlplane\.sops\.yaml:3:1: a Talos base is one document, the v1alpha1 one: move the other documents/m],
    ['missing', '', /profiles\/talos-controlplane\.yaml:\d+:\d+: boot\.config\.talosBase "configs\/talos-controlplane\.sops\.yaml" does not exist/],
  ];
  for (const [label, text, expected] of cases) {
    const dir = join(work, `refused-${label}`);
    await templateWithBases(dir, [recipient]);
    if (label === 'missing') rmSync(join(dir, 'configs/talos-controlplane.sops.yaml'));
    else writeFileSync(join(dir, 'configs/talos-controlplane.sops.yaml'), text);
    const { lab, problems } = await loadLab(dir);
    assert.ok(!lab, label);
    assert.match(problems.map(formatProblem).join('\n'), expected, label);
  }
  const dir = join(work, 'refused-extra');
  await templateWithBases(dir, [recipient]);
  const extra = await encryptSopsYaml({ ...(parse(fixture('controlplane.yaml')) as Record<string, never>), bmc: { password: 'hunter2hunter2' } as never }, [recipient]);
  writeFileSync(join(dir, 'configs/talos-controlplane.sops.yaml'), extra);
  const { problems } = await loadLab(dir);
  assert.match(problems.map(formatProblem).join('\n'), /^configs\/talos-controlplane\.sops\.yaml:\d+:1: "bmc" is not a field of the Talos v1alpha1 document/m);
});

test('a base that does not decrypt for the agent\'s key, or was modified, rejects the commit at its line', async () => {
  const other = await identityToRecipient(await generateIdentity());
  const dir = join(work, 'undecryptable');
  await templateWithBases(dir, [other]);
  const lab = await load(dir); // validation cannot tell: it has no key
  const sopsLine = readFileSync(join(dir, 'configs/talos-controlplane.sops.yaml'), 'utf8').split('\n').findIndex((l) => l.startsWith('sops:')) + 1;
  const secrets = await Secrets.load(undefined, { FORSETI_AGE_KEY: identity });
  const opened = await openTalosBases(new TalosBaseResolver(), lab, secrets);
  const lines = opened.problems.map(formatProblem);
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[0]!, new RegExp(`^configs/talos-controlplane\\.sops\\.yaml:${sopsLine}:1: the Talos base cannot be decrypted: none of the configured age identities is a recipient`));
  assert.ok(opened.problems.every((p) => p.code === 'talos-base'));

  // One value changed after encryption: the MAC no longer matches.
  const tampered = join(work, 'tampered');
  await templateWithBases(tampered, [recipient]);
  const file = join(tampered, 'configs/talos-worker.sops.yaml');
  const text = readFileSync(file, 'utf8');
  const foreign = (parse(await encryptSopsYaml({ machine: { type: 'controlplane' } }, [recipient])) as { machine: { type: string } }).machine.type;
  const doc = parse(text) as { machine: { type: string } };
  doc.machine.type = foreign; // a value of another file: its data key differs
  const swapped = stringify(doc);
  assert.notEqual(swapped, text);
  writeFileSync(file, swapped);
  const reopened = await openTalosBases(new TalosBaseResolver(), await load(tampered), secrets);
  assert.match(reopened.problems.map(formatProblem).join('\n'), /^configs\/talos-worker\.sops\.yaml:\d+:1: the Talos base cannot be decrypted: cannot decrypt the value at machine\.type/m);

  // Rendered without the agent step (a base not resolved is its skeleton; one that failed is this host's error).
  const failed = new Map<string, TalosBase>([...opened.bases]);
  assert.throws(
    () => renderHost(lab.hosts.get('oden')!, { lab, urls: new AgentUrls(lab.site), revision: 'r', token: () => 'T', talosBases: failed }),
    (err: unknown) => err instanceof RenderError && new RegExp(`^configs/talos-controlplane\\.sops\\.yaml:${sopsLine}:1: host oden: the Talos base cannot be decrypted`).test(err.message),
  );
});

test('the secrets of a decrypted base become redaction patterns before the commit is rendered', async () => {
  const dir = join(work, 'patterns');
  await templateWithBases(dir, [recipient]);
  const opened = await openTalosBases(new TalosBaseResolver(), await load(dir), await Secrets.load(undefined, { FORSETI_AGE_KEY: identity }));
  assert.deepEqual(opened.problems, []);
  const patterns = new Set(opened.patterns.map((p) => p.password));
  for (const s of SECRETS) assert.ok(patterns.has(s), `${s.slice(0, 12)}… is a pattern`);
});
