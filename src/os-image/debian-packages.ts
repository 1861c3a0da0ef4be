// Debian packages as extracted trees in a cache: `apt-get download NAME=VERSION` and `dpkg-deb -x`, never
// installed (busybox-static conflicts with busybox, the kernel is the guest's, not the host's). The version is
// the apt candidate at the time of the build, part of the cache path, so a new upload is a new tree.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run, runChecked } from './run-command.ts';

export interface DebianPackage {
  name: string;
  version: string;
  /** The extracted tree (what `dpkg -i` would put under /). */
  root: string;
}

export class PackageUnavailableError extends Error {
  override readonly name = 'PackageUnavailableError';
  constructor(readonly packageName: string, detail: string) {
    super(`Debian package ${packageName} is not available: ${detail}`);
  }
}

export interface AptRecord {
  name: string;
  /** apt's candidate version. */
  version: string;
  /** Names in Pre-Depends and Depends (the first of each alternative; version constraints dropped). */
  depends: string[];
}

function parseDepends(record: string): string[] {
  const names: string[] = [];
  for (const field of ['Pre-Depends', 'Depends']) {
    const value = new RegExp(`^${field}: (.*)$`, 'm').exec(record)?.[1];
    for (const clause of value?.split(',') ?? []) {
      const first = clause.split('|')[0]?.trim().split(/[\s(:]/)[0];
      if (first && !names.includes(first)) names.push(first);
    }
  }
  return names;
}

/**
 * apt's candidate records, asked in batches (`apt-cache show --no-all-versions A B C`: one call costs about as
 * much as one name) and kept for the life of the object.
 */
export class AptIndex {
  private readonly records = new Map<string, AptRecord | null>();

  /** Fetches the records of these names, and of what they depend on, `depth` levels down. */
  async prefetch(names: readonly string[], depth = 0): Promise<void> {
    let wanted = [...new Set(names)].filter((name) => !this.records.has(name));
    for (let level = 0; level <= depth && wanted.length > 0; level += 1) {
      const result = await run('apt-cache', ['show', '--no-all-versions', ...wanted]);
      for (const record of result.stdout.split(/\n\n+/)) {
        const name = /^Package: (\S+)$/m.exec(record)?.[1];
        const version = /^Version: (\S+)$/m.exec(record)?.[1];
        if (name && version && !this.records.get(name)) this.records.set(name, { name, version, depends: parseDepends(record) });
      }
      for (const name of wanted) if (!this.records.has(name)) this.records.set(name, null);
      wanted = [...new Set(wanted.flatMap((name) => this.records.get(name)?.depends ?? []))].filter((name) => !this.records.has(name));
    }
  }

  /** The candidate record, or undefined when no configured apt source has the package. */
  async record(name: string): Promise<AptRecord | undefined> {
    if (!this.records.has(name)) await this.prefetch([name]);
    return this.records.get(name) ?? undefined;
  }

  async require(name: string): Promise<AptRecord> {
    const record = await this.record(name);
    if (!record) throw new PackageUnavailableError(name, 'no apt source offers it (run apt-get update? is its component, e.g. non-free-firmware, enabled?)');
    return record;
  }

  /** The versioned kernel package `linux-image-amd64` points at, e.g. linux-image-6.1.0-57-amd64. */
  async kernelPackageName(): Promise<string> {
    const name = (await this.require('linux-image-amd64')).depends.find((dep) => /^linux-image-\d/.test(dep));
    if (!name) throw new PackageUnavailableError('linux-image-amd64', 'it depends on no versioned linux-image package');
    return name;
  }
}

const safeName = (value: string): string => value.replace(/[^A-Za-z0-9.+~-]/g, '_');

/** Leftovers of a run that died mid-extraction or mid-build; call only while holding the cache lock. */
export function removePartials(cacheDir: string, subdirs: readonly string[] = ['packages']): void {
  for (const dir of [cacheDir, ...subdirs.map((sub) => join(cacheDir, sub))]) {
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir)) if (entry.includes('.partial-')) rmSync(join(dir, entry), { recursive: true, force: true });
  }
}

/** The package's extracted tree under `cacheDir/packages/`, downloaded once per version. Call only while holding the cache lock. */
export async function extractedPackage(cacheDir: string, name: string, version: string): Promise<DebianPackage> {
  const root = join(cacheDir, 'packages', `${name}_${safeName(version)}`);
  if (existsSync(root)) return { name, version, root };
  const scratch = join(cacheDir, 'packages', `.partial-${name}-${process.pid}`);
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  try {
    await runChecked('apt-get', ['download', `${name}=${version}`], { cwd: scratch, timeoutMs: 600_000 });
    const deb = readdirSync(scratch).find((file) => file.startsWith(`${name}_`) && file.endsWith('.deb'));
    if (!deb) throw new PackageUnavailableError(name, `apt-get download ${name}=${version} produced no .deb`);
    await runChecked('dpkg-deb', ['-x', join(scratch, deb), join(scratch, 'root')], { timeoutMs: 300_000 });
    renameSync(join(scratch, 'root'), root);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return { name, version, root };
}
