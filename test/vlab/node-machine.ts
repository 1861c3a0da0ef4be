// Per-node files read by chassis-control.sh: node.env (the machine), disk.qcow2, and the logs it writes.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked } from '../../src/os-image/run-command.ts';
import type { VlabNodeSpec } from './types.ts';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** Empty: "boot from disk" then finds nothing bootable, which is what an unprovisioned machine does. */
const DISK_SIZE = '64M';

export type NodeMachine = Required<VlabNodeSpec>;

export function withDefaults(spec: VlabNodeSpec): NodeMachine {
  const machine = { firmware: 'bios' as const, nic: 'virtio-net-pci' as const, memoryMiB: 512, bmcType: 'ipmi' as const, disks: 1, ...spec };
  if (!Number.isInteger(machine.disks) || machine.disks < 1 || machine.disks > 4) throw new Error(`node ${machine.name}: disks must be 1 to 4`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/.test(machine.name)) throw new Error(`invalid vlab node name ${JSON.stringify(machine.name)}`);
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(machine.mac)) throw new Error(`node ${machine.name}: MAC must be lower-case aa:bb:cc:dd:ee:ff`);
  if (Number.parseInt(machine.mac.slice(0, 2), 16) & 1) throw new Error(`node ${machine.name}: ${machine.mac} is a multicast MAC`);
  if (machine.firmware === 'uefi' && !existsSync(OVMF_CODE)) throw new Error(`UEFI guests need ${OVMF_CODE} (Debian package ovmf)`);
  return machine;
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export async function prepareNodeDir(dir: string, machine: NodeMachine, tap: string, serconFile: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const disk = join(dir, 'disk.qcow2');
  const extraDisks = Array.from({ length: machine.disks - 1 }, (_, i) => join(dir, `disk${i + 2}.qcow2`));
  const env: Record<string, string> = {
    NAME: machine.name, TAP: tap, MAC: machine.mac, NIC: machine.nic, FIRMWARE: machine.firmware,
    MEMORY_MIB: String(machine.memoryMiB), DISK: disk, EXTRA_DISKS: extraDisks.join(' '), SERCON_FILE: serconFile, OVMF_CODE, OVMF_VARS,
  };
  await writeFile(join(dir, 'node.env'), Object.entries(env).map(([key, value]) => `${key}=${shellQuote(value)}\n`).join(''));
  await writeFile(join(dir, 'serial.log'), '');
  await writeFile(join(dir, 'power.log'), '');
  for (const file of [disk, ...extraDisks]) if (!existsSync(file)) await runChecked('qemu-img', ['create', '-q', '-f', 'qcow2', file, DISK_SIZE]);
}

/** SeaBIOS fw_cfg file "etc/sercon-port": 0x3f8 (COM1), so BIOS and iPXE text also reach the serial log. */
export async function writeSerconFile(workDir: string): Promise<string> {
  const file = join(workDir, 'sercon-port.bin');
  await writeFile(file, Buffer.from([0xf8, 0x03]));
  return file;
}
