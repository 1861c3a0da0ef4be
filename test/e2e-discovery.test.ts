// Discovery end to end (issue 14's proof): in a virtual lab whose Git repository declares no host, a QEMU guest
// (SeaBIOS, iPXE NIC ROM) powered on over IPMI PXE-boots from the forseti agent's own DHCP pool, gets the real
// forseti OS image (built from Debian packages) in inventory mode, reports itself and powers off; the branch
// forseti/discovered/<mac> appears on the Git server with a host file holding the guest's real MAC, memory and
// disk count, and a pull request opens on the forge agent.yaml names (a fake GitHub API: the forge is a remote
// service). The host file merged into main with a role and the guest's BMC set converges the guest.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ensureOsImage, type OsImage } from '../src/os-image/build.ts';
import { validatorFor } from '../src/model/schemas.ts';
import { commitFiles, mergeBranch, readBranchFiles, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { ensureGuestAssets, startVlab, type GuestAssets, type Vlab, type VlabNode } from './vlab/index.ts';
import { DEFAULT_CACHE_DIR } from './vlab/assets.ts';
import { startAgent, type AgentProcess } from './e2e/agent-process.ts';
import { FAKE_REPOSITORY, startFakeForge, type FakeForge } from './fixtures/forge/forge-server.ts';
import { imageRoots, labFiles, osImageFile, seedLabRepo } from './e2e/lab-files.ts';
import { waitForStatus } from './e2e/status-branch.ts';

const missing = [
  process.getuid?.() === 0 ? '' : 'root (network namespaces)',
  ...['/dev/net/tun', '/usr/bin/qemu-system-x86_64', '/usr/bin/ipmi_sim'].filter((path) => !existsSync(path)),
].filter(Boolean);
const canRun = missing.length === 0;
const skip = canRun ? false : `the virtual lab needs ${missing.join(', ')}`;
const BOOT_TIMEOUT = 8 * 60_000;
const MAC = '52:54:00:00:00:01';
const BRANCH = 'forseti/discovered/52-54-00-00-00-01';
const MEMORY_MIB = 512;
const FORGE_TOKEN = 'github-token-0c7e5d21b4';
/** Where the fake forge answers inside the lab's namespace (forwarded to its Unix socket). */
const FORGE_IN_NAMESPACE = '127.0.0.1:9420';

let workDir = '';
let git: GitServer;
let vlab: Vlab;
let agent: AgentProcess;
let assets: GuestAssets;
let image: OsImage;
let forge: FakeForge;

before(async () => {
  if (!canRun) return;
  workDir = await mkdtemp(join(tmpdir(), 'forseti-e2e-discovery-'));
  assets = await ensureGuestAssets();
  image = await ensureOsImage({ cacheDir: process.env.FORSETI_OS_IMAGE_CACHE ?? process.env.FORSETI_VLAB_CACHE ?? DEFAULT_CACHE_DIR });
  git = await startGitServer({ socketPath: join(workDir, 'git.sock') });
  vlab = await startVlab({ nodes: [{ name: 'new1', mac: MAC, memoryMiB: MEMORY_MIB }] });
  await vlab.forwardUnixSocket('127.0.0.1:9418', join(workDir, 'git.sock'));
  forge = await startFakeForge('github', FORGE_TOKEN, join(workDir, 'forge.sock'));
  await vlab.forwardUnixSocket(FORGE_IN_NAMESPACE, join(workDir, 'forge.sock'));
  // No host declared: the guest is a machine nobody has written down yet.
  const files = labFiles(assets, [], {}, 'discovery: {enabled: true, image: forseti-os, afterReport: poweroff}\n');
  files['site.yaml'] = files['site.yaml']!.replace('  leaseSeconds: 600\n', '  leaseSeconds: 600\n  pool: {start: 10.77.0.200, end: 10.77.0.220}\n');
  files['images/forseti-os.yaml'] = osImageFile('forseti-os', image);
  await seedLabRepo(git, workDir, files);
  const roots = imageRoots(assets, image);
  // The forge and its token are the operator's: agent.yaml and the agent's secrets file, never the lab's site.yaml.
  agent = await startAgent({
    vlab, workDir, labUrl: 'http://127.0.0.1:9418/lab.git', pollSeconds: 2,
    extraSecrets: `github-token:\n  username: forseti\n  password: ${FORGE_TOKEN}\n`,
    extraConfig: `images:\n  fileRoots: [${roots.join(', ')}]\n`
      + `discovery:\n  forge: {type: github, api: 'http://${FORGE_IN_NAMESPACE}', repository: ${FAKE_REPOSITORY.github}, credential: github-token, labels: [discovered]}\n`,
  });
}, { timeout: 15 * 60_000 });

after(async () => {
  await agent?.stop();
  await vlab?.stop();
  await git?.close();
  await forge?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms; last agent lines:\n${agent.logLines().slice(-20).map((l) => JSON.stringify(l)).join('\n')}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

test('an unknown guest PXE-boots the inventory image and is proposed on its branch with a pull request; merged with a role, it converges', { skip, timeout: 2 * BOOT_TIMEOUT }, async () => {
  const node: VlabNode = vlab.nodes[0]!;
  await agent.waitForLog((l) => l.msg === 'dhcp listening', 120_000);
  const disk = (): string => createHash('sha256').update(readFileSync(join(node.dir, 'disk.qcow2'))).digest('hex');
  const diskBefore = disk();
  await vlab.ipmitool(node.name, 'chassis', 'bootdev', 'pxe');
  await vlab.ipmitool(node.name, 'chassis', 'power', 'on');

  const served = await agent.waitForLog((l) => l.msg === 'ipxe script served' && l.answer === 'inventory', BOOT_TIMEOUT);
  assert.equal(served.mac, '52-54-00-00-00-01');
  await vlab.waitForSerial(node.name, /FORSETI-MARKER: INVENTORY-SENT/, BOOT_TIMEOUT);

  const files = await until(`the branch ${BRANCH}`, () => readBranchFiles(git, 'lab', BRANCH).catch(() => undefined), BOOT_TIMEOUT);
  const [file, text] = Object.entries(files).find(([path]) => path.startsWith('hosts/')) ?? assert.fail(`no host file on ${BRANCH}: ${Object.keys(files).join(', ')}`);
  const proposed = parse(text) as Record<string, unknown> & { name: string; macs: string[]; role: string; hardware: { memoryGiB: number; disks: unknown[] } };
  const validate = validatorFor('Host');
  assert.ok(validate(proposed), JSON.stringify(validate.errors));
  assert.equal(file, `hosts/${proposed.name}.yaml`);
  assert.deepEqual(proposed.macs, [MAC], 'its real MAC');
  assert.equal(proposed.hardware.memoryGiB, MEMORY_MIB / 1024, 'its real memory (the DIMMs QEMU reports)');
  assert.equal(proposed.hardware.disks.length, 1, 'its one disk');
  assert.equal(proposed.role, 'off');
  const pull = await until('the pull request on the forge', () => forge.pulls[0]);
  assert.deepEqual([pull.head, pull.base, pull.labels], [BRANCH, 'main', ['discovered']]);
  assert.match(pull.title, new RegExp(`^Discovered ${proposed.name}: .*${MAC}`));
  assert.match(pull.body, new RegExp(`\\*\\*Memory\\*\\*: ${MEMORY_MIB / 1024} GiB`));
  const auth = forge.requests.filter((r) => r.method === 'POST').map((r) => r.headers.authorization);
  assert.deepEqual([...new Set(auth)], [`Bearer ${FORGE_TOKEN}`], 'the operator\'s token, on every write');
  assert.equal(forge.pulls.length, 1);
  // afterReport: poweroff: the image powered the guest off.
  await vlab.waitForSerial(node.name, /FORSETI-MARKER: POWEROFF/, 60_000);
  assert.equal(disk(), diskBefore, 'the inventory image wrote to the disk');

  // A human sets its role and its BMC on the proposal's branch and merges the pull request; the agent provisions the
  // machine and the guest converges.
  const adopted = { ...proposed, bmc: { type: 'ipmi', address: node.bmc.address, port: node.bmc.port, credential: 'vlab-bmc' }, role: 'slurm-compute' };
  await commitFiles(git, 'lab', BRANCH, { [file]: stringify(adopted) }, `Adopt ${proposed.name}: role slurm-compute, its BMC`);
  await mergeBranch(git, 'lab', 'main', BRANCH, `Merge pull request #${pull.number} from ${BRANCH}`);
  const status = await waitForStatus(git, 'lab', (s) => s.hosts.get(proposed.name)?.phase === 'Converged', BOOT_TIMEOUT, `${proposed.name} Converged`);
  assert.equal(status.hosts.get(proposed.name)?.role, 'slurm-compute');
  await vlab.waitForSerial(node.name, /PHONE-HOME-OK role=slurm-compute/, 5_000);
});
