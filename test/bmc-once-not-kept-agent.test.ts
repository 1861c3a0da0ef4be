// End to end through the agent: a host whose Redfish BMC keeps no one-time boot override (the "Once not kept"
// personality over HTTPS, its certificate pinned in the lab) converges: the agent provisions it with PXE for every
// boot, sets its boot back to the disk once it phoned home, records what it found on the status branch, and
// `forseti plan` of a later pull request says it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Agent } from '../src/agent/agent.ts';
import { createLogger } from '../src/log.ts';
import { waitForStatus } from './e2e/status-branch.ts';
import { convergeAs } from './fixtures/as-host.ts';
import { git as gitCli } from './fixtures/git/git-cli.ts';
import { createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { loopbackAgentConfig, loopbackLabFiles, writeTree } from './fixtures/loopback-lab.ts';
import { startRedfishBmc, type RedfishBmc } from './fixtures/redfish/bmc.ts';
import { selfSignedCert } from './fixtures/redfish/certs.ts';
import { personality } from './fixtures/redfish/personalities/index.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const log = createLogger({ level: process.env.FORSETI_TEST_LOG ?? 'silent' });
let dir = '';
let git: GitServer;
let bmc: RedfishBmc;
let httpPort = 0;

/** A TCP port nobody listens on right now, for the agent's HTTP service (its site file needs a number). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function hostFile(role: string, fingerprint: string): string {
  return `apiVersion: forseti/v1
kind: Host
name: kv-1
macs: ['02:00:00:00:07:01']
ip: 127.0.0.71
bmc: {type: redfish, address: 127.0.0.1, port: ${bmc.port}, credential: kv-bmc, tls: {fingerprint: 'sha256:${fingerprint}'}}
hardware: {firmware: bios, memoryGiB: 4, disks: [{sizeGB: 10}]}
role: ${role}
`;
}

let fingerprint = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fbmc-once-agent-'));
  const cert = selfSignedCert('IP:127.0.0.1');
  fingerprint = cert.fingerprint256;
  const p = personality('once-not-kept');
  bmc = await startRedfishBmc({ resources: p.resources(), behaviour: { ...p.behaviour, powerDelayPolls: 0 }, tls: { key: cert.key, cert: cert.cert } });
  [httpPort] = await Promise.all([freePort()]);
  const tftpPort = await freePort();
  git = await startGitServer();
  const seed = join(dir, 'seed');
  await writeTree(seed, { ...(await loopbackLabFiles(dir, { http: httpPort, tftp: tftpPort })), 'hosts/kv-1.yaml': hostFile('worker', fingerprint) });
  await createBareRepo(git, 'lab', seed);
});

after(async () => {
  await git?.close();
  await bmc?.close();
  await rm(dir, { recursive: true, force: true });
});

test('a host whose BMC keeps no Once converges, its boot is set back to the disk, the status branch and forseti plan say so', { timeout: 180_000 }, async () => {
  const config = await loopbackAgentConfig(dir, git.repoUrl('lab'), { tftp: false });
  const secretsFile = join(dir, 'kv-secrets.yaml');
  config.secretsFile = secretsFile;
  await writeFile(secretsFile, `kv-bmc: {username: ${bmc.username}, password: ${bmc.password}, use: [bmc], addresses: [127.0.0.1], allowInsecureTls: true}\n`, { mode: 0o600 });
  const agent = new Agent(config, log);
  await agent.start();
  const boot = () => bmc.resource('/redfish/v1/Systems/1')['Boot'] as Record<string, string>;
  try {
    await waitForStatus(git, 'lab', (s) => s.hosts.get('kv-1')?.step === 'power-cycled', 60_000, 'kv-1 power-cycled for its provisioning');
    assert.deepEqual([boot()['BootSourceOverrideTarget'], boot()['BootSourceOverrideEnabled'], boot()['BootSourceOverrideMode']], ['Pxe', 'Continuous', 'Legacy']);

    // The installer phones home from the host's own address with its attempt's token: the host is installed.
    const home = await convergeAs(`http://127.0.0.1:${httpPort}`, { mac: '02:00:00:00:07:01', ip: '127.0.0.71', role: 'worker' });
    assert.equal(home.status, 200);
    const status = await waitForStatus(git, 'lab', (s) => s.hosts.get('kv-1')?.phase === 'Converged' && s.hosts.get('kv-1')?.bmc?.holds === 'disk', 60_000, 'kv-1 Converged with its boot back at the disk');
    assert.deepEqual(status.hosts.get('kv-1')?.bmc, { bootOnce: false, holds: 'disk' });
    assert.deepEqual([boot()['BootSourceOverrideTarget'], boot()['BootSourceOverrideEnabled']], ['Hdd', 'Continuous']);
    const disk = await (await fetch(`http://127.0.0.1:${httpPort}/v1/boot/02-00-00-00-07-01`)).text();
    assert.match(disk, /booting from local disk/, 'the iPXE answer stays a second guard');
  } finally {
    await agent.stop();
  }

  // A pull request moving the host to another role, planned against the status branch the agent wrote.
  const clone = join(dir, 'clone');
  await gitCli(['clone', '-q', git.repoUrl('lab'), clone], dir);
  await gitCli(['fetch', '-q', 'origin', 'forseti-status:refs/remotes/origin/forseti-status'], clone);
  await gitCli(['checkout', '-q', '-b', 'pr'], clone);
  const profile = await readFile(join(clone, 'profiles/worker.yaml'), 'utf8');
  await writeFile(join(clone, 'profiles/batch.yaml'), profile.replace('name: worker', 'name: batch'));
  await writeFile(join(clone, 'hosts/kv-1.yaml'), hostFile('batch', fingerprint));
  await gitCli(['add', '-A'], clone);
  await gitCli(['-c', 'user.name=t', '-c', 'user.email=t@localhost', 'commit', '-q', '-m', 'kv-1 to batch'], clone);
  const plan = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [join(ROOT, 'bin/forseti.js'), 'plan', '--base', 'main', '--head', 'pr', clone], { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    ),
  );
  assert.equal(plan.code, 1, plan.stderr);
  assert.match(plan.stdout, /kv-1.*reprovision from role worker to batch; its BMC keeps no one-time boot override: PXE for every boot until it is installed, then the disk/s);
});
