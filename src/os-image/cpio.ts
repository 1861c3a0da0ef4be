// Writes a "newc" cpio archive, the format the kernel unpacks as initramfs. Written here rather than with
// cpio(1) so device nodes need no mknod and the archive is byte-for-byte reproducible (mtime 0, fixed inodes).

export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Buffer; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function header(fields: number[]): string {
  return '070701' + fields.map((value) => value.toString(16).padStart(8, '0')).join('');
}

function record(ino: number, path: string, mode: number, data: Buffer, rdev: { major: number; minor: number }): Buffer[] {
  const name = Buffer.from(`${path}\0`);
  const fields = [ino, mode, 0, 0, mode & S_IFDIR ? 2 : 1, 0, data.length, 0, 0, rdev.major, rdev.minor, name.length, 0];
  const head = Buffer.from(header(fields), 'ascii');
  return [head, name, pad4(head.length + name.length), data, pad4(data.length)];
}

export function buildCpio(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const none = { major: 0, minor: 0 };
  entries.forEach((entry, index) => {
    const ino = index + 1;
    const path = entry.path.replace(/^\/+/, '');
    switch (entry.kind) {
      case 'dir':
        parts.push(...record(ino, path, S_IFDIR | (entry.mode ?? 0o755), Buffer.alloc(0), none));
        break;
      case 'file':
        parts.push(...record(ino, path, S_IFREG | (entry.mode ?? 0o644), entry.data, none));
        break;
      case 'symlink':
        parts.push(...record(ino, path, S_IFLNK | 0o777, Buffer.from(entry.target), none));
        break;
      case 'chardev':
        parts.push(...record(ino, path, S_IFCHR | (entry.mode ?? 0o600), Buffer.alloc(0), { major: entry.major, minor: entry.minor }));
        break;
    }
  });
  parts.push(...record(0, 'TRAILER!!!', 0, Buffer.alloc(0), none));
  return Buffer.concat(parts);
}
