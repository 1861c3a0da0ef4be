// Debian builds the guest NIC drivers as modules and the package ships no modules.dep (depmod runs at
// install time, which we skip), so the initramfs loads them with plain insmod in dependency order.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Modules the guest needs: both NIC models, plus the ACPI power button so `power soft` works. */
export const GUEST_MODULES = ['virtio_pci', 'virtio_net', 'e1000', 'button', 'evdev'];

const canonical = (name: string): string => name.replace(/-/g, '_');

function indexModules(dir: string, index = new Map<string, string>()): Map<string, string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) indexModules(path, index);
    else if (entry.name.endsWith('.ko')) index.set(canonical(entry.name.slice(0, -3)), path);
  }
  return index;
}

/** The `depends=` string of the module's .modinfo section. */
function moduleDepends(file: string): string[] {
  const match = /\0depends=([^\0]*)\0/.exec(readFileSync(file).toString('latin1'));
  return match?.[1] ? match[1].split(',').filter(Boolean).map(canonical) : [];
}

/** Module files in load order (dependencies first) for the wanted modules of a kernel's module tree. */
export function resolveModules(kernelTree: string, wanted: string[] = GUEST_MODULES): Array<{ name: string; file: string }> {
  const index = indexModules(kernelTree);
  const ordered: Array<{ name: string; file: string }> = [];
  const seen = new Set<string>();
  const visit = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const file = index.get(name);
    if (!file) throw new Error(`kernel module ${name} not found under ${kernelTree}`);
    for (const dependency of moduleDepends(file)) visit(dependency);
    ordered.push({ name, file });
  };
  wanted.map(canonical).forEach(visit);
  return ordered;
}
