// Both BMC protocols end to end against real peers, in one virtual lab: a UEFI guest (q35 + OVMF, iPXE's EFI
// NIC ROM) driven over IPMI by OpenIPMI's ipmi_sim, and a BIOS guest driven over Redfish by the fixture BMC
// acting on QEMU, served over HTTPS with a certificate issued by a CA the test makes, which the lab repository
// names in bmc.tls.ca. The agent converges both from Git, then a role change reprovisions the Redfish guest.
// Three QEMU boots in all (TCG is slow): the UEFI guest once, the Redfish guest twice.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import type { LoggedRequest } from './fixtures/redfish/bmc.ts';
import { ensureGuestAssets, startVlab, type GuestAssets, type Vlab, type VlabNode } from './vlab/index.ts';
import { startAgent, type AgentProcess } from './e2e/agent-process.ts';
import { hostFile, labFiles } from './e2e/lab-files.ts';
import { readStatus, waitForStatus } from './e2e/status-branch.ts';
import { orderedSteps } from './e2e/ordered-steps.ts';

const canRun = process.getuid?.() === 0 && existsSync('/dev/net/tun') && existsSync('/usr/share/OVMF/OVMF_CODE_4M.fd');
const skip = canRun ? false : 'needs root, /dev/net/tun and OVMF (Debian package ovmf) for network namespaces and QEMU guests';
const BOOT_TIMEOUT = 8 * 60_000;
const UEFI = 'uefi1';
const REDFISH = 'rf2';
const SYSTEM = '/redfish/v1/Systems/1';
const RESET = `${SYSTEM}/Actions/ComputerSystem.Reset`;

let workDir = '';
let git: GitServer;
let vlab: Vlab;
let agent: AgentProcess;
let assets: GuestAssets;
let ipmitoolTrace = '';
/** The steps below run in order, each on the lab the one before left; what they hand on is written down here. */
const steps = orderedSteps();

/** An `ipmitool` in front of the real one on the agent's PATH: records the arguments (the password travels in the environment, never here). */
async function tracingIpmitool(dir: string, trace: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const wrapper = join(dir, 'ipmitool');
  await writeFile(wrapper, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${trace}'\nexec /usr/bin/ipmitool "$@"\n`);
  await chmod(wrapper, 0o755);
  return dir;
}

before(async () => {
  if (!canRun) return;
  workDir = await mkdtemp(join(tmpdir(), 'forseti-e2e-bmc-'));
  assets = await ensureGuestAssets();
  git = await startGitServer({ socketPath: join(workDir, 'git.sock') });
  vlab = await startVlab({
    nodes: [
      { name: UEFI, mac: '52:54:00:00:00:01', firmware: 'uefi' },
      { name: REDFISH, mac: '52:54:00:00:00:02', bmcType: 'redfish' },
    ],
  });
  await vlab.forwardUnixSocket('127.0.0.1:9418', join(workDir, 'git.sock'));
  const seed = join(workDir, 'seed');
  for (const [path, content] of Object.entries(labFiles(assets, vlab.nodes, { [UEFI]: 'slurm-compute', [REDFISH]: 'talos-worker' }))) {
    await mkdir(join(seed, path, '..'), { recursive: true });
    await writeFile(join(seed, path), content);
  }
  await createBareRepo(git, 'lab', seed);
  ipmitoolTrace = join(workDir, 'ipmitool.trace');
  const bin = await tracingIpmitool(join(workDir, 'bin'), ipmitoolTrace);
  agent = await startAgent({ vlab, workDir, labUrl: 'http://127.0.0.1:9418/lab.git', assets, pollSeconds: 2, env: { PATH: `${bin}:${process.env.PATH ?? ''}` } });
}, { timeout: 10 * 60_000 });

after(async () => {
  await agent?.stop();
  await vlab?.stop();
  await git?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const node = (name: string): VlabNode => {
  const n = vlab.nodes.find((x) => x.name === name);
  assert.ok(n, name);
  return n;
};
const powerOns = (name: string): number => vlab.powerLog(name).filter((l) => /power-on/.test(l)).length;
const redfishCalls = (from = 0): LoggedRequest[] => vlab.redfish(REDFISH).requests.slice(from);
const describeCalls = (calls: LoggedRequest[]): string => calls.map((r) => `${r.method} ${r.path} ${r.status} ${JSON.stringify(r.body ?? '')}`).join('\n');

test('1. a UEFI guest over IPMI and a BIOS guest over Redfish (HTTPS, the lab\'s CA) converge from one commit', { skip, timeout: BOOT_TIMEOUT }, async () => {
  const status = await waitForStatus(
    git, 'lab',
    (s) => [UEFI, REDFISH].every((h) => s.hosts.get(h)?.phase === 'Converged' && s.hosts.get(h)?.revision === s.site?.revision),
    BOOT_TIMEOUT - 10_000, `${UEFI} and ${REDFISH} Converged at the applied revision`,
  );
  steps.made('first', status.site?.revision ?? '');
  assert.equal(status.hosts.get(UEFI)?.role, 'slurm-compute');
  assert.equal(status.hosts.get(REDFISH)?.role, 'talos-worker');
  await vlab.waitForSerial(UEFI, /PHONE-HOME-OK role=slurm-compute/, 5_000);
  await vlab.waitForSerial(REDFISH, /PHONE-HOME-OK role=talos-worker/, 5_000);
  assert.equal(powerOns(UEFI), 1);
  assert.equal(powerOns(REDFISH), 1);

  // IPMI: the one-time PXE override asked for an EFI boot (ipmi_sim keeps only the device), and the guest ran
  // OVMF with iPXE's EFI build.
  const uefi = node(UEFI).bmc;
  const sent = readFileSync(ipmitoolTrace, 'utf8').split('\n').filter((l) => l.includes(`-H ${uefi.address} `));
  assert.ok(sent.some((l) => l.endsWith('chassis bootdev pxe options=efiboot')), sent.join('\n'));
  assert.ok(!readFileSync(ipmitoolTrace, 'utf8').includes(uefi.password), 'no password on an ipmitool command line');
  const uefiSerial = vlab.serial(UEFI);
  assert.match(uefiSerial, /Features: [^\n]*\bEFI\b/, "iPXE's EFI build");
  assert.match(uefiSerial, /EFI stub: /, 'the kernel started through its EFI stub');
  assert.match(uefiSerial, /efi: EFI v[\d.]+ by EDK II/, 'on OVMF');
  assert.ok(vlab.powerLog(UEFI).some((l) => /power-on bootdev=pxe$/.test(l)), vlab.powerLog(UEFI).join('\n'));

  // Redfish: a session, the one-time PXE override in Legacy mode (the host declares bios), read back, then On
  // (the guest was off); the BMC consumed the override when it started the guest.
  const calls = redfishCalls();
  const patch = calls.find((r) => r.method === 'PATCH' && r.path === SYSTEM);
  assert.deepEqual(patch?.body, { Boot: { BootSourceOverrideEnabled: 'Once', BootSourceOverrideTarget: 'Pxe', BootSourceOverrideMode: 'Legacy' } }, describeCalls(calls));
  assert.equal(patch?.status, 200);
  const resets = calls.filter((r) => r.method === 'POST' && r.path === RESET);
  assert.deepEqual(resets.map((r) => [(r.body as { ResetType?: string }).ResetType, r.status]), [['On', 204]], describeCalls(calls));
  assert.ok(calls.indexOf(patch!) < calls.indexOf(resets[0]!), 'override before power');
  assert.ok(calls.every((r) => r.auth === 'session' || (r.method === 'POST' && r.path.endsWith('/Sessions')) || r.auth === 'none'), describeCalls(calls));
  assert.ok(calls.every((r) => r.status !== 401), 'never refused');
  assert.deepEqual(vlab.powerLog(REDFISH).map((l) => l.split(' ').slice(1).join(' ')), ['bootdev=pxe', 'bootmode=bios', 'power-on bootdev=pxe']);
  assert.equal((vlab.redfish(REDFISH).resource(SYSTEM)['Boot'] as Record<string, unknown>)['BootSourceOverrideEnabled'], 'Disabled', 'a Once override is consumed');

  // The agent trusted the BMC through the lab's CA file: the certificate does not verify without it, and
  // verification was never switched off.
  const ca = node(REDFISH).bmc;
  const unverified = await vlab.exec('curl', ['-sS', '-o', '/dev/null', `https://${ca.address}/redfish/v1`]);
  assert.notEqual(unverified.code, 0, 'the BMC certificate is not trusted by the system CAs');
  assert.match(unverified.stderr, /certificate/i);
  assert.ok(!agent.logLines().some((l) => /TLS verification of this BMC is off/.test(String(l.msg))));
});

test('2. a role change reprovisions the Redfish guest only, and it phones home in its new role', { skip, timeout: BOOT_TIMEOUT }, async () => {
  const uefiBefore = powerOns(UEFI);
  const redfishBefore = powerOns(REDFISH);
  const from = redfishCalls().length;
  const first = steps.need<string>('first');
  const change = await commitFiles(git, 'lab', 'main', { [`hosts/${REDFISH}.yaml`]: hostFile(node(REDFISH), 'slurm-compute') }, `${REDFISH} becomes a Slurm compute node`);
  await waitForStatus(
    git, 'lab',
    (s) => s.hosts.get(REDFISH)?.phase === 'Converged' && s.hosts.get(REDFISH)?.revision === change,
    BOOT_TIMEOUT - 10_000, `${REDFISH} Converged at the role-change commit`,
  );
  const status = await readStatus(git, 'lab');
  assert.equal(status.hosts.get(REDFISH)?.role, 'slurm-compute');
  assert.equal(status.hosts.get(UEFI)?.revision, first, `${UEFI} was not touched`);
  const serial = vlab.serial(REDFISH);
  assert.ok(serial.lastIndexOf('PHONE-HOME-OK role=slurm-compute') > serial.lastIndexOf('PHONE-HOME-OK role=talos-worker'), 'phoned home in the new role last');
  assert.equal(powerOns(UEFI), uefiBefore, `${UEFI} was not power-cycled`);
  assert.equal(powerOns(REDFISH), redfishBefore + 1, `${REDFISH} was power-cycled once`);

  // The guest was running: the override again, then a power cycle, which the BMC did as off + on from PXE.
  const calls = redfishCalls(from);
  const patches = calls.filter((r) => r.method === 'PATCH' && r.path === SYSTEM);
  assert.equal(patches.length, 1, describeCalls(calls));
  assert.equal((patches[0]?.body as { Boot?: Record<string, string> }).Boot?.BootSourceOverrideTarget, 'Pxe');
  const resets = calls.filter((r) => r.method === 'POST' && r.path === RESET).map((r) => (r.body as { ResetType?: string }).ResetType);
  assert.deepEqual(resets, ['PowerCycle'], describeCalls(calls));
  assert.deepEqual(vlab.powerLog(REDFISH).slice(-4).map((l) => l.split(' ').slice(1).join(' ')), ['power-off', 'bootdev=pxe', 'bootmode=bios', 'power-on bootdev=pxe']);
});

test('3. no secret reaches the agent log', { skip }, async () => {
  const text = agent.logLines().map((l) => JSON.stringify(l)).join('\n');
  assert.ok(text.includes('phone-home'));
  assert.ok(!text.includes(node(UEFI).bmc.password), 'BMC password in the log');
  for (const session of vlab.redfish(REDFISH).requests.map((r) => r.headers['x-auth-token']).filter((t): t is string => typeof t === 'string')) {
    assert.ok(!text.includes(session), 'a Redfish session token in the log');
  }
});
