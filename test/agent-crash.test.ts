// Crash safety: the agent is killed (SIGKILL) at random points of a reconcile, many times, and restarted.
// Invariants: a host is never power-cycled twice for one change, and the status branch ends up holding what the
// agent's journal holds: no status update is lost.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { startFakeBmc, type FakeBmc } from './fixtures/ipmi/support.ts';
import { readStatus, waitForStatus } from './e2e/status-branch.ts';
import { bootScriptFrom, phoneHomeFrom } from './fixtures/as-host.ts';
import { freeTcpPort } from './fixtures/free-port.ts';

/** The agent's HTTP port: one the kernel chose, so two runs side by side never meet. */
const PORT = await freeTcpPort();
const HOSTS = ['c1', 'c2', 'c3'];
const KILLS = 6;
let dir = '';
let git: GitServer;
const bmcs = new Map<string, FakeBmc>();
let agent: ChildProcess | null = null;
let stopMachines = false;
let seed = 1;
const random = (): number => ((seed = (seed * 48271) % 2147483647) / 2147483647);

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const mac = (i: number): string => `02:00:00:00:01:0${i + 1}`;
const ip = (i: number): string => `127.0.0.${21 + i}`;
const hostFile = (name: string, i: number, role: string, bmc: FakeBmc): string =>
  `apiVersion: forseti/v1\nkind: Host\nname: ${name}\nmacs: ['${mac(i)}']\nip: ${ip(i)}\n` +
  `bmc: {type: ipmi, address: 127.0.0.1, port: ${bmc.sim.port}, credential: crash-bmc}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: ${role}\n`;

async function startAgentProcess(): Promise<void> {
  agent = spawn(process.execPath, [resolve('bin/forseti.js'), 'agent', '--config', join(dir, 'agent.yaml')], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, FORSETI_LOG_LEVEL: 'error' },
  });
}

async function killAgent(signal: NodeJS.Signals): Promise<void> {
  const child = agent;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
  agent = null;
}

/** Stands in for the machines: each power-on after a one-time PXE boots the role the agent serves and phones home. */
async function runMachines(): Promise<void> {
  const seen = new Map<string, number>();
  while (!stopMachines) {
    for (const [i, name] of HOSTS.entries()) {
      const bmc = bmcs.get(name);
      if (!bmc) continue;
      const count = await boots(bmc);
      if (count <= (seen.get(name) ?? 0)) continue;
      try {
        const { script, token } = await bootScriptFrom(`http://127.0.0.1:${PORT}`, mac(i), ip(i));
        const role = /role=(\S+)/.exec(script)?.[1];
        if (role) {
          const res = await phoneHomeFrom(`http://127.0.0.1:${PORT}`, ip(i), token, `role=${role}`);
          if (res.status !== 200) continue;
        }
        seen.set(name, count);
      } catch {
        // The agent is down right now: the machine keeps trying, as a booting OS would retry its phone-home.
      }
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forseti-crash-'));
  git = await startGitServer();
  for (const name of HOSTS) bmcs.set(name, await startFakeBmc(name, 'crash-pass'));
  const mirror = join(dir, 'mirror');
  await mkdir(mirror);
  await writeFile(join(mirror, 'vmlinuz'), 'k');
  await writeFile(join(mirror, 'initrd.img'), 'i');
  const files: Record<string, string> = {
    'site.yaml': `apiVersion: forseti/v1\nkind: Site\nname: crash\nnetwork: {interface: lo, subnet: 127.0.0.0/24, dns: []}\nagent: {address: 127.0.0.1, httpPort: ${PORT}}\npolicies: {provisionTimeoutSeconds: 600, stepTimeoutSeconds: 30}\n`,
    'images/tiny.yaml': `apiVersion: forseti/v1\nkind: Image\nname: tiny\nkernel: {url: '${pathToFileURL(join(mirror, 'vmlinuz')).href}', sha256: ${sha('k')}}\ninitrd: {url: '${pathToFileURL(join(mirror, 'initrd.img')).href}', sha256: ${sha('i')}}\n`,
    'profiles/a.yaml': 'apiVersion: forseti/v1\nkind: Profile\nname: a\nboot: {image: tiny, cmdline: "role={{ host.role }}"}\n',
    'profiles/b.yaml': 'apiVersion: forseti/v1\nkind: Profile\nname: b\nboot: {image: tiny, cmdline: "role={{ host.role }}"}\n',
  };
  HOSTS.forEach((name, i) => (files[`hosts/${name}.yaml`] = hostFile(name, i, 'a', bmcs.get(name) as FakeBmc)));
  const seedDir = join(dir, 'seed');
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(seedDir, path)), { recursive: true });
    await writeFile(join(seedDir, path), content);
  }
  await createBareRepo(git, 'lab', seedDir);
  await writeFile(join(dir, 'secrets.yaml'), 'crash-bmc: {username: admin, password: crash-pass, use: [bmc], addresses: [127.0.0.1]}\n');
  await writeFile(
    join(dir, 'agent.yaml'),
    `lab: {url: '${git.repoUrl('lab')}', pollSeconds: 1}\nstatus: {batchSeconds: 0.3}\nstateDir: ${join(dir, 'state')}\nsecretsFile: ${join(dir, 'secrets.yaml')}\n` +
      `serve: {bindAddress: 127.0.0.1, dhcp: false, tftp: false}\nbmc: {minIntervalMs: 0, timeoutMs: 10000, retries: 1}\nreconcileIntervalMs: 200\n` +
      `images: {fileRoots: [${mirror}]}\n`,
  );
});

after(async () => {
  stopMachines = true;
  await killAgent('SIGKILL');
  for (const bmc of bmcs.values()) await bmc.stop();
  await git?.close();
  await rm(dir, { recursive: true, force: true });
});

async function boots(bmc: FakeBmc): Promise<number> {
  const calls = await bmc.chassisCalls().catch(() => [] as string[]); // no calls.log before the first call
  return calls.filter((c) => c === 'set power 1').length;
}

async function bootCounts(): Promise<number[]> {
  return Promise.all(HOSTS.map((name) => boots(bmcs.get(name) as FakeBmc)));
}

/** Kills the agent at random moments while it works through a change, then lets a last run finish it. */
async function churn(): Promise<void> {
  for (let k = 0; k < KILLS; k++) {
    await startAgentProcess();
    await new Promise((r) => setTimeout(r, 600 + random() * 2400));
    await killAgent('SIGKILL');
  }
  await startAgentProcess();
}

const settled = (s: Awaited<ReturnType<typeof readStatus>>, revision: string): boolean =>
  HOSTS.every((h) => {
    const st = s.hosts.get(h);
    return st?.attemptedRevision === revision && (st.phase === 'Converged' || st.phase === 'Failed');
  });

test('killed at random points, the agent never power-cycles a host twice for one change and loses no status', { timeout: 300_000 }, async () => {
  const machines = runMachines();
  const first = await readHead();
  await churn();
  await waitForStatus(git, 'lab', (s) => settled(s, first), 120_000, 'every host settled at the first commit');
  const afterFirst = await bootCounts();
  assert.ok(afterFirst.every((n) => n <= 1), `boots per host for the first change: ${afterFirst.join(', ')}`);
  await killAgent('SIGKILL');

  const files: Record<string, string> = {};
  HOSTS.forEach((name, i) => (files[`hosts/${name}.yaml`] = hostFile(name, i, 'b', bmcs.get(name) as FakeBmc)));
  const second = await commitFiles(git, 'lab', 'main', files, 'every host becomes b');
  await churn();
  await waitForStatus(git, 'lab', (s) => settled(s, second), 120_000, 'every host settled at the second commit');
  const afterSecond = await bootCounts();
  afterSecond.forEach((n, i) => assert.ok(n - (afterFirst[i] ?? 0) <= 1, `host ${HOSTS[i]} booted ${n - (afterFirst[i] ?? 0)} times for the second change`));

  // A clean stop flushes status; the status branch then holds exactly what the journal holds.
  await killAgent('SIGTERM');
  stopMachines = true;
  await machines;
  const journal = JSON.parse(await readFile(join(dir, 'state', 'journal.json'), 'utf8')) as { hosts: Record<string, { phase: string; appliedRevision?: string }> };
  const status = await readStatus(git, 'lab');
  for (const name of HOSTS) {
    assert.equal(status.hosts.get(name)?.phase, journal.hosts[name]?.phase, `${name}: status branch vs journal`);
    assert.equal(status.hosts.get(name)?.revision ?? undefined, journal.hosts[name]?.appliedRevision, `${name}: applied revision`);
  }
  for (const name of HOSTS) {
    const st = status.hosts.get(name);
    if (st?.phase === 'Failed') assert.match(st.lastError?.message ?? '', /no progress past step requested/, 'only a crash between journal and power cycle may leave a host failed, never cycled twice');
  }

  async function readHead(): Promise<string> {
    const { git: runGit } = await import('./fixtures/git/git-cli.ts');
    return (await runGit(['ls-remote', git.repoUrl('lab'), 'refs/heads/main'])).split(/\s/)[0] ?? '';
  }
});
