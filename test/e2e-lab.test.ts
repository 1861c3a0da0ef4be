// The walking skeleton, end to end against real peers: a Git server (git http-backend), the forseti agent with
// its own DHCP/TFTP/HTTP inside a network namespace, QEMU guests whose NIC ROM is iPXE, and ipmi_sim BMCs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commitFiles, createBareRepo, revertCommit, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { ensureGuestAssets, startVlab, type GuestAssets, type Vlab } from './vlab/index.ts';
import { startAgent, type AgentProcess } from './e2e/agent-process.ts';
import { hostFile, labFiles } from './e2e/lab-files.ts';
import { readStatus, waitForStatus } from './e2e/status-branch.ts';

const canRun = process.getuid?.() === 0 && existsSync('/dev/net/tun');
const skip = canRun ? false : 'needs root and /dev/net/tun for network namespaces and QEMU taps';
const BOOT_TIMEOUT = 8 * 60_000;

let workDir = '';
let git: GitServer;
let vlab: Vlab;
let agent: AgentProcess;
let assets: GuestAssets;
let labUrl = '';
const revisions: Record<string, string> = {};

before(async () => {
  if (!canRun) return;
  workDir = await mkdtemp(join(tmpdir(), 'forseti-e2e-'));
  assets = await ensureGuestAssets();
  git = await startGitServer({ socketPath: join(workDir, 'git.sock') });
  vlab = await startVlab({
    nodes: [
      { name: 'node1', mac: '52:54:00:00:00:01' },
      { name: 'node2', mac: '52:54:00:00:00:02' },
    ],
  });
  await vlab.forwardUnixSocket('127.0.0.1:9418', join(workDir, 'git.sock'));
  const seed = join(workDir, 'seed');
  const files = labFiles(assets, vlab.nodes, { node1: 'slurm-compute', node2: 'talos-worker' });
  const { mkdir, writeFile } = await import('node:fs/promises');
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(seed, path, '..'), { recursive: true });
    await writeFile(join(seed, path), content);
  }
  await createBareRepo(git, 'lab', seed);
  labUrl = 'http://127.0.0.1:9418/lab.git';
  agent = await startAgent({ vlab, workDir, labUrl, assets });
}, { timeout: 10 * 60_000 });

after(async () => {
  await agent?.stop();
  await vlab?.stop();
  await git?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const node = (name: string) => {
  const n = vlab.nodes.find((x) => x.name === name);
  assert.ok(n, name);
  return n;
};
const powerOns = (name: string): number => vlab.powerLog(name).filter((l) => /power-on/.test(l)).length;

test('1. two hosts with roles A and B converge and the status branch shows it', { skip, timeout: BOOT_TIMEOUT }, async () => {
  const status = await waitForStatus(
    git, 'lab',
    (s) => ['node1', 'node2'].every((h) => s.hosts.get(h)?.phase === 'Converged' && s.hosts.get(h)?.revision === s.site?.revision),
    BOOT_TIMEOUT - 10_000, 'node1 and node2 Converged at the applied revision',
  );
  revisions.first = status.site?.revision ?? '';
  assert.match(revisions.first, /^[0-9a-f]{40}$/);
  assert.equal(status.hosts.get('node1')?.role, 'slurm-compute');
  assert.equal(status.hosts.get('node2')?.role, 'talos-worker');
  await vlab.waitForSerial('node1', /PHONE-HOME-OK role=slurm-compute/, 5_000);
  await vlab.waitForSerial('node2', /PHONE-HOME-OK role=talos-worker/, 5_000);
  assert.equal(powerOns('node1'), 1);
  assert.equal(powerOns('node2'), 1);
});

test('2. a role change reprovisions that host only', { skip, timeout: BOOT_TIMEOUT }, async () => {
  const node1Before = powerOns('node1');
  const node2Before = powerOns('node2');
  revisions.change = await commitFiles(git, 'lab', 'main', { 'hosts/node2.yaml': hostFile(node('node2'), 'slurm-compute') }, 'node2 becomes a Slurm compute node');
  await waitForStatus(
    git, 'lab',
    (s) => s.hosts.get('node2')?.phase === 'Converged' && s.hosts.get('node2')?.revision === revisions.change,
    BOOT_TIMEOUT - 10_000, 'node2 Converged at the role-change commit',
  );
  const status = await readStatus(git, 'lab');
  assert.equal(status.hosts.get('node2')?.role, 'slurm-compute');
  assert.equal(status.hosts.get('node1')?.revision, revisions.first, 'node1 was not touched');
  assert.match(vlab.serial('node2'), /PHONE-HOME-OK role=slurm-compute/);
  assert.equal(powerOns('node1'), node1Before, 'node1 was not power-cycled');
  assert.ok(powerOns('node2') > node2Before, 'node2 was power-cycled');
});

test('3. git revert brings the host back to its first role', { skip, timeout: BOOT_TIMEOUT }, async () => {
  const node1Before = powerOns('node1');
  revisions.revert = await revertCommit(git, 'lab', 'main', revisions.change ?? '');
  const status = await waitForStatus(
    git, 'lab',
    (s) => s.hosts.get('node2')?.phase === 'Converged' && s.hosts.get('node2')?.revision === revisions.revert,
    BOOT_TIMEOUT - 10_000, 'node2 Converged at the revert commit',
  );
  assert.equal(status.hosts.get('node2')?.role, 'talos-worker');
  const serial = vlab.serial('node2');
  assert.ok(serial.lastIndexOf('PHONE-HOME-OK role=talos-worker') > serial.lastIndexOf('PHONE-HOME-OK role=slurm-compute'));
  assert.equal(powerOns('node1'), node1Before, 'node1 was not power-cycled');
});

test('4. an invalid commit is rejected whole: nothing power-cycled, the last generation serves, status names file:line', { skip, timeout: 120_000 }, async () => {
  const before = { node1: powerOns('node1'), node2: powerOns('node2') };
  const broken = hostFile(node('node1'), 'no-such-role').replace('ip: 10.77.0.11', 'ip: 10.77.0.11\nfavourite_colour: blue');
  revisions.bad = await commitFiles(git, 'lab', 'main', { 'hosts/node1.yaml': broken }, 'a broken host file');
  const status = await waitForStatus(git, 'lab', (s) => s.site?.rejected?.revision === revisions.bad, 60_000, 'the broken commit rejected');
  assert.equal(status.site?.revision, revisions.revert, 'the last good revision keeps serving');
  const errors = status.site?.rejected?.errors ?? [];
  assert.ok(errors.some((e) => /^hosts\/node1\.yaml:\d+:\d+: /.test(e)), errors.join('\n'));
  const script = await vlab.exec('curl', ['-sS', 'http://10.77.0.1:8080/v1/boot/52-54-00-00-00-01']);
  assert.match(script.stdout, /^#!ipxe/);
  assert.match(script.stdout, /booting from local disk/, 'node1 is still answered from the last good generation');
  assert.deepEqual({ node1: powerOns('node1'), node2: powerOns('node2') }, before);
  // Put the lab back in order for the next step.
  revisions.fixed = await commitFiles(git, 'lab', 'main', { 'hosts/node1.yaml': hostFile(node('node1'), 'slurm-compute') }, 'fix node1');
  await waitForStatus(git, 'lab', (s) => s.site?.revision === revisions.fixed && s.site?.rejected === null, 60_000, 'the fixed commit applied');
});

test('5. a converged host power-cycled by hand boots from disk instead of reinstalling', { skip, timeout: BOOT_TIMEOUT }, async () => {
  const from = agent.logLines().length;
  await vlab.ipmitool('node1', 'chassis', 'power', 'cycle');
  const served = await agent.waitForLog((l) => l.msg === 'ipxe script served' && l.host === 'node1', BOOT_TIMEOUT - 10_000, from);
  assert.equal(served.answer, 'disk');
  await vlab.waitForSerial('node1', /node1 is installed with role slurm-compute; booting from local disk/, 60_000);
  const status = await readStatus(git, 'lab');
  assert.equal(status.hosts.get('node1')?.phase, 'Converged');
});

test('6. no secret reaches the agent log: neither the BMC password nor a host token', { skip }, async () => {
  const { readFile } = await import('node:fs/promises');
  const { hostToken } = await import('../src/render/token.ts');
  const key = Buffer.from((await readFile(join(workDir, 'agent-state', 'agent.key'), 'utf8')).trim(), 'hex');
  const text = agent.logLines().map((l) => JSON.stringify(l)).join('\n');
  assert.ok(text.includes('host state changed'), 'the log has the state changes');
  assert.ok(!text.includes(node('node1').bmc.password), 'BMC password in the log');
  for (const name of ['node1', 'node2']) assert.ok(!text.includes(hostToken(key, name)), `token of ${name} in the log`);
});
