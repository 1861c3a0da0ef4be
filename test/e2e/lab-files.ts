// The lab repository the end-to-end test and the demo put on their Git server: the virtual lab's guests as
// hosts (IPMI or Redfish BMCs; a Redfish BMC's CA in certs/), two bootable roles that differ only in the role
// they report, and `off`.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { OsImage } from '../../src/os-image/build.ts';
import { createBareRepo, type GitServer } from '../fixtures/git-server.ts';
import type { GuestAssets, VlabNode } from '../vlab/index.ts';

export const ROLES = ['slurm-compute', 'talos-worker'] as const;

/** Extra site.yaml sections (drift policy, alert sinks), appended as written. */
export function labFiles(assets: GuestAssets, nodes: VlabNode[], roles: Record<string, string>, siteExtra = ''): Record<string, string> {
  const files: Record<string, string> = {
    'site.yaml': `apiVersion: forseti/v1
kind: Site
name: vlab
network:
  interface: br0
  subnet: 10.77.0.0/24
  dns: []
dhcp:
  mode: full
  leaseSeconds: 600
agent:
  address: 10.77.0.1
  httpPort: 8080
  tftpPort: 69
policies:
  provisionTimeoutSeconds: 600
${siteExtra}`,
    'images/vlab-busybox.yaml': `apiVersion: forseti/v1
kind: Image
name: vlab-busybox
kernel:
  url: ${pathToFileURL(assets.kernel).href}
  sha256: ${assets.kernelSha256}
initrds:
  - url: ${pathToFileURL(assets.initrd).href}
    sha256: ${assets.initrdSha256}
`,
    'profiles/off.yaml': `apiVersion: forseti/v1
kind: Profile
name: off
boot:
  off: true
`,
  };
  for (const role of ROLES) {
    files[`profiles/${role}.yaml`] = `apiVersion: forseti/v1
kind: Profile
name: ${role}
description: the virtual lab's busybox initramfs, reporting role ${role}
boot:
  image: vlab-busybox
  cmdline: console=ttyS0 panic=-1 role={{ host.role }}
afterInstall: disk
`;
  }
  for (const node of nodes) {
    files[`hosts/${node.name}.yaml`] = hostFile(node, roles[node.name] ?? 'off');
    if (node.bmc.ca !== undefined) files[bmcCaFile(node)] = node.bmc.ca;
  }
  return files;
}

/** Where the lab keeps the CA a Redfish node's BMC certificate is verified with. */
export function bmcCaFile(node: VlabNode): string {
  return `certs/${node.name}-bmc-ca.pem`;
}

export function hostFile(node: VlabNode, role: string): string {
  const index = Number(node.mac.split(':').pop());
  const tls = node.bmc.ca !== undefined ? `\n  tls:\n    ca: ${bmcCaFile(node)}` : '';
  return `apiVersion: forseti/v1
kind: Host
name: ${node.name}
macs: [${node.mac}]
ip: 10.77.0.${10 + index}
bmc:
  type: ${node.bmcType}
  address: ${node.bmc.address}
  port: ${node.bmc.port}
  credential: vlab-bmc${tls}
hardware:
  memoryGiB: 1
  firmware: ${node.firmware}
  disks: [{sizeGB: 1}]
role: ${role}
`;
}

/** An image file for the forseti OS image (src/os-image) under `name`. */
export function osImageFile(name: string, image: OsImage): string {
  return `apiVersion: forseti/v1
kind: Image
name: ${name}
kernel: {url: '${pathToFileURL(image.kernel).href}', sha256: ${image.manifest.kernel.sha256}}
initrd: {url: '${pathToFileURL(image.initrd).href}', sha256: ${image.manifest.initrd.sha256}}
`;
}

/** The directories the agent must be allowed to read the guest assets and the OS image from (agent.yaml images.fileRoots). */
export function imageRoots(assets: GuestAssets, image: OsImage): string[] {
  return [...new Set([dirname(assets.kernel), dirname(assets.initrd), dirname(image.kernel), dirname(image.initrd)])];
}

/** Writes `files` below `workDir/seed` and makes them the first commit of the bare repository `lab` on `git`. */
export async function seedLabRepo(git: GitServer, workDir: string, files: Record<string, string>): Promise<void> {
  const seed = join(workDir, 'seed');
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(seed, path, '..'), { recursive: true });
    await writeFile(join(seed, path), content);
  }
  await createBareRepo(git, 'lab', seed);
}
