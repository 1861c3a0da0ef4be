// What goes into the forseti OS image (one image for wipe and inventory, chosen by kernel arguments; see
// guest/init for the contract): Debian's kernel, busybox, the disk and hardware tools, the drivers of the seed
// lab's machines and of QEMU, and the guest scripts.
import type { Executable } from './library-closure.ts';

export const IMAGE_NAME = 'forseti-os';

const tool = (pkg: string, name: string, dir: 'bin' | 'sbin'): Executable => ({
  package: pkg,
  paths: [`${dir}/${name}`, `usr/${dir}/${name}`, `usr/${dir === 'bin' ? 'sbin' : 'bin'}/${name}`],
  dest: `usr/${dir}/${name}`,
});

export const EXECUTABLES: readonly Executable[] = [
  { package: 'busybox-static', paths: ['bin/busybox'], dest: 'bin/busybox' },
  tool('util-linux', 'wipefs', 'sbin'),
  tool('util-linux', 'blkdiscard', 'sbin'),
  tool('util-linux', 'lsblk', 'bin'),
  tool('nvme-cli', 'nvme', 'sbin'),
  tool('hdparm', 'hdparm', 'sbin'),
  tool('dmidecode', 'dmidecode', 'sbin'),
  tool('ipmitool', 'ipmitool', 'bin'),
  tool('sg3-utils', 'sg_sanitize', 'bin'),
  tool('sg3-utils', 'sg_inq', 'bin'),
];

/** Loaded in this order (each after its own dependencies): disks first, then NICs, then the BMC interface. */
export const MODULES: readonly string[] = [
  // QEMU and cloud-style virtual hardware
  'virtio_pci', 'virtio_blk', 'virtio_scsi',
  // disks: NVMe, SATA (AHCI), SCSI disks behind HBAs and RAID controllers: HP Smart Array P220i (hpsa, BL460c
  // Gen8), IBM ServeRAID M5015 (megaraid_sas, x3550 M3), LSI SAS HBAs (mpt3sas), Adaptec/ServeRAID-8e (aacraid)
  'nvme', 'ahci', 'sd_mod', 'hpsa', 'megaraid_sas', 'mpt3sas', 'aacraid',
  // NICs: virtio and QEMU's e1000; Broadcom NetXtreme II BCM5709 (bnx2, x3550 M3) and 57810 (bnx2x, FlexibleLOM
  // 530FLB), Emulex (be2net, 554FLB), Broadcom tg3, Intel e1000e/igb/ixgbe. bnx2x needs the crc32c algorithm,
  // which it asks the kernel for by name: loaded explicitly, as there is no modprobe to answer that request.
  'virtio_net', 'e1000', 'e1000e', 'igb', 'ixgbe', 'tg3', 'bnx2', 'crc32c_generic', 'bnx2x', 'be2net',
  // the BMC through the host interface (KCS/SMIC/BT): /dev/ipmi0 for ipmitool
  'ipmi_si', 'ipmi_devintf',
];

/**
 * Firmware the NIC drivers above load when an interface is brought up. Both packages are in Debian's
 * non-free-firmware component: included when apt offers them, else the image is built without and the manifest
 * lists what is missing (bnx2/bnx2x NICs then never come up; see the README).
 */
export const FIRMWARE_PACKAGES: readonly string[] = ['firmware-bnx2', 'firmware-bnx2x'];

/** The guest side: /init and the shell libraries it sources, from src/os-image/guest/. */
export const GUEST_FILES: ReadonlyArray<{ source: string; dest: string; mode: number }> = [
  { source: 'init', dest: 'init', mode: 0o755 },
  { source: 'udhcpc.script', dest: 'etc/udhcpc.script', mode: 0o755 },
  { source: 'lib/json.sh', dest: 'lib/forseti/json.sh', mode: 0o644 },
  { source: 'lib/report.sh', dest: 'lib/forseti/report.sh', mode: 0o644 },
  { source: 'lib/net.sh', dest: 'lib/forseti/net.sh', mode: 0o644 },
  { source: 'lib/disks.sh', dest: 'lib/forseti/disks.sh', mode: 0o644 },
  { source: 'lib/wipe.sh', dest: 'lib/forseti/wipe.sh', mode: 0o644 },
  { source: 'lib/inventory.sh', dest: 'lib/forseti/inventory.sh', mode: 0o644 },
];
