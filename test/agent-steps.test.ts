// A commit is applied as named steps (src/agent/commit-steps.ts): a step that fails rolls back the ones before it,
// the previous generation keeps serving, and the commit is recorded rejected once with the step and the reason, never
// applied. Against the real agent and a real Git server: a port that cannot be bound, an image that does not verify
// (a render failure), and a full disk (a small tmpfs in a private mount namespace under the generations).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, readdirSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readlink, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../src/agent/agent.ts';
import { createLogger } from '../src/log.ts';
import type { StatusView } from '../src/status/status-view.ts';
import { startAgent } from './e2e/agent-process.ts';
import { waitForStatus } from './e2e/status-branch.ts';
import { freeTcpPort } from './fixtures/free-port.ts';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { loopbackAgentConfig, loopbackLabFiles, waitForView, writeTree } from './fixtures/loopback-lab.ts';

const manualHost = (name: string, n: number): string =>
  `apiVersion: forseti/v1\nkind: Host\nname: ${name}\nmacs: ['02:00:00:00:0c:0${n}']\nip: 127.0.0.8${n}\nbmc: {type: manual}\nrole: worker\n`;

type Line = Record<string, unknown>;

function capturingLog(lines: Line[]) {
  return createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => void (lines.push(JSON.parse(c.toString()) as Line), cb()) }) });
}

/** A TCP port someone else holds. */
async function heldPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, server };
}

const recordsOf = (view: StatusView, revision: string) => (view.site?.reconciles ?? []).filter((r) => r.revision === revision);
const applied = (lines: Line[], revision: string): boolean => lines.some((l) => l['msg'] === 'commit applied' && l['revision'] === revision);

let dir = '';
let git: GitServer;
before(async () => {
  [dir, git] = await Promise.all([mkdtemp(join(tmpdir(), 'forseti-agent-steps-')), startGitServer()]);
});
after(() => Promise.all([git?.close(), rm(dir, { recursive: true, force: true })]));

describe('a step that fails: the previous generation serves and the commit is rejected once, with its step', () => {
  let agent: Agent;
  let base = '';
  let first = '';
  let stateDir = '';
  const lines: Line[] = [];
  let held: { port: number; server: Server } | null = null;

  before(async () => {
    const httpPort = await freeTcpPort();
    base = `http://127.0.0.1:${httpPort}`;
    const seed = join(dir, 'seed');
    await writeTree(seed, { ...(await loopbackLabFiles(dir, { http: httpPort, tftp: 1 })), 'hosts/hand.yaml': manualHost('hand', 1) });
    await createBareRepo(git, 'lab', seed);
    await mkdir(join(dir, 'agent'));
    const config = await loopbackAgentConfig(join(dir, 'agent'), git.repoUrl('lab'), { tftp: false });
    config.images = { ...config.images!, fileRoots: [join(dir, 'mirror')] };
    stateDir = config.stateDir;
    agent = new Agent(config, capturingLog(lines));
    await agent.start();
    first = agent.current?.revision ?? '';
    assert.match(first, /^[0-9a-f]{40}$/);
  });
  after(async () => {
    await agent?.stop();
    held?.server.close();
  });

  it('services: a port that cannot be bound rejects the commit at that step; current still names the served generation', async () => {
    held = await heldPort();
    const servedDir = agent.current?.dir ?? '';
    const site = (await loopbackLabFiles(dir, { http: held.port, tftp: 1 }))['site.yaml'] ?? '';
    const second = await commitFiles(git, 'lab', 'main', { 'site.yaml': site, 'hosts/node-2.yaml': manualHost('node-2', 2) }, 'http on a held port');
    await agent.poll();
    const view = await waitForView(base, (v) => v.site?.rejected?.revision === second, 'the commit rejected');
    assert.equal(view.site?.rejected?.step, 'services');
    assert.match(view.site?.rejected?.errors[0] ?? '', new RegExp(`HTTP service on 127\\.0\\.0\\.1:${held.port}: the port is in use by another program`));
    assert.deepEqual([view.revision, agent.current?.revision, Object.keys(view.hosts)], [first, first, ['hand']], 'the previous generation serves');
    assert.deepEqual(recordsOf(view, second).map((r) => r.result), ['rejected'], 'one apply, recorded rejected once');
    assert.equal(recordsOf(view, second)[0]?.hostsActedOn, 0);
    assert.ok(!applied(lines, second), 'never recorded applied');
    assert.equal(join(stateDir, await readlink(join(stateDir, 'current'))), servedDir, 'the render step was rolled back: current names the served generation');
    const branch = await waitForStatus(git, 'lab', (s) => s.site?.rejected?.revision === second, 60_000, 'the rejection on the status branch');
    assert.equal((branch.site?.rejected as { step?: string } | null | undefined)?.step, 'services');

    // The same commit applies once the port is free: a refused step is retried at each poll.
    const port = held.port;
    held.server.close();
    held = null;
    await agent.poll();
    assert.equal(agent.current?.revision, second);
    first = second;
    base = `http://127.0.0.1:${port}`;
  });

  it('render: an image that does not verify rejects the commit at the render step; no host of it is acted on', async () => {
    const served = agent.current?.revision ?? '';
    // Valid as a lab (a checksum of the right form): only downloading and verifying the file finds it wrong.
    const otherSha = createHash('sha256').update('not the kernel').digest('hex');
    const image = `apiVersion: forseti/v1\nkind: Image\nname: broken\nkernel: {url: 'file://${join(dir, 'mirror', 'vmlinuz')}', sha256: ${otherSha}}\n`;
    const third = await commitFiles(git, 'lab', 'main', {
      'images/broken.yaml': image,
      'profiles/broken.yaml': 'apiVersion: forseti/v1\nkind: Profile\nname: broken\nboot: {image: broken, cmdline: "console=ttyS0"}\n',
      'hosts/node-3.yaml': manualHost('node-3', 3).replace('role: worker', 'role: broken'),
    }, 'an image whose checksum is wrong');
    const before = lines.length;
    await agent.poll();
    const view = await waitForView(base, (v) => v.site?.rejected?.revision === third, 'the commit rejected');
    assert.equal(view.site?.rejected?.step, 'render', JSON.stringify(view.site?.rejected));
    assert.match(view.site?.rejected?.errors.join('\n') ?? '', /broken/);
    assert.deepEqual([view.revision, agent.current?.revision], [served, served]);
    assert.deepEqual(recordsOf(view, third).map((r) => r.result), ['rejected']);
    assert.ok(!('node-3' in view.hosts), 'the host of the refused commit is not served');
    assert.ok(!applied(lines, third));
    assert.equal(lines.slice(before).filter((l) => l['msg'] === 'commit could not be rendered; the last good generation keeps serving').length, 1, 'one log line for one rejection');
  });
});

describe('switch: last-good cannot be written', () => {
  it('the commit is rejected at the switch step; the HTTP server started for it closes, the previous one serves on', { timeout: 120_000 }, async () => {
    const work = join(dir, 'switch');
    await mkdir(work);
    const httpPort = await freeTcpPort();
    const seed = join(work, 'seed');
    await writeTree(seed, { ...(await loopbackLabFiles(work, { http: httpPort, tftp: 1 })), 'hosts/hand.yaml': manualHost('hand', 1) });
    await createBareRepo(git, 'lab-switch', seed);
    const config = await loopbackAgentConfig(work, git.repoUrl('lab-switch'), { tftp: false });
    const lines: Line[] = [];
    const agent = new Agent(config, capturingLog(lines));
    await agent.start();
    try {
      const first = agent.current?.revision ?? '';
      const servedDir = agent.current?.dir ?? '';
      // A directory where the state file goes: the write fails as a disk that refuses it would.
      const lastGood = join(config.stateDir, 'last-good');
      rmSync(lastGood);
      await mkdir(join(lastGood, 'in-the-way'), { recursive: true });
      const newPort = await freeTcpPort();
      const site = (await loopbackLabFiles(work, { http: newPort, tftp: 1 }))['site.yaml'] ?? '';
      const second = await commitFiles(git, 'lab-switch', 'main', { 'site.yaml': site }, 'a new HTTP port');
      await agent.poll();
      const view = await waitForView(`http://127.0.0.1:${httpPort}`, (v) => v.site?.rejected?.revision === second, 'the commit rejected');
      assert.equal(view.site?.rejected?.step, 'switch');
      assert.deepEqual([view.revision, agent.current?.revision], [first, first]);
      assert.deepEqual(recordsOf(view, second).map((r) => r.result), ['rejected']);
      assert.ok(!applied(lines, second));
      await assert.rejects(fetch(`http://127.0.0.1:${newPort}/healthz`), 'the services step was rolled back');
      assert.equal(join(config.stateDir, await readlink(join(config.stateDir, 'current'))), servedDir, 'and so was the render step');

      rmSync(lastGood, { recursive: true });
      await agent.poll();
      assert.equal(agent.current?.revision, second);
      await waitForView(`http://127.0.0.1:${newPort}`, (v) => v.revision === second && v.site?.rejected === null, 'applied on its port');
    } finally {
      await agent.stop();
    }
  });
});

describe('a full disk', () => {
  it('render: the generation cannot be written; nothing of it is left, the previous one serves, and it applies once there is room', { timeout: 180_000 }, async () => {
    const work = join(dir, 'full-disk');
    await mkdir(work);
    const httpPort = await freeTcpPort();
    const statusUrl = `http://127.0.0.1:${httpPort}`;
    const seed = join(work, 'seed');
    await writeTree(seed, { ...(await loopbackLabFiles(work, { http: httpPort, tftp: 1 })), 'hosts/hand.yaml': manualHost('hand', 1) });
    await createBareRepo(git, 'lab-full', seed);
    const stateDir = join(work, 'agent-state');
    const generations = join(stateDir, 'generations');
    // The agent in a mount namespace of its own, its generations on a 256 KiB tmpfs nobody else sees.
    const mountThenRun = 'mkdir -p "$0" && mount -t tmpfs -o size=256k forseti-test "$0" && exec "$@"';
    const agent = await startAgent({
      workDir: work,
      labUrl: git.repoUrl('lab-full'),
      pollSeconds: 1,
      command: ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', mountThenRun, generations, process.execPath, resolve('bin/forseti.js')],
      extraConfig: `serve: {bindAddress: 127.0.0.1, dhcp: false, tftp: false}\nimages: {fileRoots: [${join(work, 'mirror')}]}\n`,
    });
    // The tmpfs as the agent sees it, through its process's root.
    const inside = `/proc/${agent.child.pid}/root${generations}`;
    try {
      const first = String((await agent.waitForLog((l) => l['msg'] === 'commit applied', 60_000))['revision']);
      const servedDir = join(stateDir, await readlink(join(stateDir, 'current')));

      const filler = join(inside, 'filler');
      const block = Buffer.alloc(4096);
      for (;;) {
        try {
          appendFileSync(filler, block);
        } catch (err) {
          assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
          break;
        }
      }
      const second = await commitFiles(git, 'lab-full', 'main', { 'hosts/node-2.yaml': manualHost('node-2', 2) }, 'a host more');
      const view = await waitForView(statusUrl, (v) => v.site?.rejected?.revision === second, 'the commit rejected');
      assert.equal(view.site?.rejected?.step, 'render');
      assert.match(view.site?.rejected?.errors.join('\n') ?? '', /ENOSPC|no space left on device/);
      assert.equal(view.revision, first, 'the previous generation serves');
      assert.ok(recordsOf(view, second).every((r) => r.result === 'rejected'), 'never recorded applied');
      assert.ok(!agent.logLines().some((l) => l['msg'] === 'commit applied' && l['revision'] === second));
      assert.equal(join(stateDir, await readlink(join(stateDir, 'current'))), servedDir);
      assert.deepEqual(readdirSync(inside).filter((n) => n.startsWith('.tmp-')), [], 'a failed write leaves no partial generation');

      rmSync(filler);
      const after = await waitForView(statusUrl, (v) => v.revision === second, 'the commit applied once there is room');
      assert.equal(after.site?.rejected ?? null, null);
      assert.deepEqual(Object.keys(after.hosts).sort(), ['hand', 'node-2']);
    } finally {
      await agent.stop();
    }
  });
});

