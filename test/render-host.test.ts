import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, readlink, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLab } from '../src/model/load.ts';
import type { Lab } from '../src/model/types.ts';
import { renderHost } from '../src/render/host.ts';
import { GenerationWriter, readGeneration, renderLab, writeGeneration } from '../src/render/generation.ts';
import { LabRenderer } from '../src/render/renderer.ts';
import { LabLoader } from '../src/model/incremental.ts';
import { checkTemplate, fillTemplate, TEMPLATE_VARIABLES, TemplateError, type TemplateValues } from '../src/core/template.ts';
import { attemptToken, fillTokenSlot, newAttemptNonce, tokenMatches, TOKEN_SLOT } from '../src/render/token.ts';
import { AgentUrls } from '../src/render/urls.ts';

async function templateLab(): Promise<Lab> {
  const { lab, problems } = await loadLab('lab-repo-template');
  assert.deepEqual(problems, []);
  assert.ok(lab);
  return lab;
}

const ctx = (lab: Lab, revision = 'a'.repeat(40)) => ({ lab, urls: new AgentUrls(lab.site), revision, token: (h: string) => `tok-${h}` });

test('template: fills known variables and reports unknown ones with their offset', () => {
  const values = Object.fromEntries(TEMPLATE_VARIABLES.map((v) => [v, `<${v}>`])) as TemplateValues;
  assert.equal(fillTemplate('ip={{ host.ip }} gw={{site.gateway}}', values), 'ip=<host.ip> gw=<site.gateway>');
  assert.deepEqual(checkTemplate('a {{ host.ip }} {{ host.colour }}').map((p) => p.offset), [16]);
  assert.match(checkTemplate('{{ host.ip }} }}')[0]?.message ?? '', /unbalanced/);
  assert.equal(checkTemplate('{{ host.ip }} }}')[0]?.offset, 14);
  assert.throws(() => fillTemplate('{{ nope }}', values), TemplateError);
});

test('render: an image role gets kernel, initrds by digest, its cmdline, and the phone-home arguments', async () => {
  const lab = await templateLab();
  const host = lab.hosts.get('bld-003');
  assert.ok(host);
  const r = renderHost(host, ctx(lab));
  assert.equal(r.desired.boot, 'image');
  assert.equal(r.desired.role, 'talos-worker');
  assert.match(r.script ?? '', /^#!ipxe\n/);
  assert.match(r.script ?? '', /kernel http:\/\/10\.77\.0\.5:8080\/images\/[0-9a-f]{64}\/kernel-amd64 initrd=initramfs-amd64\.xz /);
  assert.match(r.script ?? '', /\ninitrd http:\/\/10\.77\.0\.5:8080\/images\/[0-9a-f]{64}\/initramfs-amd64\.xz\n/);
  assert.match(r.cmdline ?? '', /ip=10\.77\.0\.103::10\.77\.0\.1:255\.255\.255\.0:bld-003\.lab\.home\.arpa:eth0:off/);
  assert.match(r.cmdline ?? '', /forseti\.callback=http:\/\/10\.77\.0\.5:8080\/v1\/phone-home forseti\.token=tok-bld-003$/);
  assert.equal(r.config?.secret, true);
});

test('render: a host with a wipe asked carries the wipe role\'s converge timeouts beside its own role\'s', async () => {
  const lab = await templateLab();
  const wipeRole = lab.site.wipe.profile;
  const wipe = lab.profiles.get(wipeRole);
  const host = lab.hosts.get('bld-003');
  assert.ok(wipe && host);
  const profiles = new Map(lab.profiles).set(wipeRole, { ...wipe, converge: { ...wipe.converge, stepTimeoutSeconds: 3600 } });
  const withTimeouts = { ...lab, profiles };
  assert.deepEqual(renderHost({ ...host, wipe: 'w1' }, ctx(withTimeouts)).desired.wipeTimeouts, { stepMs: 3_600_000 });
  assert.equal(renderHost(host, ctx(withTimeouts)).desired.wipeTimeouts, undefined, 'no wipe asked');
});

test('render: the digest follows the artifacts, not the revision', async () => {
  const lab = await templateLab();
  const host = lab.hosts.get('bld-003');
  assert.ok(host);
  const a = renderHost(host, ctx(lab, 'a'.repeat(40)));
  const b = renderHost(host, ctx(lab, 'b'.repeat(40)));
  assert.equal(a.desired.digest, b.desired.digest);
  const other = renderHost({ ...host, role: 'slurm-compute' }, ctx(lab));
  assert.notEqual(other.desired.digest, a.desired.digest);
});

test('render: off and chain roles', async () => {
  const lab = await templateLab();
  const off = [...lab.hosts.values()].find((h) => lab.profiles.get(h.role)?.boot.kind === 'off');
  assert.ok(off);
  const r = renderHost(off, ctx(lab));
  assert.equal(r.desired.boot, 'off');
  assert.equal(r.script, undefined);
  const host = lab.hosts.get('bld-001');
  assert.ok(host);
  const chain = renderHost({ ...host, role: 'netboot-xyz' }, ctx(lab));
  assert.equal(chain.desired.boot, 'chain');
  assert.match(chain.script ?? '', /chain --autofree https:\/\/boot\.netboot\.xyz/);
});

test('generation: written whole, switched by renaming a symlink, old ones pruned', async () => {
  const lab = await templateLab();
  const state = await mkdtemp(join(tmpdir(), 'forseti-gen-'));
  try {
    const first = await writeGeneration(state, ctx(lab, '1'.repeat(40)));
    assert.equal(join(state, await readlink(join(state, 'current'))), first.dir);
    const written = await readGeneration(first.dir);
    assert.deepEqual(written.hosts, first.hosts);
    assert.equal(written.revision, '1'.repeat(40));
    assert.equal(first.byMac.get('9c:8e:99:4a:10:03'), 'bld-003');
    for (let i = 0; i < 7; i++) await writeGeneration(state, ctx(lab, String(i).repeat(40)));
    const left = (await readdir(join(state, 'generations'))).filter((n) => !n.startsWith('.'));
    assert.equal(left.length, 5);
    assert.ok(!(await readdir(state)).some((n) => n.startsWith('.current-')), 'no temporary links left');
  } finally {
    await rm(state, { recursive: true, force: true });
  }
});

test('renderer: renders again only the hosts whose inputs changed, and stamps every host with the new revision', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'forseti-render-inc-'));
  try {
    await cp('lab-repo-template', dir, { recursive: true });
    const loader = new LabLoader();
    const renderer = new LabRenderer((h) => `tok-${h}`);
    const first = loader.load(dir);
    assert.ok(first.lab);
    assert.equal(renderer.render(first.lab, 'a'.repeat(40)).rendered, first.lab.hosts.size);

    await writeFile(join(dir, 'hosts/bld-003.yaml'), (await readFile(join(dir, 'hosts/bld-003.yaml'), 'utf8')).replace('role: talos-worker', 'role: slurm-compute'));
    const second = loader.update(dir, ['hosts/bld-003.yaml']);
    assert.ok(second.lab);
    const result = renderer.render(second.lab, 'b'.repeat(40));
    assert.equal(result.rendered, 1);
    assert.deepEqual(result.hosts, renderLab(ctx(second.lab, 'b'.repeat(40))).hosts);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('renderer: a new Talos event sink port renders again the hosts whose roles carry the sink, and only those', async () => {
  const lab = await templateLab();
  const renderer = new LabRenderer((h) => `tok-${h}`);
  const at = (port: number) => new AgentUrls(lab.site, { talosEventsPort: port });
  renderer.render(lab, 'a'.repeat(40), at(4002));
  const carriers = [...lab.hosts.values()].filter((h) => lab.profiles.get(h.role)?.converge.signals.some((s) => s.kind === 'talosEvents')).map((h) => h.name).sort();
  assert.ok(carriers.length > 0 && carriers.length < lab.hosts.size, 'the template has hosts with and without the sink');
  renderer.clearChanges();
  assert.equal(renderer.render(lab, 'a'.repeat(40), at(4002)).rendered, 0, 'the same sink renders nothing again');

  const moved = renderer.render(lab, 'a'.repeat(40), at(14002));
  assert.equal(moved.rendered, carriers.length);
  assert.deepEqual([...renderer.changes].sort(), carriers);
  assert.deepEqual(moved.hosts, renderLab({ ...ctx(lab), urls: at(14002) }).hosts, 'what is reused and what is rendered again equals a render from scratch');
  for (const name of carriers) {
    const host = moved.hosts.get(name);
    assert.match(host?.cmdline ?? '', new RegExp(`talos\\.events\\.sink=${lab.site.agent.address.replaceAll('.', '\\.')}:14002 `), name);
    assert.ok(host?.config?.content.includes(`${lab.site.agent.address}:14002`), `${name}'s config carries the new sink`);
  }
});

test('generation writer: shards of unchanged hosts are hard links to the previous generation', async () => {
  const lab = await templateLab();
  const state = await mkdtemp(join(tmpdir(), 'forseti-gen-inc-'));
  try {
    const writer = new GenerationWriter(state, (h) => `tok-${h}`);
    const first = await writer.write(lab, '1'.repeat(40));
    const changedHost = lab.hosts.get('bld-003');
    assert.ok(changedHost);
    const hosts = new Map(lab.hosts);
    hosts.set('bld-003', { ...changedHost, role: 'slurm-compute' });
    const second = await writer.write({ ...lab, hosts }, '2'.repeat(40));
    const files = (await readdir(second.dir)).filter((f) => f.startsWith('hosts-'));
    let linked = 0;
    for (const file of files) if ((await stat(join(second.dir, file))).nlink > 1) linked++;
    assert.equal(linked, files.length - 1, 'every shard but the changed host\'s is linked');
    assert.deepEqual((await readGeneration(second.dir)).hosts, second.hosts);
    assert.deepEqual((await readGeneration(first.dir)).hosts, first.hosts, 'the previous generation is unchanged');
    assert.equal(second.hosts.get('bld-003')?.desired.role, 'slurm-compute');
    assert.equal(second.hosts.get('bld-004')?.desired.revision, '2'.repeat(40));
  } finally {
    await rm(state, { recursive: true, force: true });
  }
});

test('token: derived per host and attempt from the agent key, compared in constant time; rendering leaves a slot for it', () => {
  const key = Buffer.alloc(32, 7);
  const nonce = newAttemptNonce();
  assert.match(nonce, /^[0-9a-f]{32}$/);
  assert.notEqual(nonce, newAttemptNonce());
  const a = attemptToken(key, 'bld-003', nonce);
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.equal(a, attemptToken(key, 'bld-003', nonce));
  assert.notEqual(a, attemptToken(key, 'bld-004', nonce));
  assert.notEqual(a, attemptToken(key, 'bld-003', newAttemptNonce()), 'a new attempt voids the old token');
  assert.notEqual(a, attemptToken(Buffer.alloc(32, 8), 'bld-003', nonce));
  assert.equal(fillTokenSlot(`a=${TOKEN_SLOT} b=${TOKEN_SLOT}`, a), `a=${a} b=${a}`);
  assert.ok(tokenMatches(a, a));
  assert.ok(!tokenMatches(a, a.slice(0, 31)));
  assert.ok(!tokenMatches(a, ''));
});
