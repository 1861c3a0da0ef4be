import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { AgentBootBackend } from '../src/serve/boot-backend.ts';
import { HostTracker } from '../src/observe/host-tracker.ts';
import { createLogger } from '../src/log.ts';
import { loadLab } from '../src/model/load.ts';
import { Journal } from '../src/observe/journal.ts';
import { writeGeneration, type Generation } from '../src/render/generation.ts';
import { ImageCache } from '../src/render/image-cache.ts';
import { attemptToken, fillTokenSlot, TOKEN_SLOT } from '../src/render/token.ts';
import { AgentUrls } from '../src/render/urls.ts';
import { createBootHttpServer, listen } from '../src/serve/boot-http.ts';
import { bootScriptFrom, httpFrom, phoneHomeFrom, withHostsAt } from './fixtures/as-host.ts';
import './fixtures/api-contract.ts';

const log = createLogger({ level: 'silent' });
const key = Buffer.alloc(32, 3);
let state = '';
let server: Server;
let base = '';
let gen: Generation;
let tracker: HostTracker;
let images: ImageCache;

/** Hosts the tests act as, moved to loopback addresses so that requests can come from them. */
const AT: Record<string, string> = { 'bld-003': '127.0.0.13', 'bld-006': '127.0.0.16', 'bld-010': '127.0.0.20' };
const ip = (host: string): string => AT[host] ?? assert.fail(host);
const macOf = (host: string): string => gen.lab.hosts.get(host)?.macs[0] ?? assert.fail(host);
/** The token of the host's current attempt, as the agent derives it. */
const tokenOf = (host: string): string => attemptToken(key, host, tracker.get(host).attemptNonce ?? assert.fail(`${host} has no attempt`));

before(async () => {
  state = await mkdtemp(join(tmpdir(), 'forseti-http-'));
  const loaded = (await loadLab('lab-repo-template')).lab;
  assert.ok(loaded);
  const lab = withHostsAt(loaded, AT);
  gen = await writeGeneration(state, { lab, urls: new AgentUrls(lab.site), revision: 'c'.repeat(40), token: () => TOKEN_SLOT });
  tracker = new HostTracker(new Journal(join(state, 'journal.json')), log);
  images = new ImageCache(join(state, 'images'), log);
  server = createBootHttpServer(new AgentBootBackend(() => gen, tracker, images, key, log), log);
  const addr = await listen(server, '127.0.0.1', 0);
  base = `http://127.0.0.1:${addr.port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await rm(state, { recursive: true, force: true });
});

test('boot.ipxe chains every machine to its own script by MAC', async () => {
  const text = await (await fetch(`${base}/boot.ipxe`)).text();
  assert.match(text, /^#!ipxe\n/);
  assert.match(text, /chain http:\/\/10\.77\.0\.5:8080\/v1\/boot\/\$\{mac:hexhyp\}/);
});

test('a host that needs installing gets its install script at its own address only; an unknown MAC is told to exit', async () => {
  const own = await bootScriptFrom(base, '9c:8e:99:4a:10:03', ip('bld-003'));
  assert.equal(own.script, fillTokenSlot(gen.hosts.get('bld-003')?.script ?? '', ''), 'no attempt yet: no token in the slot');
  const elsewhere = await (await fetch(`${base}/v1/boot/9c-8e-99-4a-10-03`)).text();
  assert.equal(elsewhere, `#!ipxe\necho forseti: the boot script of bld-003 is served only to its reserved address ${ip('bld-003')}, not to 127.0.0.1\nexit\n`);
  const unknown = await (await fetch(`${base}/v1/boot/02-00-00-00-00-99`)).text();
  assert.match(unknown, /no host is declared with MAC 02:00:00:00:00:99\nexit/);
});

test('a converged host is sent to its disk; a host declared off is told to exit', async () => {
  const desired = gen.hosts.get('bld-003')?.desired;
  assert.ok(desired);
  await tracker.record('bld-003', { kind: 'provision-started', role: desired.role, digest: desired.digest, revision: desired.revision, nonce: 'n3' });
  await tracker.record('bld-003', { kind: 'phone-home', role: desired.role });
  assert.equal(tracker.get('bld-003').phase, 'Converged');
  // "Boot from disk" carries nothing: it goes to any address.
  const text = await (await fetch(`${base}/v1/boot/9c:8e:99:4a:10:03`)).text();
  assert.match(text, /bld-003 is installed with role talos-worker; booting from local disk\nsanboot --no-describe --drive 0x80/);
  const off = [...gen.lab.hosts.values()].find((h) => gen.hosts.get(h.name)?.desired.boot === 'off');
  assert.ok(off?.macs[0]);
  const offText = await (await fetch(`${base}/v1/boot/${off.macs[0].replace(/:/g, '-')}`)).text();
  assert.match(offText, /is declared off/);
});

test('phone-home: only from the host\'s address with its attempt\'s token; anything else is refused and changes nothing', async () => {
  const desired = gen.hosts.get('bld-006')?.desired;
  assert.ok(desired);
  await tracker.record('bld-006', { kind: 'provision-started', role: desired.role, digest: desired.digest, revision: desired.revision, nonce: 'n6' });
  const { script, token } = await bootScriptFrom(base, macOf('bld-006'), ip('bld-006'));
  assert.equal(token, tokenOf('bld-006'));
  assert.ok(script.includes(`forseti.token=${token}`) && !script.includes(TOKEN_SLOT));
  const body = `role=${desired.role}&mac=${macOf('bld-006')}`;
  for (const [from, presented, form] of [
    [ip('bld-006'), '0'.repeat(32), body],
    [ip('bld-006'), tokenOf('bld-006').slice(1), body],
    ['127.0.0.1', token, body],
    [ip('bld-003'), token, body],
    [ip('bld-006'), token, `role=made-up&mac=${macOf('bld-006')}`],
    [ip('bld-006'), token, 'role='],
    [ip('bld-006'), token, `role=${desired.role}&mac=02:00:00:00:00:99`],
  ] as const) {
    const reply = await phoneHomeFrom(base, from, presented, form);
    assert.equal(reply.status, 403, `${from} ${form}`);
    assert.equal(tracker.get('bld-006').phase, 'Provisioning', `${from} ${form}`);
  }
  const right = await phoneHomeFrom(base, ip('bld-006'), token, body);
  assert.equal(right.status, 200);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(tracker.get('bld-006').phase, 'Converged');
  assert.equal(tracker.get('bld-006').appliedRevision, desired.revision);
});

test('a config is served only to its own host\'s address, with the token of its attempt', async () => {
  const cfg = gen.hosts.get('bld-003')?.config;
  assert.ok(cfg);
  const url = `${base}/v1/hosts/bld-003/config/${cfg.name}`;
  const token = tokenOf('bld-003');
  assert.equal((await httpFrom(ip('bld-003'), `${url}?token=${tokenOf('bld-006')}`)).status, 403);
  assert.equal((await httpFrom(ip('bld-003'), url)).status, 403);
  // Someone who learnt the token still cannot fetch the config from another address.
  const elsewhere = await fetch(`${url}?token=${token}`);
  assert.equal(elsewhere.status, 403);
  assert.equal(await elsewhere.text(), 'forbidden\n');
  const own = await httpFrom(ip('bld-003'), `${url}?token=${token}`);
  assert.deepEqual(own, { status: 200, body: fillTokenSlot(cfg.content, token) });
  const backend = new AgentBootBackend(() => gen, tracker, images, key, log);
  assert.deepEqual(backend.config('bld-003', cfg.name, token, '127.0.0.1'), { status: 'forbidden', reason: `asked from 127.0.0.1, not from the host's address ${ip('bld-003')}` });
  assert.deepEqual(backend.config('bld-003', cfg.name, tokenOf('bld-006'), ip('bld-003')), { status: 'forbidden', reason: 'wrong token' });
  assert.deepEqual(backend.config('bld-003', 'other.yaml', token, ip('bld-003')), { status: 'missing' });
  const [never, rendered] = [...gen.hosts].find(([name, r]) => r.config && tracker.get(name).attemptNonce === undefined) ?? assert.fail();
  assert.deepEqual(backend.config(never, rendered.config?.name ?? '', '', gen.lab.hosts.get(never)?.ip ?? ''), { status: 'forbidden', reason: 'no provisioning attempt has given this host a token' });
});

/** The NoCloud seed base on the host's kernel line (`ds=nocloud-net;s=...`), pointed at this test's server. */
function seedIn(script: string): string {
  const seed = /\bds=nocloud-net;s=(\S+)/.exec(script)?.[1] ?? assert.fail(`no NoCloud seed in\n${script}`);
  return seed.replace('http://10.77.0.5:8080', base);
}

test('NoCloud seed (Ubuntu autoinstall): user-data, meta-data and vendor-data only to the host\'s address with its attempt\'s token', async () => {
  const host = 'bld-010';
  const desired = gen.hosts.get(host)?.desired;
  const cfg = gen.hosts.get(host)?.config;
  assert.ok(desired && cfg?.name === 'user-data', 'bld-010 installs Ubuntu by autoinstall in the template');
  // Before any attempt there is no token: nothing is served, whatever is presented.
  assert.equal((await httpFrom(ip(host), `${base}/v1/hosts/${host}/nocloud/${'0'.repeat(32)}/meta-data`)).status, 403);

  await tracker.record(host, { kind: 'provision-started', role: desired.role, digest: desired.digest, revision: desired.revision, nonce: 'n10-first' });
  const { script } = await bootScriptFrom(base, macOf(host), ip(host));
  const token = tokenOf(host);
  const seed = seedIn(script);
  assert.equal(seed, `${base}/v1/hosts/${host}/nocloud/${token}/`, 'the seed URL carries the token and ends in / (cloud-init appends the file names)');

  const userData = await httpFrom(ip(host), `${seed}user-data`);
  assert.deepEqual(userData, { status: 200, body: fillTokenSlot(cfg.content, token) });
  assert.match(userData.body, /^#cloud-config\n/);
  // The installer (subiquity, curtin through it) reports to the attempt's report URL; the installed system's cloud-init to its /target one.
  const autoinstall = (parseYaml(userData.body) as { autoinstall: { reporting: Record<string, { type: string; endpoint: string }>; 'user-data': { reporting: Record<string, { type: string; endpoint: string }> } } }).autoinstall;
  assert.deepEqual(Object.values(autoinstall.reporting), [{ type: 'webhook', endpoint: `http://10.77.0.5:8080/v1/report/${token}` }]);
  assert.deepEqual(Object.values(autoinstall['user-data'].reporting), [{ type: 'webhook', endpoint: `http://10.77.0.5:8080/v1/report/${token}/target` }]);

  const metaData = await httpFrom(ip(host), `${seed}meta-data`);
  assert.equal(metaData.status, 200);
  const firstInstance = parseYaml(metaData.body) as { 'instance-id': string; 'local-hostname': string };
  assert.equal(firstInstance['local-hostname'], host);
  assert.match(firstInstance['instance-id'], /^forseti-bld-010-[0-9a-f]{16}$/);
  assert.ok(!metaData.body.includes(token), 'meta-data does not repeat the token');
  assert.deepEqual(await httpFrom(ip(host), `${seed}vendor-data`), { status: 200, body: '' });
  assert.equal((await httpFrom(ip(host), `${seed}user-data`, { method: 'HEAD' })).status, 200);

  // Files a seed does not have: 404 before any token check.
  for (const file of ['network-config', 'passwd', 'user-data-x']) assert.equal((await httpFrom(ip(host), `${seed}${file}`)).status, 404, file);
  assert.equal((await httpFrom(ip(host), `${base}/v1/hosts/${host}/nocloud/${token}/sub/user-data`)).status, 404);
  // A host whose config is not NoCloud user-data has no seed (bld-003 is a Talos worker).
  const talos = (await bootScriptFrom(base, macOf('bld-003'), ip('bld-003'))).script;
  assert.ok(!talos.includes('nocloud'));
  assert.equal((await httpFrom(ip('bld-003'), `${base}/v1/hosts/bld-003/nocloud/${tokenOf('bld-003')}/meta-data`)).status, 404);

  // Wrong tokens, and the right token from any other address: 403, and nothing of the seed.
  for (const [from, presented] of [
    [ip(host), tokenOf('bld-006')],
    [ip(host), token.slice(1)],
    [ip(host), attemptToken(key, host, 'another-attempt')],
    ['127.0.0.1', token],
    [ip('bld-006'), token],
  ] as const) {
    for (const file of ['user-data', 'meta-data', 'vendor-data']) {
      const reply = await httpFrom(from, `${base}/v1/hosts/${host}/nocloud/${presented}/${file}`);
      assert.deepEqual(reply, { status: 403, body: 'forbidden\n' }, `${from} ${file}`);
    }
  }
  assert.equal((await httpFrom(ip(host), `${seed}user-data`, { method: 'POST', body: 'x' })).status, 405);

  // A new attempt is a new token and a new instance: the old seed URL is dead, cloud-init runs as on a first boot.
  await tracker.record(host, { kind: 'provision-started', role: desired.role, digest: desired.digest, revision: desired.revision, nonce: 'n10-second' });
  assert.equal((await httpFrom(ip(host), `${seed}meta-data`)).status, 403);
  const nextSeed = seedIn((await bootScriptFrom(base, macOf(host), ip(host))).script);
  assert.notEqual(nextSeed, seed);
  const instanceAt = async (seedUrl: string): Promise<string> => (parseYaml((await httpFrom(ip(host), `${seedUrl}meta-data`)).body) as { 'instance-id': string })['instance-id'];
  const secondInstance = await instanceAt(nextSeed);
  assert.notEqual(secondInstance, firstInstance['instance-id']);
  assert.equal(await instanceAt(nextSeed), secondInstance, 'stable within an attempt');
});

/** Puts a kernel into the image cache, addressed by the declared digest as a download would, and gives its URL. */
async function cachedKernel(): Promise<{ content: Buffer; url: string }> {
  const image = [...gen.lab.images.values()].find((i) => i.name === 'talos');
  assert.ok(image);
  const content = Buffer.from('pretend this is a kernel');
  await mkdir(images.dir, { recursive: true });
  await writeFile(images.pathOf(image.kernel.sha256), content);
  return { content, url: `${base}/images/${image.kernel.sha256}/kernel-amd64` };
}

test('image files are served from the cache by digest, with Range and HEAD', async () => {
  const { content, url } = await cachedKernel();
  const full = await fetch(url);
  assert.equal(full.status, 200);
  assert.equal(full.headers.get('content-length'), String(content.length));
  assert.deepEqual(Buffer.from(await full.arrayBuffer()), content);
  const part = await fetch(url, { headers: { range: 'bytes=8-11' } });
  assert.equal(part.status, 206);
  assert.equal(await part.text(), 'this');
  const head = await fetch(url, { method: 'HEAD' });
  assert.equal(head.headers.get('content-length'), String(content.length));
  const unknown = await fetch(`${base}/images/${createHash('sha256').update('x').digest('hex')}/x`);
  assert.equal(unknown.status, 404);
});

test('image files: suffix range, 416 past the end, 304 for the current ETag, and If-Range', async () => {
  const { content, url } = await cachedKernel();
  const suffix = await fetch(url, { headers: { range: 'bytes=-6' } });
  assert.equal(suffix.status, 206);
  assert.equal(suffix.headers.get('content-range'), `bytes ${content.length - 6}-${content.length - 1}/${content.length}`);
  assert.equal(await suffix.text(), 'kernel');
  const past = await fetch(url, { headers: { range: `bytes=${content.length}-` } });
  assert.equal(past.status, 416);
  assert.equal(past.headers.get('content-range'), `bytes */${content.length}`);
  const etag = (await fetch(url, { method: 'HEAD' })).headers.get('etag') ?? '';
  assert.equal((await fetch(url, { headers: { 'if-none-match': etag } })).status, 304);
  assert.equal((await fetch(url, { headers: { range: 'bytes=0-6', 'if-range': etag } })).status, 206);
  const stale = await fetch(url, { headers: { range: 'bytes=0-6', 'if-range': '"old"' } });
  assert.equal(stale.status, 200);
  assert.equal((await stale.arrayBuffer()).byteLength, content.length);
});

test('iPXE binaries for UEFI HTTP boot: only the configured names, from the iPXE directory, with Range, HEAD and ETag', async () => {
  const { mkdir, symlink } = await import('node:fs/promises');
  const ipxeDir = join(state, 'ipxe');
  const elsewhere = join(state, 'boot');
  await mkdir(ipxeDir, { recursive: true });
  await mkdir(elsewhere, { recursive: true });
  const efi = Buffer.from('MZ pretend this is ipxe.efi');
  // Debian's /usr/lib/ipxe/ipxe.efi is a symlink into /boot: it is followed.
  await writeFile(join(elsewhere, 'ipxe.efi'), efi);
  await symlink(join(elsewhere, 'ipxe.efi'), join(ipxeDir, 'ipxe.efi'));
  await writeFile(join(ipxeDir, 'undionly.kpxe'), 'pretend undionly');
  await writeFile(join(ipxeDir, 'secrets.yaml'), 'password: hunter2');
  const names = ['ipxe.efi', 'undionly.kpxe', 'snponly.efi', 'secrets.yaml/../ipxe.efi'];
  const srv = createBootHttpServer(new AgentBootBackend(() => gen, tracker, images, key, log), log, { ipxe: { dir: ipxeDir, names } });
  const at = `http://127.0.0.1:${(await listen(srv, '127.0.0.1', 0)).port}`;
  try {
    const full = await fetch(`${at}/ipxe.efi`);
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(Buffer.from(await full.arrayBuffer()), efi);
    const etag = full.headers.get('etag') ?? '';
    assert.match(etag, /^"[0-9a-f-]+"$/);
    const head = await fetch(`${at}/ipxe.efi`, { method: 'HEAD' });
    assert.equal(head.headers.get('content-length'), String(efi.length));
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    const part = await fetch(`${at}/ipxe.efi`, { headers: { range: 'bytes=3-10' } });
    assert.equal(part.status, 206);
    assert.equal(await part.text(), 'pretend ');
    assert.equal((await fetch(`${at}/ipxe.efi`, { headers: { 'if-none-match': etag } })).status, 304);
    assert.equal(await (await fetch(`${at}/undionly.kpxe`)).text(), 'pretend undionly');
    // Configured but absent, present but not configured (a name with a separator is dropped from the list): 404, nothing leaks.
    for (const p of ['/snponly.efi', '/secrets.yaml', '/ipxe/ipxe.efi', '/ipxe.efi/', '/IPXE.EFI']) {
      const r = await fetch(`${at}${p}`);
      const body = await r.text();
      assert.equal(r.status, 404, p);
      assert.doesNotMatch(body, /hunter2/);
    }
  } finally {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
