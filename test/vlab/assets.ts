// Guest kernel, initramfs and iPXE binaries, cached: the Debian packages are downloaded and extracted
// (never installed: busybox-static conflicts with busybox, and the kernel is the guest's, not the host's).
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withFileLock } from '../../src/os-image/cache-lock.ts';
import { AptIndex, extractedPackage, removePartials } from '../../src/os-image/debian-packages.ts';
import { resolveModules } from '../../src/os-image/kernel-modules.ts';
import { buildInitramfs, GUEST_INIT, GUEST_MODULES, GUEST_UDHCPC_SCRIPT } from './initramfs.ts';
import type { GuestAssets } from './types.ts';

export const DEFAULT_CACHE_DIR = '/var/cache/forseti-vlab';

/** Bumped when the layout of a built guest directory changes. */
const LAYOUT_VERSION = 1;

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function buildKey(kernelPackage: string, busybox: string): string {
  const inputs = [LAYOUT_VERSION, kernelPackage, sha256(readFileSync(busybox)), readFileSync(GUEST_INIT), readFileSync(GUEST_UDHCPC_SCRIPT), GUEST_MODULES.join(',')];
  return sha256(inputs.join('\n')).slice(0, 16);
}

async function buildGuest(cacheDir: string): Promise<string> {
  removePartials(cacheDir);
  const apt = new AptIndex();
  await apt.prefetch(['linux-image-amd64', 'busybox-static', 'ipxe'], 1);
  const extracted = async (name: string): Promise<string> => (await extractedPackage(cacheDir, name, (await apt.require(name)).version)).root;
  const kernelPackage = await apt.kernelPackageName();
  const kernelRoot = await extracted(kernelPackage);
  const busyboxRoot = await extracted('busybox-static');
  const ipxeRoot = await extracted('ipxe');
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
    const modules = resolveModules(join(kernelRoot, 'lib/modules', kernelVersion, 'kernel'), GUEST_MODULES);
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
