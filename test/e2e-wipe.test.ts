// The wipe role through the whole agent (issue 13): in the virtual lab a QEMU guest (TCG, SeaBIOS, iPXE NIC ROM)
// with two virtio disks holding a GPT, an ext4 and a swap partition and data in their last MiB is declared with
// the template's wipe role (lab-repo-template/profiles/wipe.yaml, verbatim) on the real forseti OS image (built from
// Debian packages). The agent powers it on over IPMI, it PXE-boots the image from the agent, which wipes both disks
// and reports each to the agent's installer reports endpoint; the host converges as the role declares (the
// image's forseti-wipe finish), and afterwards no signature is left and the first and last MiB of each disk are zero.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureOsImage, type OsImage } from '../src/os-image/build.ts';
import { startGitServer, type GitServer } from './fixtures/git-server.ts';
import { ensureGuestAssets, startVlab, type GuestAssets, type Vlab, type VlabNode } from './vlab/index.ts';
import { DEFAULT_CACHE_DIR } from './vlab/assets.ts';
import { startAgent, type AgentProcess } from './e2e/agent-process.ts';
import { imageRoots, labFiles, osImageFile, seedLabRepo } from './e2e/lab-files.ts';
import { waitForStatus } from './e2e/status-branch.ts';
import { MIB, isZero, partitionedDisk, sh, signaturesAt, type PreparedDisk } from './os-image/disks.ts';

const missing = [
  process.getuid?.() === 0 ? '' : 'root (network namespaces)',
  ...['/dev/net/tun', '/usr/bin/qemu-system-x86_64', '/usr/bin/ipmi_sim', '/usr/bin/qemu-img', '/usr/sbin/sfdisk'].filter((path) => !existsSync(path)),
].filter(Boolean);
const skip = missing.length === 0 ? false : `the virtual lab needs ${missing.join(', ')}`;
const BOOT_TIMEOUT = 8 * 60_000;
const MAC = '52:54:00:00:00:01';
const SIZES_MIB = [64, 48];

let image: OsImage;
let assets: GuestAssets;
let disks: PreparedDisk[] = [];
let workDir = '';
let git: GitServer;
let vlab: Vlab;
let agent: AgentProcess;

/** The guest's disk files, in the order QEMU attaches them (vda, vdb). */
const diskFiles = (node: VlabNode): string[] => [join(node.dir, 'disk.qcow2'), join(node.dir, 'disk2.qcow2')];

before(async () => {
  if (skip) return;
  workDir = await mkdtemp(join(tmpdir(), 'forseti-e2e-wipe-'));
  assets = await ensureGuestAssets();
  image = await ensureOsImage({ cacheDir: process.env.FORSETI_OS_IMAGE_CACHE ?? process.env.FORSETI_VLAB_CACHE ?? DEFAULT_CACHE_DIR });
  git = await startGitServer({ socketPath: join(workDir, 'git.sock') });
  vlab = await startVlab({ nodes: [{ name: 'wipe1', mac: MAC, disks: 2 }] });
  await vlab.forwardUnixSocket('127.0.0.1:9418', join(workDir, 'git.sock'));
  const node = vlab.nodes[0] ?? assert.fail('no node');
  // Partitioned disks with data, in place of the node's empty ones before its first power-on.
  disks = SIZES_MIB.map((size, i) => partitionedDisk(workDir, `disk-${i}`, size));
  diskFiles(node).forEach((file, i) => sh('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', disks[i]?.file ?? '', file]));

  const files = labFiles(assets, [node], { wipe1: 'wipe' });
  files['profiles/wipe.yaml'] = await readFile('lab-repo-template/profiles/wipe.yaml', 'utf8');
  files['images/wipe.yaml'] = osImageFile('wipe', image);
  await seedLabRepo(git, workDir, files);
  agent = await startAgent({ vlab, workDir, labUrl: 'http://127.0.0.1:9418/lab.git', pollSeconds: 2, extraConfig: `images:\n  fileRoots: [${imageRoots(assets, image).join(', ')}]\n` });
}, { timeout: 15 * 60_000 });

after(async () => {
  // In this order: the agent first (it drives the BMCs), then the guests, then the repository it reads.
  for (const stop of [() => agent?.stop(), () => vlab?.stop(), () => git?.close()]) await stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

test('the wipe role on the forseti OS image: both disks reported and wiped, the host converged by the image\'s reports', { skip, timeout: 2 * BOOT_TIMEOUT }, async () => {
  const node = vlab.nodes[0] ?? assert.fail('no node');
  for (const disk of disks) {
    assert.match(signaturesAt(disk.file), /gpt/);
    assert.equal(signaturesAt(disk.file, disk.partitionOffsets[0]), 'ext4');
  }
  // The agent provisions the role by itself: boot device PXE and power over IPMI, its DHCP, iPXE, the image.
  const served = await agent.waitForLog((l) => l.msg === 'ipxe script served' && l.host === 'wipe1', BOOT_TIMEOUT);
  assert.equal(served.answer, 'install');
  const converged = await agent.waitForLog((l) => l.msg === 'converged' && l.host === 'wipe1', BOOT_TIMEOUT);
  assert.deepEqual(converged.by, ['installerReports'], 'the image\'s report of its whole run converged the host');
  const details = agent.logLines().filter((l) => l.msg === 'converge step' && l.host === 'wipe1').map((l) => String(l.detail));
  for (const name of ['vda', 'vdb']) assert.ok(details.some((d) => d.startsWith(`disk/${name}: finished: /dev/${name}`)), `no report of ${name}: ${details.join(' | ')}`);
  const status = await waitForStatus(git, 'lab', (s) => s.hosts.get('wipe1')?.phase === 'Converged', BOOT_TIMEOUT, 'wipe1 Converged');
  assert.equal(status.hosts.get('wipe1')?.role, 'wipe');
  await vlab.waitForSerial(node.name, /FORSETI-MARKER: POWEROFF/, 120_000);

  diskFiles(node).forEach((file, i) => {
    const raw = join(workDir, `after-${i}.raw`);
    sh('qemu-img', ['convert', '-q', '-f', 'qcow2', '-O', 'raw', file, raw]);
    const data = readFileSync(raw);
    assert.equal(data.length, (SIZES_MIB[i] ?? 0) * MIB);
    assert.equal(signaturesAt(raw), '', `disk ${i} still has a signature`);
    for (const offset of disks[i]?.partitionOffsets ?? []) assert.equal(signaturesAt(raw, offset), '', `disk ${i} still has a signature at ${offset}`);
    assert.ok(isZero(data.subarray(0, MIB)), `disk ${i}: the first MiB is not zero`);
    assert.ok(isZero(data.subarray(data.length - MIB)), `disk ${i}: the last MiB is not zero`);
  });
});
