// `forseti doctor` on a prepared box: a port held by another process and an unreachable BMC are named, the rest
// passes; --json says the same; inside a network namespace, another DHCP server on the lab's interface is
// judged against the site's DHCP mode.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { writeTree } from './fixtures/loopback-lab.ts';
import { freePort, runCommand, SOURCE_CLI, type Run } from './fixtures/cli-run.ts';
import { createSegmentLab, hasCommand, startAddressOnlyDnsmasq, stopNsProcess, type NsProcess, type SegmentLab } from './fixtures/dhcp/netns.ts';

let work = '';
let git: GitServer;
let holder: TcpServer;
let heldPort = 0;
let closedPort = 0;

const doctor = (args: string[], prefix: string[] = []): Promise<Run> => runCommand([...prefix, ...SOURCE_CLI, 'doctor', ...args]);
const line = (out: string, check: string): string => out.split('\n').find((l) => l.slice(6).startsWith(`${check}:`)) ?? `(no ${check} line)\n${out}`;

function site(extra: { interface: string; subnet: string; address: string; mode: string; http: number; tftp: number }): string {
  return `apiVersion: forseti/v1\nkind: Site\nname: doc\nnetwork: {interface: ${extra.interface}, subnet: ${extra.subnet}, dns: []}\ndhcp: {mode: ${extra.mode}}\nagent: {address: ${extra.address}, httpPort: ${extra.http}, tftpPort: ${extra.tftp}}\n`;
}
const HOST = (bmcPort: number): string =>
  `apiVersion: forseti/v1\nkind: Host\nname: bld-001\nmacs: ['02:00:00:00:0d:01']\nip: 127.0.0.81\nbmc: {type: redfish, address: 127.0.0.1, port: ${bmcPort}, credential: ilo, tls: {insecure: true}}\nrole: off\n`;
const OFF = 'apiVersion: forseti/v1\nkind: Profile\nname: off\nboot: {off: true}\n';

function agentConfig(dir: string, url: string, ipxeDir: string, extra = '', iloAddresses = '127.0.0.1'): string {
  const file = join(dir, `agent-${Math.random().toString(36).slice(2)}.yaml`);
  const secrets = join(dir, `secrets-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(secrets, `ilo: {username: admin, password: not-a-real-one, use: [bmc], addresses: [${iloAddresses}], allowInsecureTls: true}\n`);
  writeFileSync(file, `lab: {url: '${url}', branch: main}\nstateDir: ${join(dir, 'state')}\nsecretsFile: ${secrets}\nserve: {bindAddress: 127.0.0.1, dhcp: false, tftp: true, ipxeDir: ${ipxeDir}}\n${extra}`);
  return file;
}

let ipxeDir = '';
before(async () => {
  work = mkdtempSync(join(tmpdir(), 'forseti-doctor-test-'));
  ipxeDir = join(work, 'ipxe');
  mkdirSync(ipxeDir);
  for (const f of ['undionly.kpxe', 'ipxe.efi', 'snponly.efi']) writeFileSync(join(ipxeDir, f), 'ipxe');
  // The agent's HTTP port, already taken by another process (this one).
  holder = createTcpServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  heldPort = (holder.address() as { port: number }).port;
  closedPort = await freePort();
  git = await startGitServer();
  const seed = join(work, 'seed');
  await writeTree(seed, {
    'site.yaml': site({ interface: 'lo', subnet: '127.0.0.0/24', address: '127.0.0.1', mode: 'off', http: heldPort, tftp: await freePort() }),
    'hosts/bld-001.yaml': HOST(closedPort),
    'profiles/off.yaml': OFF,
  });
  await createBareRepo(git, 'lab', seed);
});

after(async () => {
  await new Promise((r) => holder.close(r));
  await git?.close();
  rmSync(work, { recursive: true, force: true });
});

test('a held port and an unreachable BMC fail, one line each; everything else passes; exit 1', { timeout: 120_000 }, async () => {
  const config = agentConfig(work, git.repoUrl('lab'), ipxeDir);
  const r = await doctor(['--config', config, '--no-dhcp-probe']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(line(r.stdout, `port tcp/${heldPort}`), new RegExp(`^FAIL  port tcp/${heldPort}: HTTP .*held by node \\(pid ${process.pid}\\)`));
  assert.match(line(r.stdout, `bmc redfish 127.0.0.1:${closedPort}`), /^FAIL  bmc redfish 127\.0\.0\.1:\d+: unreachable: .*\(bld-001\)$/);
  for (const ok of ['config', 'secrets', 'capabilities', 'ipxe', 'git', 'clock', 'lab', 'interface']) assert.match(line(r.stdout, ok), /^OK    /, ok);
  assert.match(line(r.stdout, 'git'), /main at [0-9a-f]{12}; status branch forseti-status will be created/);
  assert.match(line(r.stdout, 'dhcp'), /^SKIP  dhcp: /);
  assert.match(r.stdout, /\n2 checks failed\n$/);
  assert.ok(!r.stdout.includes('not-a-real-one'), 'no secret in the output');
});

test('a commit the agent would reject (a BMC outside its credential\'s addresses) fails, and no BMC is contacted', { timeout: 120_000 }, async () => {
  const config = agentConfig(work, git.repoUrl('lab'), ipxeDir, '', '10.77.1.0/24');
  const r = await doctor(['--config', config, '--no-dhcp-probe']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(line(r.stdout, 'agent policy'), /^FAIL  agent policy: the agent would reject this commit:$/);
  assert.match(r.stdout, new RegExp(`^hosts/bld-001\\.yaml:6:\\d+: credential "ilo" may not be sent to 127\\.0\\.0\\.1 port ${closedPort}`, 'm'));
  assert.match(line(r.stdout, 'bmc'), /^SKIP  bmc: no BMC is contacted/);
});

test('a commit naming a DHCP relay the agent config does not list fails the agent policy, at the relay', { timeout: 120_000 }, async () => {
  const dir = join(work, 'relays');
  const siteYaml = site({ interface: 'lo', subnet: '127.0.0.0/24', address: '127.0.0.1', mode: 'proxy', http: await freePort(), tftp: await freePort() })
    .replace('dhcp: {mode: proxy}', 'dhcp: {mode: proxy, relays: [127.0.0.50, 192.0.2.7]}');
  await writeTree(dir, { 'site.yaml': siteYaml, 'profiles/off.yaml': OFF });
  const config = agentConfig(work, 'http://127.0.0.1:9/lab.git', ipxeDir);
  writeFileSync(config, readFileSync(config, 'utf8').replace('dhcp: false,', 'dhcp: true, interface: lo, dhcpModes: [proxy], dhcpRelays: [127.0.0.50],'));
  const r = await doctor(['--config', config, '--lab', dir, '--no-dhcp-probe']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(line(r.stdout, 'agent policy'), /^FAIL  agent policy: the agent would reject this commit:$/);
  const at = 'dhcp: {mode: proxy, relays: [127.0.0.50, '.length + 1;
  assert.match(r.stdout, new RegExp(`^site\\.yaml:5:${at}: dhcp\\.relays names 192\\.0\\.2\\.7, which is not a relay the agent's config allows \\(serve\\.dhcpRelays: \\[127\\.0\\.0\\.50\\]\\)`, 'm'));
  assert.ok(!/127\.0\.0\.50,? which/.test(r.stdout), 'the listed relay passes');
});

test('--json gives every check with its status', { timeout: 120_000 }, async () => {
  const config = agentConfig(work, git.repoUrl('lab'), ipxeDir);
  const r = await doctor(['--config', config, '--no-dhcp-probe', '--json']);
  assert.equal(r.code, 1);
  const doc = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ check: string; status: string; message: string }> };
  assert.equal(doc.ok, false);
  assert.deepEqual(doc.checks.filter((c) => c.status === 'fail').map((c) => c.check).sort(), [`bmc redfish 127.0.0.1:${closedPort}`, `port tcp/${heldPort}`]);
});

test('missing iPXE binaries, a wrong branch and an unreadable config are named', { timeout: 120_000 }, async () => {
  const empty = join(work, 'no-ipxe');
  mkdirSync(empty, { recursive: true });
  const config = agentConfig(work, git.repoUrl('lab'), empty).replace(/\.yaml$/, '');
  writeFileSync(`${config}-b.yaml`, `lab: {url: '${git.repoUrl('lab')}', branch: nope}\nserve: {ipxeDir: ${empty}}\nstateDir: ${work}\n`);
  const r = await doctor(['--config', `${config}-b.yaml`, '--no-dhcp-probe']);
  assert.equal(r.code, 1);
  assert.match(line(r.stdout, 'ipxe'), /^FAIL  ipxe: .* lacks undionly\.kpxe, ipxe\.efi/);
  assert.match(line(r.stdout, 'git'), /^FAIL  git: .* has no branch nope \(it has main\)/);
  const missing = await doctor(['--config', join(work, 'nowhere.yaml')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stdout, /^FAIL  config: .*nowhere\.yaml: cannot read: ENOENT/m);
});

const nsSkip = process.getuid?.() === 0 && hasCommand('dnsmasq') ? false : 'needs root and dnsmasq for a network namespace';

test('in a namespace: another DHCP server fails full mode and satisfies proxy mode', { skip: nsSkip, timeout: 120_000 }, async () => {
  let lab: SegmentLab | undefined;
  let dnsmasq: NsProcess | undefined;
  try {
    lab = createSegmentLab({ agentCidr: '10.231.7.2/24', dhcpCidr: '10.231.7.1/24' });
    dnsmasq = await startAddressOnlyDnsmasq(lab, '10.231.7.100,10.231.7.150', join(work, 'leases'));
    for (const [mode, expected] of [['full', /^FAIL  dhcp: dhcp\.mode full, but 10\.231\.7\.1 \(offered 10\.231\.7\.1\d\d\) also answer on br0/], ['proxy', /^OK    dhcp: 10\.231\.7\.1 \(offered 10\.231\.7\.1\d\d\) hands out addresses/]] as const) {
      const dir = join(work, `ns-${mode}`);
      await writeTree(dir, { 'site.yaml': site({ interface: 'br0', subnet: '10.231.7.0/24', address: '10.231.7.2', mode, http: 8080, tftp: 69 }), 'profiles/off.yaml': OFF });
      const config = agentConfig(work, 'http://127.0.0.1:9/lab.git', ipxeDir, '');
      const r = await doctor(['--config', config, '--lab', dir, '--dhcp-wait', '5'], ['ip', 'netns', 'exec', lab.agent]);
      assert.match(line(r.stdout, 'interface'), /^OK    interface: br0 holds 10\.231\.7\.2/);
      assert.match(line(r.stdout, 'dhcp'), expected);
    }
  } finally {
    await stopNsProcess(dnsmasq);
    lab?.destroy();
  }
});
