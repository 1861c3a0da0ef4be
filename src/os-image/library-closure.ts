// Puts executables from extracted Debian packages into an image with every shared library they need, found by
// reading DT_NEEDED (elf.ts) and looking the soname up in the packages their Depends name, recursively.
// Libraries go to /lib/x86_64-linux-gnu/<soname> (where glibc's loader looks without an ld.so.cache); the
// program interpreter (PT_INTERP) becomes a symlink to the loader there.
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import type { DebianPackage } from './debian-packages.ts';
import { isElf, readElfDynamicInfo } from './elf.ts';
import type { ImageTree } from './image-tree.ts';

export const LIBRARY_DIR = 'lib/x86_64-linux-gnu';
const SEARCH_DIRS = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64', 'lib', 'usr/lib'];
const MAX_SEARCH_DEPTH = 3;

export interface PackageSource {
  /** The extracted package (apt's candidate), downloaded on first use. */
  get(name: string): Promise<DebianPackage>;
  /** Names the package depends on (Pre-Depends and Depends). */
  depends(pkg: DebianPackage): Promise<string[]>;
}

export interface Executable {
  package: string;
  /** Candidate paths inside the package, the first that exists is taken (Debian moves tools between /sbin and /usr/sbin). */
  paths: string[];
  /** Where it goes in the image. */
  dest: string;
}

export class MissingFileError extends Error {
  override readonly name = 'MissingFileError';
  constructor(readonly packageName: string, readonly paths: string[]) {
    super(`package ${packageName} has none of ${paths.join(', ')}`);
  }
}

export class MissingLibraryError extends Error {
  override readonly name = 'MissingLibraryError';
  constructor(readonly soname: string, readonly neededBy: string, readonly searched: string[]) {
    super(`no package provides ${soname} (needed by ${neededBy}); searched ${searched.join(', ')}`);
  }
}

/** Follows symlinks inside an extracted package (absolute targets are relative to its root). */
export function resolveInPackage(root: string, path: string, hops = 0): string | undefined {
  const full = join(root, path);
  if (!existsSync(full) && !isDanglingLink(full)) return undefined;
  const stat = lstatSync(full);
  if (!stat.isSymbolicLink()) return stat.isFile() ? path : undefined;
  if (hops > 16) return undefined;
  const target = readlinkSync(full);
  const next = target.startsWith('/') ? target.slice(1) : posix.normalize(posix.join(posix.dirname(path), target));
  return resolveInPackage(root, next, hops + 1);
}

function isDanglingLink(full: string): boolean {
  try {
    return lstatSync(full).isSymbolicLink();
  } catch {
    return false;
  }
}

function findSoname(pkg: DebianPackage, soname: string): string | undefined {
  for (const dir of SEARCH_DIRS) {
    const found = resolveInPackage(pkg.root, `${dir}/${soname}`);
    if (found) return join(pkg.root, found);
  }
  return undefined;
}

/** libfoo.so.3 -> "libfoo": packages named after the library are tried first (libfoo3, libfoo-dev…). */
const stem = (soname: string): string => soname.replace(/\.so(\..*)?$/, '').replace(/[-_.]/g, '').toLowerCase();

export class LibraryClosure {
  /** Packages searched so far, in the order they were first used. */
  readonly packages: DebianPackage[] = [];
  private readonly provided = new Set<string>();

  constructor(
    private readonly tree: ImageTree,
    private readonly source: PackageSource,
  ) {}

  async addExecutable(exe: Executable): Promise<void> {
    const pkg = await this.use(exe.package);
    const found = exe.paths.map((path) => resolveInPackage(pkg.root, path)).find((path) => path !== undefined);
    if (!found) throw new MissingFileError(exe.package, exe.paths);
    const data = readFileSync(join(pkg.root, found));
    this.tree.file(exe.dest, data, 0o755);
    if (isElf(data)) await this.addNeeds(pkg, data, `${exe.package}:/${found}`);
  }

  private async use(name: string): Promise<DebianPackage> {
    const known = this.packages.find((p) => p.name === name);
    if (known) return known;
    const pkg = await this.source.get(name);
    this.packages.push(pkg);
    return pkg;
  }

  private async addNeeds(owner: DebianPackage, data: Buffer, what: string): Promise<void> {
    const info = readElfDynamicInfo(data, what);
    if (info.interpreter) {
      const loader = basename(info.interpreter);
      await this.addLibrary(owner, loader, what);
      if (info.interpreter !== `/${LIBRARY_DIR}/${loader}`) this.tree.symlink(info.interpreter, `/${LIBRARY_DIR}/${loader}`);
    }
    for (const soname of info.needed) await this.addLibrary(owner, soname, what);
  }

  private async addLibrary(owner: DebianPackage, soname: string, neededBy: string): Promise<void> {
    if (this.provided.has(soname)) return;
    const { pkg, file } = await this.locate(owner, soname, neededBy);
    this.provided.add(soname);
    const data = readFileSync(file);
    this.tree.file(`${LIBRARY_DIR}/${soname}`, data, 0o755);
    await this.addNeeds(pkg, data, `${pkg.name}:${soname}`);
  }

  /** The owner itself and the packages used so far first, then the owner's Depends, breadth first. */
  private async locate(owner: DebianPackage, soname: string, neededBy: string): Promise<{ pkg: DebianPackage; file: string }> {
    for (const pkg of [owner, ...this.packages]) {
      const file = findSoname(pkg, soname);
      if (file) return { pkg, file };
    }
    const searched = new Set([owner.name, ...this.packages.map((p) => p.name)]);
    let frontier = [owner];
    for (let depth = 0; depth < MAX_SEARCH_DEPTH && frontier.length > 0; depth += 1) {
      const next: DebianPackage[] = [];
      const names: string[] = [];
      for (const pkg of frontier) for (const name of await this.source.depends(pkg)) if (!names.includes(name)) names.push(name);
      const wanted = stem(soname);
      names.sort((a, b) => Number(stem(b).startsWith(wanted)) - Number(stem(a).startsWith(wanted)));
      for (const name of names) {
        if (searched.has(name)) continue;
        searched.add(name);
        const pkg = await this.source.get(name);
        const file = findSoname(pkg, soname);
        if (file) {
          this.packages.push(pkg);
          return { pkg, file };
        }
        next.push(pkg);
      }
      frontier = next;
    }
    throw new MissingLibraryError(soname, neededBy, [...searched]);
  }
}
