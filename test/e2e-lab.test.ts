// The walking skeleton, end to end against real peers: a Git server (git http-backend), the forseti agent with
// its own DHCP/TFTP/HTTP inside a network namespace, QEMU guests whose NIC ROM is iPXE, and ipmi_sim BMCs.
// The agent is the release executable (dist/forseti, npm run build): the one place the whole lab runs on the
// built form; every other test runs the sources.
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
import { AlertReceiver } from './e2e/alert-receiver.ts';
import { releaseBinary } from './fixtures/release-build.ts';
import { orderedSteps } from './e2e/ordered-steps.ts';
import { createHmac } from 'node:crypto';

const canRun = process.getuid?.() === 0 && existsSync('/dev/net/tun');
const skip = canRun ? false : 'needs root and /dev/net/tun for network namespaces and QEMU taps';
const BOOT_TIMEOUT = 8 * 60_000;

let workDir = '';
let git: GitServer;
let vlab: Vlab;
let agent: AgentProcess;
let assets: GuestAssets;
let labUrl = '';
/** The steps below run in order, each on the lab the one before left; what they hand on is written down here. */
const steps = orderedSteps();
const WEBHOOK_SECRET = 'e2e-webhook-secret';
const ALERTS_SECRET = 'e2e-alerts-secret';
let alerts: AlertReceiver;
// Drift is scanned every 3 s and healed; alerts go to a receiver reached through a forwarded Unix socket.
const SITE_EXTRA = `drift:
  policy: heal
  scanCron: '*/3 * * * * *'
alerts:
  dedupSeconds: 3600
  sinks:
    - {name: ops, type: webhook, url: 'http://127.0.0.1:9419/alerts', signingCredential: alerts-hmac}
`;

/** What GitHub sends on a push, signed with the shared secret; the agent polls only hourly, so this is the sync. */
async function pushWebhook(sha: string): Promise<void> {
  const body = JSON.stringify({ ref: 'refs/heads/main', after: sha, repository: { full_name: 'lab/lab' } });
  const signature = `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}`;
  const res = await vlab.exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Content-Type: application/json', '-H', 'X-GitHub-Event: push',
    '-H', `X-Hub-Signature-256: ${signature}`, '-H', 'X-GitHub-Delivery: e2e', '--data-binary', body, 'http://10.77.0.1:8080/v1/webhook']);
  assert.equal(res.stdout, '202', `webhook answered ${res.stdout} ${res.stderr}`);
}

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
  alerts = new AlertReceiver(ALERTS_SECRET);
  await alerts.listen(join(workDir, 'alerts.sock'));
  await vlab.forwardUnixSocket('127.0.0.1:9419', join(workDir, 'alerts.sock'));
  const seed = join(workDir, 'seed');
  const files = labFiles(assets, vlab.nodes, { node1: 'slurm-compute', node2: 'talos-worker' }, SITE_EXTRA);
  const { mkdir, writeFile } = await import('node:fs/promises');
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(seed, path, '..'), { recursive: true });
    await writeFile(join(seed, path), content);
  }
  await createBareRepo(git, 'lab', seed);
  labUrl = 'http://127.0.0.1:9418/lab.git';
  agent = await startAgent({ vlab, workDir, labUrl, assets, pollSeconds: 3600, webhookSecret: WEBHOOK_SECRET, alertsSecret: ALERTS_SECRET, command: [releaseBinary()] });
}, { timeout: 10 * 60_000 });

after(async () => {
  await agent?.stop();
  await vlab?.stop();
  await git?.close();
  await alerts?.close();
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
  const first = steps.made('first', status.site?.revision ?? '');
  assert.match(first, /^[0-9a-f]{40}$/);
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
  const first = steps.need<string>('first');
  const change = steps.made('change', await commitFiles(git, 'lab', 'main', { 'hosts/node2.yaml': hostFile(node('node2'), 'slurm-compute') }, 'node2 becomes a Slurm compute node'));
  await pushWebhook(change);
  await waitForStatus(
    git, 'lab',
    (s) => s.hosts.get('node2')?.phase === 'Converged' && s.hosts.get('node2')?.revision === change,
    BOOT_TIMEOUT - 10_000, 'node2 Converged at the role-change commit',
  );
  const status = await readStatus(git, 'lab');
  assert.equal(status.hosts.get('node2')?.role, 'slurm-compute');
  assert.equal(status.hosts.get('node1')?.revision, first, 'node1 was not touched');
  assert.match(vlab.serial('node2'), /PHONE-HOME-OK role=slurm-compute/);
  assert.equal(powerOns('node1'), node1Before, 'node1 was not power-cycled');
  assert.ok(powerOns('node2') > node2Before, 'node2 was power-cycled');
});

test('3. git revert brings the host back to its first role', { skip, timeout: BOOT_TIMEOUT }, async () => {
  const node1Before = powerOns('node1');
  const revert = steps.made('revert', await revertCommit(git, 'lab', 'main', steps.need<string>('change')));
  await pushWebhook(revert);
  const status = await waitForStatus(
    git, 'lab',
    (s) => s.hosts.get('node2')?.phase === 'Converged' && s.hosts.get('node2')?.revision === revert,
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
  const serving = steps.need<string>('revert');
  const bad = await commitFiles(git, 'lab', 'main', { 'hosts/node1.yaml': broken }, 'a broken host file');
  await pushWebhook(bad);
  const status = await waitForStatus(git, 'lab', (s) => s.site?.rejected?.revision === bad, 60_000, 'the broken commit rejected');
  assert.equal(status.site?.revision, serving, 'the last good revision keeps serving');
  const errors = status.site?.rejected?.errors ?? [];
  assert.ok(errors.some((e) => /^hosts\/node1\.yaml:\d+:\d+: /.test(e)), errors.join('\n'));
  const script = await vlab.exec('curl', ['-sS', 'http://10.77.0.1:8080/v1/boot/52-54-00-00-00-01']);
  assert.match(script.stdout, /^#!ipxe/);
  assert.match(script.stdout, /booting from local disk/, 'node1 is still answered from the last good generation');
  assert.deepEqual({ node1: powerOns('node1'), node2: powerOns('node2') }, before);
  // Put the lab back in order for the next step.
  const fixed = await commitFiles(git, 'lab', 'main', { 'hosts/node1.yaml': hostFile(node('node1'), 'slurm-compute') }, 'fix node1');
  await pushWebhook(fixed);
  await waitForStatus(git, 'lab', (s) => s.site?.revision === fixed && s.site?.rejected === null, 60_000, 'the fixed commit applied');
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
  const { attemptToken } = await import('../src/render/token.ts');
  const state = join(workDir, 'agent-state');
  const key = Buffer.from((await readFile(join(state, 'agent.key'), 'utf8')).trim(), 'hex');
  const journal = JSON.parse(await readFile(join(state, 'journal.json'), 'utf8')) as { hosts: Record<string, { attemptNonce?: string }> };
  const text = agent.logLines().map((l) => JSON.stringify(l)).join('\n');
  assert.ok(text.includes('host state changed'), 'the log has the state changes');
  assert.ok(!text.includes(node('node1').bmc.password), 'BMC password in the log');
  for (const name of ['node1', 'node2']) {
    const nonce = journal.hosts[name]?.attemptNonce;
    assert.ok(nonce, `${name} has had a provisioning attempt`);
    assert.ok(!text.includes(attemptToken(key, name, nonce)), `token of ${name} in the log`);
  }
});

test('7. a webhook with a bad signature is refused and changes nothing', { skip }, async () => {
  const res = await vlab.exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Content-Type: application/json', '-H', 'X-GitHub-Event: push',
    '-H', `X-Hub-Signature-256: sha256=${'0'.repeat(64)}`, '--data-binary', '{"ref":"refs/heads/main"}', 'http://10.77.0.1:8080/v1/webhook']);
  assert.equal(res.stdout, '401');
});

test('8. a blade powered off by hand is detected, healed under heal, with exactly one alert and one recovery', { skip, timeout: 180_000 }, async () => {
  const forNode2 = () => alerts.received.filter((a) => a.body['host'] === 'node2');
  const before = forNode2().length;
  await vlab.ipmitool('node2', 'chassis', 'power', 'off');
  const deadline = Date.now() + 150_000;
  const drift = (): typeof alerts.received => forNode2().slice(before).filter((a) => a.event === 'drift-detected');
  const healed = (): typeof alerts.received => forNode2().slice(before).filter((a) => a.event === 'drift-healed');
  while (Date.now() < deadline && healed().length === 0) await new Promise((r) => setTimeout(r, 1000));
  assert.equal(drift().length, 1, JSON.stringify(forNode2()));
  assert.equal(healed().length, 1, JSON.stringify(forNode2()));
  assert.ok([...drift(), ...healed()].every((a) => a.signatureValid), 'every delivery is signed with the sink secret');
  assert.match((await vlab.ipmitool('node2', 'chassis', 'power', 'status')), /on/);
  // A few more scans: the drift stays healed and nothing is sent again.
  await new Promise((r) => setTimeout(r, 8000));
  assert.equal(drift().length, 1);
  assert.equal(healed().length, 1);
  const status = await readStatus(git, 'lab');
  assert.equal(status.hosts.get('node2')?.phase, 'Converged', 'healing a power-off does not reinstall');
});

test('9. the dashboard renders the virtual lab in headless Chromium', { skip: skip || (existsSync('/usr/bin/chromium') ? false : 'chromium is not installed'), timeout: 120_000 }, async () => {
  const { chromium } = await import('playwright-core');
  const { chmod, readFile, writeFile } = await import('node:fs/promises');
  // Chromium runs inside the lab's namespace; Playwright drives it over stdio pipes, which cross namespaces.
  const wrapper = join(workDir, 'chromium-in-lab.sh');
  await writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${vlab.netns} /usr/bin/chromium "$@"\n`);
  await chmod(wrapper, 0o755);
  const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  const context = await chromium.launchPersistentContext(join(workDir, 'chromium-profile'), { executablePath: wrapper, headless: true, args, viewport: { width: 1280, height: 900 } });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto('http://10.77.0.1:8080/dashboard');
    for (const host of ['node1', 'node2']) await page.waitForSelector(`[data-host="${host}"][data-phase="Converged"]`, { timeout: 60_000 });
    const shot = join(workDir, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = await readFile(shot);
    assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
    assert.ok(png.length > 20_000, `a screenshot of a rendered page, not a blank one (${png.length} bytes)`);
    if (process.env.FORSETI_E2E_KEEP_SCREENSHOT) await writeFile(process.env.FORSETI_E2E_KEEP_SCREENSHOT, png);
  } finally {
    await context.close();
  }
});
