// The files of an initramfs, assembled in memory and written as one newc cpio in path order, so the same files
// always give the same bytes whatever order they were added in; parent directories are added on the way.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { buildCpio, type CpioEntry } from './cpio.ts';

export class ImagePathConflictError extends Error {
  override readonly name = 'ImagePathConflictError';
  constructor(readonly path: string) {
    super(`the image gets two different files at /${path}`);
  }
}

const normalise = (path: string): string => path.replace(/^\/+/, '').replace(/\/+$/, '');

function sameEntry(a: CpioEntry, b: CpioEntry): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'file' && b.kind === 'file') return a.data.equals(b.data) && (a.mode ?? 0o644) === (b.mode ?? 0o644);
  return JSON.stringify(a) === JSON.stringify(b);
}

export class ImageTree {
  private readonly entries = new Map<string, CpioEntry>();

  has(path: string): boolean {
    return this.entries.has(normalise(path));
  }

  add(entry: CpioEntry): void {
    const path = normalise(entry.path);
    const normalised = { ...entry, path };
    const parts = path.split('/');
    for (let depth = 1; depth < parts.length; depth += 1) {
      const parent = parts.slice(0, depth).join('/');
      if (!this.entries.has(parent)) this.entries.set(parent, { kind: 'dir', path: parent });
    }
    const existing = this.entries.get(path);
    if (existing && !sameEntry(existing, normalised)) throw new ImagePathConflictError(path);
    this.entries.set(path, normalised);
  }

  file(path: string, data: Buffer, mode = 0o644): void {
    this.add({ kind: 'file', path, data, mode });
  }

  symlink(path: string, target: string): void {
    this.add({ kind: 'symlink', path, target });
  }

  dir(path: string): void {
    if (!this.has(path)) this.add({ kind: 'dir', path });
  }

  /** Entries in byte order of their paths: parents before children, independent of insertion order. */
  sorted(): CpioEntry[] {
    return [...this.entries.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((path) => this.entries.get(path) as CpioEntry);
  }

  /** A digest of every path, kind, mode and content: equal digests, equal images. */
  digest(): string {
    const hash = createHash('sha256');
    for (const entry of this.sorted()) {
      hash.update(`${entry.kind}\0${entry.path}\0`);
      if (entry.kind === 'file') hash.update(`${entry.mode ?? 0o644}\0`).update(createHash('sha256').update(entry.data).digest());
      else if (entry.kind === 'symlink') hash.update(entry.target);
      else if (entry.kind === 'chardev') hash.update(`${entry.major}:${entry.minor}:${entry.mode ?? 0o600}`);
      else hash.update(`${entry.mode ?? 0o755}`);
      hash.update('\n');
    }
    return hash.digest('hex');
  }

  /** gzip (level 9; zlib's output depends only on the input and level) of the cpio archive. */
  initramfs(): Buffer {
    return gzipSync(buildCpio(this.sorted()), { level: 9 });
  }
}
