// The single executable (dist/forseti, `npm run build`) does what the sources do, with nothing but itself:
// validate, render and plan give the source run's answers; the agent serves a lab from a Git server with its API
// on the contract; the native TFTP pump is loaded from a private directory that is gone at exit, and the
// JavaScript pump takes over where that directory cannot hold code. (The virtual-lab converge test,
// test/e2e-lab.test.ts, runs its agent from this executable too.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { git } from './fixtures/git/git-cli.ts';
import { RELEASE, releaseBinary } from './fixtures/release-build.ts';
import { fetchChecked } from './fixtures/api-contract.ts';
import { forseti, freePort, runCommand, type Run } from './fixtures/cli-run.ts';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { loopbackLabFiles, writeTree } from './fixtures/loopback-lab.ts';
import { httpFrom } from './fixtures/as-host.ts';

let binary = '';
let work = '';
before(() => {
  binary = releaseBinary();
  work = mkdtempSync(join(tmpdir(), 'forseti-release-'));
}, { timeout: 300_000 });
after(() => rmSync(work, { recursive: true, force: true }));

const built = (args: string[], cwd?: string): Promise<Run> => runCommand([binary, ...args], cwd ? { cwd } : {});
const source = (args: string[], cwd?: string): Promise<Run> => forseti(args, cwd ? { cwd } : {});
const seaDirs = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith('forseti-sea-'));

test('the executable carries its own runtime (no node_modules, no TypeScript loader, no files beside it); the bundle needs only its assets', async () => {
  const alone = join(work, 'alone');
  cpSync(binary, join(alone, 'forseti'));
  const help = await runCommand([join(alone, 'forseti'), '--help'], { cwd: alone, env: { PATH: '/usr/bin:/bin' } });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^usage: forseti <command>/);
  const valid = await runCommand([join(alone, 'forseti'), 'validate', join(RELEASE.root, 'lab-repo-template')], { cwd: alone, env: { PATH: '/usr/bin:/bin' } });
  assert.equal(valid.code, 0, valid.stderr);
  assert.match(valid.stderr, /^lab is valid: 18 hosts/);
  // The bundle too, copied away from the repository and its node_modules with its assets.
  cpSync(RELEASE.bundle, join(alone, 'js', 'forseti.cjs'));
  cpSync(join(RELEASE.root, 'dist/assets'), join(alone, 'js', 'assets'), { recursive: true });
  const bundled = await runCommand([process.execPath, join(alone, 'js', 'forseti.cjs'), 'validate', join(RELEASE.root, 'lab-repo-template')], { cwd: alone });
  assert.equal(bundled.code, 0, bundled.stderr);
  assert.match(bundled.stderr, /^lab is valid: 18 hosts/);
});

test('the bundle is ASCII, so V8 keeps its source as one byte per character (half the memory of two-byte text)', () => {
  const text = readFileSync(RELEASE.bundle, 'latin1');
  const outside = text.search(/[^\x00-\x7f]/);
  assert.equal(outside, -1, `a byte outside ASCII at ${outside}: ${JSON.stringify(text.slice(Math.max(0, outside - 60), outside + 20))}`);
});

test('validate and render answer as the sources do, problems at file:line:col', async () => {
  const lab = join(work, 'broken-lab');
  cpSync(join(RELEASE.root, 'lab-repo-template'), lab, { recursive: true });
  writeFileSync(join(lab, 'hosts/bld-001.yaml'), readFileSync(join(lab, 'hosts/bld-001.yaml'), 'utf8').replace(/^role: .*$/m, 'role: no-such-role'));
  const [b, s] = await Promise.all([built(['validate', lab]), source(['validate', lab])]);
  assert.equal(b.code, 1);
  assert.match(b.stdout, /^hosts\/bld-001\.yaml:\d+:\d+: .*no-such-role/m);
  assert.deepEqual([b.code, b.stdout], [s.code, s.stdout]);
  for (const args of [['render', 'lab-repo-template', '--host', 'bld-003'], ['render', 'lab-repo-template', '--host', 'bld-003', '--what', 'config'], ['render', '--dnsmasq', 'lab-repo-template']]) {
    const [rb, rs] = await Promise.all([built(args), source(args)]);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(rb.stdout, rs.stdout, args.join(' '));
  }
});

test('plan on a pull request answers as the sources do', async () => {
  const repo = join(work, 'plan-lab');
  cpSync(join(RELEASE.root, 'lab-repo-template'), repo, { recursive: true });
  await git(['init', '-q', '-b', 'main'], repo);
  await git(['add', '-A'], repo);
  await git(['commit', '-q', '-m', 'base'], repo);
  const host = join(repo, 'hosts/bld-010.yaml');
  writeFileSync(host, readFileSync(host, 'utf8').replace(/^role: .*$/m, 'role: ceph-osd'));
  await git(['commit', '-q', '-am', 'bld-010 to ceph'], repo);
  for (const format of ['text', 'json']) {
    const args = ['plan', '--base', 'HEAD~1', '--head', 'HEAD', '--format', format, repo];
    const [b, s] = await Promise.all([built(args), source(args)]);
    assert.equal(b.code, 1, b.stderr);
    assert.match(b.stdout, /bld-010/);
    assert.equal(b.stdout, s.stdout, `plan --format ${format}`);
  }
});

test('init writes the same lab as the sources, schemas and CI workflows included', async () => {
  const flags = ['--subnet', '10.77.0.0/24', '--gateway', '10.77.0.1', '--agent-address', '10.77.0.5', '--interface', 'eno2', '--no-git'];
  const [b, s] = await Promise.all([built(['init', join(work, 'init-built'), ...flags, '--name', 'lab']), source(['init', join(work, 'init-source'), ...flags, '--name', 'lab'])]);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(s.code, 0, s.stderr);
  const tree = (dir: string): Record<string, string> => {
    const out: Record<string, string> = {};
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(join(d, e.name)) : (out[join(d, e.name).slice(dir.length)] = readFileSync(join(d, e.name), 'utf8'));
    };
    walk(dir);
    return out;
  };
  assert.deepEqual(tree(join(work, 'init-built')), tree(join(work, 'init-source')));
});

function waitForLine(child: ChildProcess, match: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`not seen within ${timeoutMs} ms: ${match}\n${text.slice(-3000)}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      const hit = text.split('\n').find((l) => match.test(l));
      if (hit) {
        clearTimeout(timer);
        resolve(hit);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(killer);
}

test('the agent runs from the executable: it applies the lab, serves boot scripts, the dashboard and its API on the contract', { timeout: 120_000 }, async () => {
  let gitServer: GitServer | undefined;
  let agent: ChildProcess | undefined;
  try {
    const dir = join(work, 'agent');
    const [http, tftp] = [await freePort(), await freePort()];
    const seed = join(dir, 'seed');
    await writeTree(seed, {
      ...(await loopbackLabFiles(dir, { http, tftp })),
      'hosts/hand.yaml': "apiVersion: forseti/v1\nkind: Host\nname: hand\nmacs: ['02:00:00:00:0a:01']\nip: 127.0.0.71\nbmc: {type: manual}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: worker\n",
    });
    gitServer = await startGitServer();
    await createBareRepo(gitServer, 'lab', seed);
    writeFileSync(join(dir, 'secrets.yaml'), '{}\n');
    writeFileSync(join(dir, 'agent.yaml'), `lab: {url: '${gitServer.repoUrl('lab')}', branch: main, pollSeconds: 1}\nstatus: {branch: forseti-status, batchSeconds: 0.2}\nstateDir: ${join(dir, 'state')}\nsecretsFile: ${join(dir, 'secrets.yaml')}\nserve: {bindAddress: 127.0.0.1, dhcp: false, tftp: true, ipxeDir: /usr/lib/ipxe}\nbmc: {minIntervalMs: 0, timeoutMs: 5000, retries: 0}\nreconcileIntervalMs: 200\nimages: {fileRoots: [${join(dir, 'mirror')}]}\n`);
    agent = spawn(binary, ['agent', '--config', join(dir, 'agent.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitForLine(agent, /"msg":"http listening"/, 60_000);
    const base = `http://127.0.0.1:${http}`;
    let status = await fetchChecked(`${base}/v1/status`);
    for (let i = 0; i < 200 && !JSON.parse(status.text).revision; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await fetchChecked(`${base}/v1/status`);
    }
    assert.deepEqual(status.problems, []);
    assert.match(JSON.parse(status.text).revision, /^[0-9a-f]{40}$/);
    // From the host's own reserved address: only there is its script (with its attempt's token) served.
    const script = { text: (await httpFrom('127.0.0.71', `${base}/v1/boot/02-00-00-00-0a-01`)).body };
    assert.match(script.text, /^#!ipxe\n[\s\S]*kernel http:\/\/127\.0\.0\.1:\d+\/images\/[0-9a-f]{64}\/vmlinuz/);
    for (const path of ['/v1/openapi.json', '/dashboard', '/dashboard/app.js', '/healthz', '/readyz', '/boot.ipxe']) {
      const got = await fetchChecked(`${base}${path}`);
      assert.equal(got.status, 200, `${path}: ${got.text}`);
      assert.deepEqual(got.problems, [], path);
    }
    // A second commit reaches it through polling.
    const next = await commitFiles(gitServer, 'lab', 'main', { 'hosts/hand.yaml': "apiVersion: forseti/v1\nkind: Host\nname: hand\nmacs: ['02:00:00:00:0a:01']\nip: 127.0.0.71\nbmc: {type: manual}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: worker\nlabels: {rack: a}\n" }, 'hand labelled');
    for (let i = 0; i < 200 && JSON.parse((await fetchChecked(`${base}/v1/status`)).text).revision !== next; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(JSON.parse((await fetchChecked(`${base}/v1/status`)).text).revision, next);
  } finally {
    if (agent) await stop(agent);
    await gitServer?.close();
  }
});

const BLOB_SIZE = 300_000;

async function tftpServe(env: NodeJS.ProcessEnv, wrap: string[] = []): Promise<{ child: ChildProcess; port: number; pumpLine: Promise<string> }> {
  const root = join(work, 'tftp-root');
  if (!existsSync(root)) {
    mkdirSync(root);
    writeFileSync(join(root, 'blob.bin'), randomBytes(BLOB_SIZE));
  }
  const port = await freePort();
  const child = spawn(wrap[0] ?? binary, [...wrap.slice(1), ...(wrap.length ? [binary] : []), 'serve', 'tftp', '--root', root, '--listen', `127.0.0.1:${port}`, '--pump', 'auto'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  await waitForLine(child, /tftp serving/, 30_000);
  const pumpLine = waitForLine(child, /"file":"blob\.bin".*"pump":/, 60_000);
  return { child, port, pumpLine };
}

test('the native TFTP pump is loaded from a private directory that is removed at exit', { skip: existsSync(join(RELEASE.root, 'build/Release/tftp_engine.node')) ? false : 'the native pump was not built here', timeout: 120_000 }, async () => {
  const before = new Set(seaDirs());
  const { child, port, pumpLine } = await tftpServe(process.env);
  try {
    const mine = seaDirs().filter((n) => !before.has(n) && n.startsWith(`forseti-sea-${child.pid}-`));
    assert.equal(mine.length, 1, `one private directory of pid ${child.pid}: ${seaDirs().join(' ')}`);
    const dir = join(tmpdir(), mine[0] ?? '');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'build/Release/tftp_engine.node')).mode & 0o777, 0o400);
    const got = await runCommand(['curl', '-sS', '-o', join(work, 'got.bin'), `tftp://127.0.0.1:${port}/blob.bin`]);
    assert.equal(got.code, 0, got.stderr);
    assert.match(await pumpLine, /"pump":"native"/);
    assert.equal(statSync(join(work, 'got.bin')).size, BLOB_SIZE);
    await stop(child);
    assert.equal(existsSync(dir), false, 'the private directory is gone after SIGTERM');
  } finally {
    await stop(child);
  }
});

test('where the temporary directory cannot hold code (noexec), TFTP falls back to the JavaScript pump', { skip: process.getuid?.() === 0 ? false : 'needs root for a noexec mount in a mount namespace', timeout: 120_000 }, async () => {
  const noexec = join(work, 'noexec');
  mkdirSync(noexec);
  const wrap = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o noexec,mode=1777 tmpfs ${noexec} && exec "$@"`, 'sh'];
  const { child, port, pumpLine } = await tftpServe({ ...process.env, TMPDIR: noexec }, wrap);
  try {
    const got = await runCommand(['curl', '-sS', '-o', join(work, 'got-js.bin'), `tftp://127.0.0.1:${port}/blob.bin`]);
    assert.equal(got.code, 0, got.stderr);
    assert.match(await pumpLine, /"pump":"js"/);
    assert.equal(statSync(join(work, 'got-js.bin')).size, BLOB_SIZE);
  } finally {
    await stop(child);
  }
});
