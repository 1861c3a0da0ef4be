// Debian builds most drivers as modules and the package ships no modules.dep (depmod runs at install time,
// which we skip), so an initramfs loads them with plain insmod in dependency order, read from each module's
// .modinfo section.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface KernelModule {
  name: string;
  file: string;
  /** Firmware files the module may ask for (`firmware=` in .modinfo), relative to /lib/firmware. */
  firmware: string[];
}

export class KernelModuleNotFoundError extends Error {
  override readonly name = 'KernelModuleNotFoundError';
  constructor(readonly module: string, readonly kernelTree: string) {
    super(`kernel module ${module} not found under ${kernelTree}`);
  }
}

const canonical = (name: string): string => name.replace(/-/g, '_');

function indexModules(dir: string, index = new Map<string, string>()): Map<string, string> {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) indexModules(path, index);
    else if (entry.name.endsWith('.ko')) index.set(canonical(entry.name.slice(0, -3)), path);
  }
  return index;
}

/** Every `key=value` of the module's .modinfo section with this key. */
function modinfo(file: string, key: string): string[] {
  const text = readFileSync(file).toString('latin1');
  const pattern = new RegExp(`\\0${key}=([^\\0]*)(?=\\0)`, 'g');
  return [...text.matchAll(pattern)].map((match) => match[1] ?? '');
}

/** Modules compiled into the kernel (`modules.builtin` beside the tree): nothing to load for them. */
function builtinModules(kernelTree: string): Set<string> {
  const file = join(dirname(kernelTree), 'modules.builtin');
  if (!existsSync(file)) return new Set();
  return new Set(readFileSync(file, 'utf8').split('\n').filter(Boolean).map((path) => canonical(basename(path).replace(/\.ko$/, ''))));
}

/**
 * Module files in load order (dependencies first) for the wanted modules of a kernel's module tree
 * (`lib/modules/<release>/kernel`); built-in ones are left out.
 */
export function resolveModules(kernelTree: string, wanted: readonly string[]): KernelModule[] {
  const index = indexModules(kernelTree);
  const builtin = builtinModules(kernelTree);
  const ordered: KernelModule[] = [];
  const seen = new Set<string>();
  const visit = (name: string): void => {
    if (seen.has(name) || builtin.has(name)) return;
    seen.add(name);
    const file = index.get(name);
    if (!file) throw new KernelModuleNotFoundError(name, kernelTree);
    const depends = modinfo(file, 'depends').flatMap((value) => value.split(',')).filter(Boolean).map(canonical);
    for (const dependency of depends) visit(dependency);
    ordered.push({ name, file, firmware: modinfo(file, 'firmware') });
  };
  wanted.map(canonical).forEach(visit);
  return ordered;
}
