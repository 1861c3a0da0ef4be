import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { buildCpio, type CpioEntry } from '../../src/os-image/cpio.ts';

export const GUEST_INIT = new URL('./guest-init.sh', import.meta.url);
export const GUEST_UDHCPC_SCRIPT = new URL('./guest-udhcpc.sh', import.meta.url);
/** Modules the guest needs: both NIC models, plus the ACPI power button so `power soft` works. */
export const GUEST_MODULES = ['virtio_pci', 'virtio_net', 'e1000', 'button', 'evdev'];

export interface InitramfsInputs {
  busybox: string;
  /** In load order. */
  modules: Array<{ name: string; file: string }>;
}

export function buildInitramfs(inputs: InitramfsInputs): Buffer {
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'proc', 'sys', 'tmp', 'etc', 'lib', 'lib/modules'].map((path): CpioEntry => ({ kind: 'dir', path })),
    // The kernel opens /dev/console for init's stdio before /init can mount devtmpfs.
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { kind: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { kind: 'file', path: 'bin/busybox', data: readFileSync(inputs.busybox), mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'file', path: 'init', data: readFileSync(GUEST_INIT), mode: 0o755 },
    { kind: 'file', path: 'etc/udhcpc.script', data: readFileSync(GUEST_UDHCPC_SCRIPT), mode: 0o755 },
    { kind: 'file', path: 'etc/vlab-modules', data: Buffer.from(inputs.modules.map((m) => `${m.name}\n`).join('')) },
    ...inputs.modules.map((m): CpioEntry => ({ kind: 'file', path: `lib/modules/${m.name}.ko`, data: readFileSync(m.file) })),
  ];
  return gzipSync(buildCpio(entries), { level: 9 });
}
