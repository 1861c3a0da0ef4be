// Disks for wipe tests: raw images with a GPT, an ext4 and a swap partition and data in the last MiB, and what
// wipefs and blkid find on them afterwards.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const MIB = 1024 * 1024;

export const sh = (cmd: string, args: string[], input?: string): string => execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });

function writeAt(file: string, offset: number, data: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Filesystem image of `bytes` made by `mkfs ARGS FILE` in a scratch file. */
function fsImage(dir: string, bytes: number, mkfs: string[]): Buffer {
  const file = join(dir, `fs-${randomBytes(4).toString('hex')}.img`);
  writeFileSync(file, Buffer.alloc(0));
  truncateSync(file, bytes);
  sh(mkfs[0] as string, [...mkfs.slice(1), file]);
  const data = readFileSync(file);
  rmSync(file);
  return data;
}

export interface PreparedDisk {
  file: string;
  partitionOffsets: number[];
}

/** A raw disk with a GPT, an ext4 and a swap partition, and random data inside the last MiB. */
export function partitionedDisk(dir: string, name: string, sizeMiB: number): PreparedDisk {
  const file = join(dir, `${name}.raw`);
  writeFileSync(file, Buffer.alloc(0));
  truncateSync(file, sizeMiB * MIB);
  sh('sfdisk', ['-q', file], 'label: gpt\n,16M\n,\n');
  const table = JSON.parse(sh('sfdisk', ['-J', file])) as { partitiontable: { partitions: Array<{ start: number; size: number }> } };
  const [p1, p2] = table.partitiontable.partitions;
  assert.ok(p1 && p2);
  writeAt(file, p1.start * 512, fsImage(dir, p1.size * 512, ['mkfs.ext4', '-q', '-F', '-L', `${name}-data`]));
  writeAt(file, p2.start * 512, fsImage(dir, p2.size * 512, ['mkswap', '-L', `${name}-swap`]));
  // the end of partition 2 lies inside the disk's last MiB, before the backup GPT
  writeAt(file, (p2.start + p2.size) * 512 - 512 * 1024, randomBytes(512 * 1024));
  return { file, partitionOffsets: [p1.start * 512, p2.start * 512] };
}

/** What wipefs finds on the whole disk, or blkid's low-level probe at a partition's old offset. */
export function signaturesAt(file: string, offset?: number): string {
  if (offset === undefined) return sh('wipefs', ['--noheadings', '--output', 'TYPE', file]).trim();
  try {
    return sh('blkid', ['-p', '-O', String(offset), '-o', 'value', '-s', 'TYPE', file]).trim();
  } catch (error) {
    if ((error as { status?: number }).status === 2) return ''; // blkid: nothing found
    throw error;
  }
}

export const isZero = (data: Buffer): boolean => data.every((byte) => byte === 0);
