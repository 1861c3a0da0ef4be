// No machine can speak for another: a host's script (and the token of its provisioning attempt in it) goes only to
// its reserved address, and its phone-home and provisioning steps count only from that address with that token.
// In process on loopback addresses (the whole of 127.0.0.0/8 is local), then with the real agent in a network
// namespace, the impostor at another address of the host's network. Also: malformed boot requests are 4xx, one
// log line each, never a 500 or a stack trace.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Writable } from 'node:stream';
import { AgentBootBackend } from '../src/serve/boot-backend.ts';
import { HostTracker } from '../src/observe/host-tracker.ts';
import { createLogger } from '../src/log.ts';
import { loadLab } from '../src/model/load.ts';
import { Journal } from '../src/observe/journal.ts';
import { writeGeneration, type Generation } from '../src/render/generation.ts';
import { ImageCache } from '../src/render/image-cache.ts';
import { attemptToken, TOKEN_SLOT } from '../src/render/token.ts';
import { AgentUrls } from '../src/render/urls.ts';
import { createBootHttpServer, listen } from '../src/serve/boot-http.ts';
import { bootScriptFrom, httpFrom, phoneHomeFrom, tokenIn, withHostsAt, type Reply } from './fixtures/as-host.ts';
import type { Lab as NsLab, NsProcess } from './fixtures/dhcp/netns.ts';
import { startNsAgent, type NsAgent } from './fixtures/netns-agent.ts';

type LogLine = Record<string, unknown> & { level: number; msg: string };
const WARN = 40;

describe('in process: hosts on loopback addresses, an impostor at another', () => {
  const HOST = '127.0.0.16';
  const OTHER_HOST = '127.0.0.13';
  const IMPOSTOR = '127.0.0.99';
  const key = Buffer.alloc(32, 5);
  const lines: LogLine[] = [];
  const log = createLogger({ level: 'debug', destination: new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(JSON.parse(chunk.toString()) as LogLine), cb()) }) });
  let state = '';
  let gen: Generation;
  let tracker: HostTracker;
  let server: Server;
  let base = '';
  let mac = '';
  let role = '';
  let files: { kernel: string; initrd: string } = { kernel: '', initrd: '' };

  /** Log lines written since `from` (an index into `lines`). */
  const since = (from: number): LogLine[] => lines.slice(from);
  const host = (): ReturnType<HostTracker['get']> => tracker.get('bld-006');
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30));

  before(async () => {
    state = await mkdtemp(join(tmpdir(), 'forseti-host-identity-'));
    const loaded = (await loadLab('lab-repo-template')).lab;
    assert.ok(loaded);
    // bld-006 installs Debian by preseed here: its late_command phone-home is what this test follows.
    const moved = withHostsAt(loaded, { 'bld-006': HOST, 'bld-003': OTHER_HOST });
    const lab = { ...moved, hosts: new Map([...moved.hosts].map(([n, h]) => [n, n === 'bld-006' ? { ...h, role: 'debian-node' } : h])) };
    gen = await writeGeneration(state, { lab, urls: new AgentUrls(lab.site), revision: 'e'.repeat(40), token: () => TOKEN_SLOT });
    tracker = new HostTracker(new Journal(join(state, 'journal.json')), log);
    const images = new ImageCache(join(state, 'images'), log);
    const bld006 = lab.hosts.get('bld-006');
    const image = lab.images.get('debian-12');
    assert.ok(bld006?.macs[0] && image?.initrds[0]);
    mac = bld006.macs[0];
    role = bld006.role;
    await mkdir(images.dir, { recursive: true });
    await writeFile(images.pathOf(image.kernel.sha256), 'kernel');
    await writeFile(images.pathOf(image.initrds[0].sha256), 'initrd');
    files = { kernel: `/images/${image.kernel.sha256}/linux`, initrd: `/images/${image.initrds[0].sha256}/initrd.gz` };
    server = createBootHttpServer(new AgentBootBackend(() => gen, tracker, images, key, log), log);
    base = `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
    const desired = gen.hosts.get('bld-006')?.desired;
    assert.ok(desired);
    await tracker.record('bld-006', { kind: 'provision-started', role: desired.role, digest: desired.digest, revision: desired.revision, nonce: 'a1b2' });
    await tracker.record('bld-006', { kind: 'step', step: 'power-cycled' });
  });

  after(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => server?.close(() => r()));
    await rm(state, { recursive: true, force: true });
  });

  it('a script asked for from another address carries no token, moves no step, and is one warn line with the reason', async () => {
    const from = lines.length;
    const { script, token } = await bootScriptFrom(base, mac, IMPOSTOR);
    assert.equal(token, '');
    assert.ok(!script.includes(attemptToken(key, 'bld-006', 'a1b2')) && !script.includes(TOKEN_SLOT) && !script.includes('kernel'), script);
    assert.match(script, /^#!ipxe\necho forseti: the boot script of bld-006 is served only to its reserved address 127\.0\.0\.16, not to 127\.0\.0\.99\nexit\n$/);
    await settle();
    assert.equal(host().step, 'power-cycled');
    const logged = since(from);
    assert.equal(logged.length, 1, JSON.stringify(logged));
    assert.equal(logged[0]?.level, WARN);
    assert.equal(logged[0]?.msg, 'ipxe script refused');
    assert.match(String(logged[0]?.['reason']), /asked from 127\.0\.0\.99, not from the host's reserved address 127\.0\.0\.16/);
  });

  it('kernel and initrd fetched from another address (an impostor, another host) do not move the host\'s step', async () => {
    const from = lines.length;
    for (const address of [IMPOSTOR, OTHER_HOST]) {
      for (const path of [files.kernel, files.initrd]) assert.equal((await httpFrom(address, `${base}${path}`)).status, 200, `${address} ${path}`);
    }
    await settle();
    assert.equal(host().step, 'power-cycled');
    const noted = since(from).filter((l) => l.msg === 'image file served; not a provisioning step of the host at this address');
    assert.deepEqual(noted.map((l) => l['remote']), [IMPOSTOR, IMPOSTOR, OTHER_HOST, OTHER_HOST]);
  });

  it('forged phone-homes change nothing, each is 403 and one warn line: no token, another host\'s, the real token from another address, a made-up role, a wrong MAC', async () => {
    const real = attemptToken(key, 'bld-006', 'a1b2');
    const forged: Array<[string, string, string, RegExp]> = [
      [IMPOSTOR, '', `role=${role}&mac=${mac}`, /127\.0\.0\.99 is no host's reserved address/],
      [IMPOSTOR, real, `role=${role}&mac=${mac}`, /127\.0\.0\.99 is no host's reserved address/],
      [OTHER_HOST, real, `role=${role}&mac=${mac}`, /not the token of bld-003's provisioning attempt/],
      [HOST, '', `role=${role}&mac=${mac}`, /not the token of bld-006's provisioning attempt/],
      [HOST, attemptToken(key, 'bld-006', 'an-older-attempt'), `role=${role}&mac=${mac}`, /not the token of bld-006's provisioning attempt/],
      [HOST, real, `role=made-up&mac=${mac}`, /role made-up is not the role being installed, debian-node/],
      [HOST, real, `mac=${mac}`, /role \(none\) is not the role being installed/],
      [HOST, real, `role=${role}&mac=02:00:00:00:00:66`, /MAC 02:00:00:00:00:66 is not one of bld-006's/],
    ];
    const before = structuredClone(host());
    for (const [address, token, body, reason] of forged) {
      const from = lines.length;
      const reply = await phoneHomeFrom(base, address, token, body);
      assert.equal(reply.status, 403, `${address} ${body}`);
      assert.match(reply.body, reason);
      await settle();
      assert.deepEqual(host(), before, `${address} ${body} changed the host`);
      const logged = since(from);
      assert.equal(logged.length, 1, JSON.stringify(logged));
      assert.equal(logged[0]?.level, WARN);
      assert.match(String(logged[0]?.['reason']), reason);
      assert.ok(!JSON.stringify(logged).includes(real), 'the token is never logged');
    }
    assert.equal(host().phase, 'Provisioning', 'a made-up role does not fail the attempt');
  });

  it('the host at its address gets its token, moves its steps, converges; a replay after convergence changes nothing', async () => {
    const { script, token } = await bootScriptFrom(base, mac.replace(/:/g, '-'), HOST);
    assert.equal(token, attemptToken(key, 'bld-006', 'a1b2'));
    assert.ok(!script.includes(TOKEN_SLOT));
    await settle();
    assert.equal(host().step, 'script');
    assert.equal((await httpFrom(HOST, `${base}${files.kernel}`)).status, 200);
    await settle();
    assert.equal(host().step, 'kernel');
    assert.equal((await httpFrom(HOST, `${base}${files.initrd}`)).status, 200);
    await settle();
    assert.equal(host().step, 'initrd');

    // The preseed it fetches next carries the same token in its late_command phone-home.
    const configUrl = new URL(/ url=(\S+)/.exec(script)?.[1] ?? assert.fail(script));
    const preseed = await httpFrom(HOST, `${base}${configUrl.pathname}${configUrl.search}`);
    assert.equal(preseed.status, 200);
    assert.ok(preseed.body.includes(`Authorization: Bearer ${token}`) && preseed.body.includes(`role=${role}&mac=${mac}`), preseed.body);

    const home = await phoneHomeFrom(base, HOST, token, `role=${role}&mac=${mac}&ip=${HOST}`);
    assert.deepEqual(home, { status: 200, body: 'ok bld-006\n' });
    await settle();
    assert.equal(host().phase, 'Converged');
    const converged = structuredClone(host());

    const from = lines.length;
    const replay = await phoneHomeFrom(base, HOST, token, `role=${role}&mac=${mac}`);
    assert.equal(replay.status, 403);
    assert.match(replay.body, /no provisioning of bld-006 is under way \(Converged\)/);
    await settle();
    assert.deepEqual(host(), converged);
    assert.equal(since(from).filter((l) => l.level >= WARN).length, 1);

    // Converged: sent to its disk, whoever asks.
    for (const address of [HOST, IMPOSTOR]) assert.match((await bootScriptFrom(base, mac, address)).script, /bld-006 is installed with role debian-node; booting from local disk/);
  });

  it('malformed boot requests get a 4xx and one warn line each, never a 500 or a stack trace', async () => {
    const desired = gen.hosts.get('bld-003')?.desired;
    assert.ok(desired);
    await tracker.record('bld-003', { kind: 'provision-started', role: desired.role, digest: desired.digest, revision: desired.revision, nonce: 'c3' });
    const token = attemptToken(key, 'bld-003', 'c3');
    const big = `role=${desired.role}&pad=${'x'.repeat(65 * 1024)}`;
    const cases: Array<[string, () => Promise<Reply>, number]> = [
      ['bad %-escape in a config name', () => httpFrom(OTHER_HOST, `${base}/v1/hosts/bld-003/config/%E0%A4%A?token=${token}`), 400],
      ['a phone-home body of 65 KB', () => phoneHomeFrom(base, OTHER_HOST, token, big), 413],
      ['a chunked phone-home body of 65 KB', () => chunkedPost(OTHER_HOST, `${base}/v1/phone-home`, token, big), 413],
      ['an absolute-form target with a bad host', () => rawRequest(base, 'GET http://[bad/v1/boot/02-00-00-00-00-01 HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n'), 400],
      ['a PUT to a script', () => httpFrom(OTHER_HOST, `${base}/v1/boot/02-00-00-00-00-01`, { method: 'PUT', body: 'x' }), 405],
      ['a GET of the phone-home', () => httpFrom(OTHER_HOST, `${base}/v1/phone-home`), 405],
    ];
    for (const [what, send, status] of cases) {
      const from = lines.length;
      const reply = await send();
      assert.equal(reply.status, status, what);
      await settle();
      const logged = since(from);
      assert.equal(logged.length, 1, `${what}: ${JSON.stringify(logged)}`);
      assert.equal(logged[0]?.level, WARN, what);
      assert.ok(!JSON.stringify(logged).includes('"stack"') && !/\n\s+at /.test(JSON.stringify(logged)), what);
    }
    assert.equal(tracker.get('bld-003').phase, 'Provisioning', 'the oversized phone-home changed nothing');
    assert.ok(lines.every((l) => l.level < 50), 'no error line');
  });

  /** A POST whose body goes in chunks, without a Content-Length. */
  function chunkedPost(from: string, url: string, token: string, body: string): Promise<Reply> {
    return new Promise((resolveReply, reject) => {
      const req = request(url, { method: 'POST', localAddress: from, headers: { authorization: `Bearer ${token}` } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolveReply({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      for (let i = 0; i < body.length; i += 8192) req.write(body.slice(i, i + 8192));
      req.end();
    });
  }
});

/** Sends `text` as is and reads the status line of the answer. */
async function rawRequest(base: string, text: string): Promise<Reply> {
  const { connect } = await import('node:net');
  const url = new URL(base);
  return new Promise((resolveReply, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.end(text));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const answer = Buffer.concat(chunks).toString();
      resolveReply({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0), body: answer.slice(answer.indexOf('\r\n\r\n') + 4) });
    });
  });
}

const canRun = process.getuid?.() === 0;
describe('the real agent in a network namespace: the impostor at another address of the host\'s network', { skip: canRun ? false : 'needs root for network namespaces' }, () => {
  const AGENT = '10.91.0.1';
  const HOST = '10.91.0.11';
  const IMPOSTOR = '10.91.0.99';
  const MAC = '02:91:00:00:00:11';
  const BASE = `http://${AGENT}:8080`;
  let dir = '';
  let nsAgent: NsAgent | undefined;
  let ns: NsLab;
  let agent: NsProcess;

  const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

  /** curl inside the client namespace, from one of its addresses. */
  function curlFrom(from: string, url: string, args: string[] = []): Promise<Reply> {
    return new Promise((resolveReply, reject) => {
      execFile('ip', ['netns', 'exec', ns.client, 'curl', '-sS', '--max-time', '10', '--interface', from, '-w', '\n%{http_code}', ...args, url], (err, stdout) => {
        if (err) return reject(err);
        const cut = stdout.lastIndexOf('\n');
        resolveReply({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) });
      });
    });
  }
  const phoneHome = (from: string, token: string, body: string): Promise<Reply> => curlFrom(from, `${BASE}/v1/phone-home`, ['-H', `Authorization: Bearer ${token}`, '--data', body]);
  const hostState = async (): Promise<{ phase?: string; step?: string }> => ((JSON.parse((await curlFrom(HOST, `${BASE}/v1/status`)).body) as { hosts: Record<string, { phase?: string; step?: string }> }).hosts['hand'] ?? {});
  async function waitForHost(done: (h: { phase?: string; step?: string }) => boolean, what: string): Promise<void> {
    for (let i = 0; i < 600; i++) {
      if (done(await hostState().catch(() => ({})))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`never: ${what}; last: ${JSON.stringify(await hostState().catch(() => ({})))}`);
  }
  const logged = (): LogLine[] => agent.lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });

  before(async () => {
    if (!canRun) return;
    dir = await mkdtemp(join(tmpdir(), 'forseti-host-identity-ns-'));
    const mirror = join(dir, 'mirror');
    await mkdir(mirror);
    await writeFile(join(mirror, 'vmlinuz'), 'kernel');
    await writeFile(join(mirror, 'initrd.img'), 'initrd');
    nsAgent = await startNsAgent({
      dir,
      agent: AGENT,
      clients: [HOST, IMPOSTOR],
      clientMac: MAC,
      fileRoots: [mirror],
      files: (agentInterface) => ({
        'site.yaml': `apiVersion: forseti/v1\nkind: Site\nname: ns\nnetwork: {interface: ${agentInterface}, subnet: 10.91.0.0/24, dns: []}\nagent: {address: ${AGENT}, httpPort: 8080}\ndhcp: {mode: off}\npolicies: {provisionTimeoutSeconds: 600}\n`,
        'images/tiny.yaml': `apiVersion: forseti/v1\nkind: Image\nname: tiny\nkernel: {url: '${pathToFileURL(join(mirror, 'vmlinuz')).href}', sha256: ${sha('kernel')}}\ninitrd: {url: '${pathToFileURL(join(mirror, 'initrd.img')).href}', sha256: ${sha('initrd')}}\n`,
        'profiles/worker.yaml': 'apiVersion: forseti/v1\nkind: Profile\nname: worker\nboot: {image: tiny, cmdline: "console=ttyS0 role={{ host.role }}"}\n',
        'hosts/hand.yaml': `apiVersion: forseti/v1\nkind: Host\nname: hand\nmacs: ['${MAC}']\nip: ${HOST}\nbmc: {type: manual}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: worker\n`,
      }),
    });
    ns = nsAgent.ns;
    agent = nsAgent.agent;
  }, { timeout: 120_000 });

  after(async () => {
    await nsAgent?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('an impostor gets no token, cannot move the host or phone home for it even with the stolen token; the host itself converges; a replay changes nothing', { timeout: 120_000 }, async () => {
    await waitForHost((h) => h.phase === 'Provisioning' && h.step === 'power-cycled', 'hand Provisioning, power-cycled (by the operator)');

    const stolen = await curlFrom(IMPOSTOR, `${BASE}/v1/boot/${MAC.replace(/:/g, '-')}`);
    assert.equal(stolen.status, 200);
    assert.equal(tokenIn(stolen.body), '', 'the impostor\'s script carries no token');
    assert.match(stolen.body, /served only to its reserved address 10\.91\.0\.11, not to 10\.91\.0\.99/);
    const kernel = `${BASE}/images/${sha('kernel')}/vmlinuz`;
    assert.equal((await curlFrom(IMPOSTOR, kernel)).status, 200);
    const journal = join(dir, 'state', 'journal.json');
    const nonce = (JSON.parse(await readFile(journal, 'utf8')) as { hosts: Record<string, { attemptNonce?: string }> }).hosts['hand']?.attemptNonce;
    assert.ok(nonce);

    const own = await curlFrom(HOST, `${BASE}/v1/boot/${MAC.replace(/:/g, '-')}`);
    const token = tokenIn(own.body);
    const key = Buffer.from((await readFile(join(dir, 'state', 'agent.key'), 'utf8')).trim(), 'hex');
    assert.equal(token, attemptToken(key, 'hand', nonce));
    await waitForHost((h) => h.step === 'script', 'the host\'s own fetch is its script step');

    // The impostor tries with what its script gave it, then with the host's token (as if sniffed off the wire).
    for (const presented of [tokenIn(stolen.body), token]) {
      const forged = await phoneHome(IMPOSTOR, presented, `role=worker&mac=${MAC}&ip=${HOST}`);
      assert.equal(forged.status, 403);
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await hostState().then((h) => [h.phase, h.step]), ['Provisioning', 'script'], 'the impostor\'s kernel fetch and phone-homes moved nothing');
    const refusals = logged().filter((l) => l.msg === 'phone-home refused; nothing changes');
    assert.equal(refusals.length, 2);
    assert.ok(refusals.every((l) => l.level === WARN && l['remote'] === IMPOSTOR && /10\.91\.0\.99 is no host's reserved address/.test(String(l['reason']))));
    assert.ok(logged().some((l) => l.msg === 'ipxe script refused' && l['remote'] === IMPOSTOR));

    const home = await phoneHome(HOST, token, `role=worker&mac=${MAC}&ip=${HOST}`);
    assert.equal(home.status, 200);
    await waitForHost((h) => h.phase === 'Converged', 'hand Converged by its own phone-home');

    const replay = await phoneHome(HOST, token, `role=worker&mac=${MAC}&ip=${HOST}`);
    assert.equal(replay.status, 403);
    assert.equal((await hostState()).phase, 'Converged');
    assert.ok(!agent.lines.some((l) => l.includes(token)), 'the token is never logged');
  });
});
