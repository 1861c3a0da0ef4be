// Guest kernel, initramfs and iPXE binaries, cached: the Debian packages are downloaded and extracted
// (never installed: busybox-static conflicts with busybox, and the kernel is the guest's, not the host's).
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withFileLock } from './cache-lock.ts';
import { buildInitramfs, GUEST_INIT, GUEST_UDHCPC_SCRIPT } from './initramfs.ts';
import { GUEST_MODULES, resolveModules } from './kernel-modules.ts';
import { runChecked } from './run-command.ts';
import type { GuestAssets } from './types.ts';

export const DEFAULT_CACHE_DIR = '/var/cache/forseti-vlab';

/** Bumped when the layout of a built guest directory changes. */
const LAYOUT_VERSION = 1;

async function kernelPackageName(): Promise<string> {
  const depends = await runChecked('apt-cache', ['depends', 'linux-image-amd64']);
  const name = /Depends: (linux-image-\d\S*)/.exec(depends)?.[1];
  if (!name) throw new Error(`cannot find the kernel package linux-image-amd64 depends on (run apt-get update?):\n${depends}`);
  return name;
}

/** Extracted tree of a Debian package under the cache; downloaded once. */
async function extractedPackage(cacheDir: string, name: string): Promise<string> {
  const root = join(cacheDir, 'packages', name);
  if (existsSync(root)) return root;
  const scratch = join(cacheDir, 'packages', `.partial-${name}-${process.pid}`);
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  try {
    await runChecked('apt-get', ['download', name], { cwd: scratch, timeoutMs: 600_000 });
    const deb = readdirSync(scratch).find((file) => file.startsWith(`${name}_`) && file.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${name} produced no .deb`);
    await runChecked('dpkg-deb', ['-x', join(scratch, deb), join(scratch, 'root')], { timeoutMs: 300_000 });
    renameSync(join(scratch, 'root'), root);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return root;
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function buildKey(kernelPackage: string, busybox: string): string {
  const inputs = [LAYOUT_VERSION, kernelPackage, sha256(readFileSync(busybox)), readFileSync(GUEST_INIT), readFileSync(GUEST_UDHCPC_SCRIPT), GUEST_MODULES.join(',')];
  return sha256(inputs.join('\n')).slice(0, 16);
}

/** Leftovers of a run that died mid-build; safe to delete while we hold the cache lock. */
function removePartials(cacheDir: string): void {
  for (const dir of [cacheDir, join(cacheDir, 'packages')]) {
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir)) if (entry.includes('.partial-')) rmSync(join(dir, entry), { recursive: true, force: true });
  }
}

async function buildGuest(cacheDir: string): Promise<string> {
  removePartials(cacheDir);
  const kernelPackage = await kernelPackageName();
  const kernelRoot = await extractedPackage(cacheDir, kernelPackage);
  const busyboxRoot = await extractedPackage(cacheDir, 'busybox-static');
  const ipxeRoot = await extractedPackage(cacheDir, 'ipxe');
  const busybox = join(busyboxRoot, 'bin/busybox');
  const guestDir = join(cacheDir, `guest-${kernelPackage}-${buildKey(kernelPackage, busybox)}`);
  if (existsSync(guestDir)) return guestDir;

  const [kernelVersion] = readdirSync(join(kernelRoot, 'lib/modules'));
  if (!kernelVersion) throw new Error(`no lib/modules in ${kernelPackage}`);
  const scratch = `${guestDir}.partial-${process.pid}`;
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  try {
    copyFileSync(join(kernelRoot, 'boot', `vmlinuz-${kernelVersion}`), join(scratch, 'vmlinuz'));
    const modules = resolveModules(join(kernelRoot, 'lib/modules', kernelVersion, 'kernel'));
    writeFileSync(join(scratch, 'initrd.img'), buildInitramfs({ busybox, modules }));
    copyFileSync(join(ipxeRoot, 'usr/lib/ipxe/undionly.kpxe'), join(scratch, 'undionly.kpxe'));
    // usr/lib/ipxe/ipxe.efi is an absolute symlink into the host's /boot
    copyFileSync(join(ipxeRoot, 'boot/ipxe.efi'), join(scratch, 'ipxe.efi'));
    renameSync(scratch, guestDir);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return guestDir;
}

export async function ensureGuestAssets(cacheDir: string = process.env.FORSETI_VLAB_CACHE ?? DEFAULT_CACHE_DIR): Promise<GuestAssets> {
  mkdirSync(cacheDir, { recursive: true });
  const guestDir = await withFileLock(join(cacheDir, '.lock'), () => buildGuest(cacheDir));
  const kernel = join(guestDir, 'vmlinuz');
  const initrd = join(guestDir, 'initrd.img');
  return {
    kernel,
    initrd,
    kernelSha256: sha256(readFileSync(kernel)),
    initrdSha256: sha256(readFileSync(initrd)),
    undionly: join(guestDir, 'undionly.kpxe'),
    ipxeEfi: join(guestDir, 'ipxe.efi'),
  };
}
