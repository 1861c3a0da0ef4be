// Builds the forseti OS image (kernel + initramfs) from Debian packages, reproducibly: the same package versions,
// guest scripts and firmware give byte-identical files. Built images sit in a cache directory named after the
// digest of everything that goes into them, so a second call with the same inputs only reads.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withFileLock } from './cache-lock.ts';
import { AptIndex, extractedPackage, removePartials, type DebianPackage } from './debian-packages.ts';
import { ImageTree } from './image-tree.ts';
import { resolveModules, type KernelModule } from './kernel-modules.ts';
import { LibraryClosure, resolveInPackage, type PackageSource } from './library-closure.ts';
import { EXECUTABLES, FIRMWARE_PACKAGES, GUEST_FILES, IMAGE_NAME, MODULES } from './recipe.ts';

export const DEFAULT_OS_IMAGE_CACHE = '/var/cache/forseti-os-image';
export const GUEST_DIR = fileURLToPath(new URL('./guest/', import.meta.url));

/** Bumped when the way files are laid out changes in a way the content digest would not show. */
const LAYOUT_VERSION = 1;

export interface OsImageOptions {
  /** Downloaded packages and built images; default $FORSETI_OS_IMAGE_CACHE or /var/cache/forseti-os-image. */
  cacheDir?: string;
  /** Directories searched for module firmware apt cannot offer (e.g. a host's /lib/firmware). */
  firmwareDirs?: string[];
}

export interface OsImageManifest {
  name: string;
  /** Digest of the kernel and every file of the initramfs: the cache key. */
  key: string;
  kernel: { package: string; version: string; release: string; sha256: string };
  initrd: { sha256: string; bytes: number };
  packages: Array<{ name: string; version: string }>;
  modules: string[];
  firmware: { included: string[]; missing: Record<string, string[]>; unavailablePackages: string[] };
}

export interface OsImage {
  dir: string;
  kernel: string;
  initrd: string;
  manifest: OsImageManifest;
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

function packageSource(cacheDir: string, apt: AptIndex): PackageSource {
  return {
    get: async (name) => extractedPackage(cacheDir, name, (await apt.require(name)).version),
    depends: async (pkg) => (await apt.require(pkg.name)).depends,
  };
}

function addGuestFiles(tree: ImageTree, modules: KernelModule[], packages: DebianPackage[], release: string): void {
  for (const dir of ['dev', 'proc', 'sys', 'tmp', 'run', 'mnt', 'sbin', 'usr/bin', 'usr/sbin', 'lib/modules']) tree.dir(dir);
  // The kernel opens /dev/console for init's stdio before /init can mount devtmpfs.
  tree.add({ kind: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600 });
  tree.add({ kind: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 });
  tree.symlink('bin/sh', 'busybox');
  for (const file of GUEST_FILES) tree.file(file.dest, readFileSync(join(GUEST_DIR, file.source)), file.mode);
  tree.file('etc/forseti-modules', Buffer.from(modules.map((m) => `${m.name}\n`).join('')));
  for (const m of modules) tree.file(`lib/modules/${m.name}.ko`, readFileSync(m.file));
  const versions = [...packages].sort((a, b) => (a.name < b.name ? -1 : 1)).map((p) => `${p.name} ${p.version}\n`).join('');
  tree.file('etc/forseti-release', Buffer.from(`${IMAGE_NAME} linux ${release}\n${versions}`));
}

interface FirmwareResult {
  included: string[];
  missing: Record<string, string[]>;
  unavailablePackages: string[];
  packages: DebianPackage[];
}

async function addFirmware(tree: ImageTree, source: PackageSource, apt: AptIndex, modules: KernelModule[], firmwareDirs: string[]): Promise<FirmwareResult> {
  const packages: DebianPackage[] = [];
  const unavailablePackages: string[] = [];
  for (const name of FIRMWARE_PACKAGES) {
    if (await apt.record(name)) packages.push(await source.get(name));
    else unavailablePackages.push(name);
  }
  const included: string[] = [];
  const missing: Record<string, string[]> = {};
  for (const module of modules) {
    for (const firmware of module.firmware) {
      let data: Buffer | undefined;
      for (const pkg of packages) {
        const found = resolveInPackage(pkg.root, `lib/firmware/${firmware}`) ?? resolveInPackage(pkg.root, `usr/lib/firmware/${firmware}`);
        if (found) data = readFileSync(join(pkg.root, found));
        if (data) break;
      }
      for (const dir of firmwareDirs) {
        if (data) break;
        if (existsSync(join(dir, firmware))) data = readFileSync(join(dir, firmware));
      }
      if (data) {
        tree.file(`lib/firmware/${firmware}`, data);
        if (!included.includes(firmware)) included.push(firmware);
      } else (missing[module.name] ??= []).push(firmware);
    }
  }
  return { included: included.sort(), missing, unavailablePackages, packages };
}

export interface AssembledOsImage {
  kernel: Buffer;
  tree: ImageTree;
  key: string;
  /** The manifest, once the initramfs is written out. */
  manifest(initrd: Buffer): OsImageManifest;
}

/** Assembles the image in memory from the cached packages (downloading what is missing); writes nothing else. */
export async function assembleOsImage(cacheDir: string, opts: Pick<OsImageOptions, 'firmwareDirs'> = {}): Promise<AssembledOsImage> {
  const apt = new AptIndex();
  // Everything the build may ask apt about, in a few batched calls: the roots and three levels of Depends.
  await apt.prefetch(['linux-image-amd64', ...EXECUTABLES.map((exe) => exe.package), ...FIRMWARE_PACKAGES], 3);
  const source = packageSource(cacheDir, apt);
  const kernelName = await apt.kernelPackageName();
  const kernelPackage = await source.get(kernelName);
  const [release] = readdirSync(join(kernelPackage.root, 'lib/modules'));
  if (!release) throw new Error(`no lib/modules in ${kernelName}`);
  const kernel = readFileSync(join(kernelPackage.root, 'boot', `vmlinuz-${release}`));

  const tree = new ImageTree();
  const closure = new LibraryClosure(tree, source);
  for (const exe of EXECUTABLES) await closure.addExecutable(exe);
  const modules = resolveModules(join(kernelPackage.root, 'lib/modules', release, 'kernel'), MODULES);
  const firmware = await addFirmware(tree, source, apt, modules, opts.firmwareDirs ?? []);
  const packages = [...closure.packages, ...firmware.packages];
  addGuestFiles(tree, modules, [kernelPackage, ...packages], release);

  const key = sha256(`${LAYOUT_VERSION}\n${sha256(kernel)}\n${tree.digest()}`).slice(0, 24);
  return {
    kernel,
    tree,
    key,
    manifest: (initrd) => ({
      name: IMAGE_NAME,
      key,
      kernel: { package: kernelName, version: kernelPackage.version, release, sha256: sha256(kernel) },
      initrd: { sha256: sha256(initrd), bytes: initrd.length },
      packages: packages.map((p) => ({ name: p.name, version: p.version })).sort((a, b) => (a.name < b.name ? -1 : 1)),
      modules: modules.map((m) => m.name),
      firmware: { included: firmware.included, missing: firmware.missing, unavailablePackages: firmware.unavailablePackages },
    }),
  };
}

function readImage(dir: string): OsImage {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as OsImageManifest;
  return { dir, kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), manifest };
}

/** The built image for the current package versions and guest scripts, built first if the cache lacks it. */
export async function ensureOsImage(opts: OsImageOptions = {}): Promise<OsImage> {
  const cacheDir = opts.cacheDir ?? process.env.FORSETI_OS_IMAGE_CACHE ?? DEFAULT_OS_IMAGE_CACHE;
  mkdirSync(cacheDir, { recursive: true });
  return withFileLock(join(cacheDir, '.lock'), async () => {
    removePartials(cacheDir, ['packages', 'os-images']);
    const assembled = await assembleOsImage(cacheDir, opts);
    const dir = join(cacheDir, 'os-images', `${IMAGE_NAME}-${assembled.key}`);
    if (existsSync(join(dir, 'manifest.json'))) return readImage(dir);
    const initrd = assembled.tree.initramfs();
    const scratch = `${dir}.partial-${process.pid}`;
    rmSync(scratch, { recursive: true, force: true });
    mkdirSync(scratch, { recursive: true });
    try {
      writeFileSync(join(scratch, 'vmlinuz'), assembled.kernel);
      writeFileSync(join(scratch, 'initrd.img'), initrd);
      writeFileSync(join(scratch, 'manifest.json'), `${JSON.stringify(assembled.manifest(initrd), null, 2)}\n`);
      rmSync(dir, { recursive: true, force: true });
      renameSync(scratch, dir);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    return readImage(dir);
  });
}
