// The agent in-process against the real Git server, without QEMU: the lifecycle through the boot HTTP service,
// a BMC that cannot be reached, and a restart whose branch head is invalid.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Agent } from '../src/agent/agent.ts';
import type { AgentConfig } from '../src/agent/config.ts';
import { createLogger } from '../src/log.ts';
import { DEFAULT_IMAGE_POLICY } from '../src/render/image-limits.ts';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { readStatus, waitForStatus } from './e2e/status-branch.ts';
import { bootScriptFrom, phoneHomeFrom } from './fixtures/as-host.ts';
import './fixtures/api-contract.ts';
import { freeTcpPort } from './fixtures/free-port.ts';

/** The agent's HTTP port: one the kernel chose, so two runs side by side never meet. */
const PORT = await freeTcpPort();
const BASE = `http://127.0.0.1:${PORT}`;
const log = createLogger({ level: process.env.FORSETI_TEST_LOG ?? 'silent' });
let dir = '';
let git: GitServer;
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

function host(name: string, mac: string, ip: string, bmc: string, role = 'worker'): string {
  return `apiVersion: forseti/v1\nkind: Host\nname: ${name}\nmacs: [${mac}]\nip: ${ip}\nbmc: ${bmc}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: ${role}\n`;
}

async function labFiles(): Promise<Record<string, string>> {
  const kernel = join(dir, 'mirror', 'vmlinuz');
  const initrd = join(dir, 'mirror', 'initrd.img');
  await mkdir(dirname(kernel), { recursive: true });
  await writeFile(kernel, 'kernel');
  await writeFile(initrd, 'initrd');
  return {
    'site.yaml': `apiVersion: forseti/v1\nkind: Site\nname: loop\nnetwork: {interface: lo, subnet: 127.0.0.0/24, dns: []}\nagent: {address: 127.0.0.1, httpPort: ${PORT}}\npolicies: {provisionTimeoutSeconds: 600}\n`,
    'images/tiny.yaml': `apiVersion: forseti/v1\nkind: Image\nname: tiny\nkernel: {url: '${pathToFileURL(kernel).href}', sha256: ${sha('kernel')}}\ninitrd: {url: '${pathToFileURL(initrd).href}', sha256: ${sha('initrd')}}\n`,
    'profiles/worker.yaml': 'apiVersion: forseti/v1\nkind: Profile\nname: worker\nboot: {image: tiny, cmdline: "console=ttyS0 role={{ host.role }}"}\n',
    'hosts/hand.yaml': host('hand', '02:00:00:00:00:01', '127.0.0.11', '{type: manual}'),
    'hosts/lost.yaml': host('lost', '02:00:00:00:00:02', '127.0.0.12', '{type: ipmi, address: 127.0.0.1, port: 9, credential: lost-bmc}'),
  };
}

function agentConfig(): AgentConfig {
  return {
    lab: { url: git.repoUrl('lab'), branch: 'main', pollSeconds: 3600 },
    status: { branch: 'forseti-status', batchSeconds: 0.2, author: { name: 'forseti', email: 'forseti@localhost' } },
    stateDir: join(dir, 'state'),
    secretsFile: join(dir, 'secrets.yaml'),
    serve: { bindAddress: '127.0.0.1', dhcp: false, tftp: false, ipxeDir: '/usr/lib/ipxe' },
    bmc: { minIntervalMs: 0, timeoutMs: 5000, retries: 0 },
    reconcileIntervalMs: 200,
    images: { ...DEFAULT_IMAGE_POLICY, fileRoots: [join(dir, 'mirror')] },
  };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forseti-agent-'));
  await writeFile(join(dir, 'secrets.yaml'), 'lost-bmc: {username: admin, password: s3cret-never-logged, use: [bmc], addresses: [127.0.0.1]}\n');
  git = await startGitServer();
  const seed = join(dir, 'seed');
  for (const [path, content] of Object.entries(await labFiles())) {
    await mkdir(dirname(join(seed, path)), { recursive: true });
    await writeFile(join(seed, path), content);
  }
  await createBareRepo(git, 'lab', seed);
});

after(async () => {
  await git?.close();
  await rm(dir, { recursive: true, force: true });
});

test('lifecycle: a manual host converges by phone-home; an unreachable BMC holds back its host only; a restart on an invalid head serves the last good commit', { timeout: 180_000 }, async () => {
  const agent = new Agent(agentConfig(), log);
  await agent.start();
  let first = '';
  try {
    first = agent.current?.revision ?? '';
    assert.match(first, /^[0-9a-f]{40}$/);
    const { script: install, token } = await bootScriptFrom(BASE, '02:00:00:00:00:01', '127.0.0.11');
    assert.match(install, new RegExp(`kernel http://127\\.0\\.0\\.1:${PORT}/images/[0-9a-f]{64}/vmlinuz initrd=initrd\\.img console=ttyS0 role=worker forseti\\.callback=`));
    assert.match(token, /^[0-9a-f]{32}$/);
    const home = await phoneHomeFrom(BASE, '127.0.0.11', token, 'role=worker');
    assert.equal(home.status, 200);
    const status = await waitForStatus(
      git, 'lab',
      (s) => s.hosts.get('hand')?.phase === 'Converged' && s.hosts.get('lost')?.phase === 'Enrolling',
      120_000, 'hand Converged and lost still Enrolling',
    );
    assert.equal(status.hosts.get('hand')?.revision, first);
    const lost = status.hosts.get('lost');
    assert.equal(lost?.lastError?.step, 'enroll', 'a BMC that does not answer holds its host in enrolment, retried with back-off');
    assert.match(lost?.lastError?.message ?? '', /lost/);
    const branchText = Object.values(await import('./fixtures/git-server.ts').then((m) => m.readBranchFiles(git, 'lab', 'forseti-status'))).join('\n');
    assert.doesNotMatch(branchText, /s3cret-never-logged/);
    assert.ok(!branchText.includes(token), 'the token is not on the status branch');
  } finally {
    await agent.stop();
  }

  const bad = await commitFiles(git, 'lab', 'main', { 'hosts/hand.yaml': host('hand', '02:00:00:00:00:01', '127.0.0.11', '{type: manual}', 'no-such-role') }, 'break it');
  const restarted = new Agent(agentConfig(), log);
  await restarted.start();
  try {
    assert.equal(restarted.current?.revision, first, 'the last good commit serves after the restart');
    const disk = await (await fetch(`${BASE}/v1/boot/02-00-00-00-00-01`)).text();
    assert.match(disk, /hand is installed with role worker; booting from local disk/, 'the journal survived the restart');
    const status = await waitForStatus(git, 'lab', (s) => s.site?.rejected?.revision === bad, 30_000, 'the bad head rejected');
    assert.equal(status.site?.revision, first);
    assert.ok(status.site?.rejected?.errors.some((e) => e.startsWith('hosts/hand.yaml:8:7: role "no-such-role"')), status.site?.rejected?.errors.join('\n'));
  } finally {
    await restarted.stop();
  }
  assert.equal((await readStatus(git, 'lab')).hosts.get('hand')?.phase, 'Converged');
});
