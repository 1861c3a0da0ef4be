import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';

/**
 * What the working tree looked like when the source last wrote it: every file's size, mtime, inode and mode.
 * Before moving the tree on by writing only the changed files, the source checks that nothing else touched it
 * (a local edit, a stray file); if something did, it checks the whole commit out instead. Synchronous: a scan
 * of 10,000 files takes tens of milliseconds, and its result must not race with writes.
 */
export class TreeStamps {
  private stamps: Map<string, string> | null = null;

  /** Stamps every file (after a whole checkout). */
  record(dir: string): void {
    this.stamps = scan(dir);
  }

  /** Stamps these paths again (after writing or deleting them). */
  update(dir: string, paths: Iterable<string>): void {
    if (!this.stamps) return;
    for (const path of paths) {
      const stamp = stampOf(dir, path);
      if (stamp === undefined) this.stamps.delete(path);
      else this.stamps.set(path, stamp);
    }
  }

  forget(): void {
    this.stamps = null;
  }

  /** The stamps as `[path, stamp]` pairs, to be kept on disk; null when none are recorded. */
  saved(): Array<[string, string]> | null {
    return this.stamps ? [...this.stamps] : null;
  }

  /** Takes over stamps kept on disk by an earlier process; intact() then says whether the tree still matches them. */
  adopt(saved: Iterable<[string, string]>): void {
    this.stamps = new Map(saved);
  }

  /** Whether the tree holds exactly the files stamped, unchanged. */
  intact(dir: string): boolean {
    const recorded = this.stamps;
    if (!recorded) return false;
    const now = scan(dir);
    if (now.size !== recorded.size) return false;
    for (const [path, stamp] of now) if (recorded.get(path) !== stamp) return false;
    return true;
  }
}

function scan(dir: string, rel = '', out = new Map<string, string>()): Map<string, string> {
  for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) scan(dir, path, out);
    else out.set(path, stamp(lstatSync(join(dir, path))));
  }
  return out;
}

function stampOf(dir: string, path: string): string | undefined {
  try {
    const stats = lstatSync(join(dir, path));
    return stats.isDirectory() ? undefined : stamp(stats); // a file replaced by a directory: its files are stamped
  } catch {
    return undefined;
  }
}

function stamp(s: Stats): string {
  return `${s.size}:${s.mtimeMs}:${s.ino}:${s.mode}`;
}
