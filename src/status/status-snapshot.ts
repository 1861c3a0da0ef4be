// A copy of the status branch's files in the state directory, so a restarted agent does not read 10,000 blobs
// through isomorphic-git (~2 s) to take over the history it wrote. It is only a cache: each file is used when its
// git blob id equals the branch tree's entry for that path (so what is restored is exactly what the branch holds,
// byte for byte), and every other file is read from the branch as before. A missing, damaged or stale snapshot
// costs time, never correctness.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../core/atomic-file.ts';

/** Files by path (`site.yaml`, `hosts/<name>.yaml`) as they were on the branch. */
export type SnapshotFiles = Map<string, string>;

/** The git blob id of `text` (UTF-8), as `git hash-object` computes it. */
export function blobOid(text: string): string {
  const body = Buffer.from(text, 'utf8');
  return createHash('sha1').update(`blob ${body.length}\0`).update(body).digest('hex');
}

export class StatusSnapshot {
  constructor(private readonly file: string) {}

  /** The files last saved; empty when there is no snapshot or it cannot be read. */
  async load(): Promise<SnapshotFiles> {
    try {
      const parsed: unknown = JSON.parse(await readFile(this.file, 'utf8'));
      const files = (parsed as { files?: unknown } | null)?.files;
      if (typeof files !== 'object' || files === null) return new Map();
      return new Map(Object.entries(files).filter((e): e is [string, string] => typeof e[1] === 'string'));
    } catch {
      return new Map();
    }
  }

  async save(files: ReadonlyMap<string, string>): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify({ version: 1, files: Object.fromEntries(files) }), { mode: 0o600 });
  }

  /** The saved files with `changes` applied (null: the file was removed), saved again; nothing when no change. */
  async update(changes: ReadonlyMap<string, string | null>): Promise<void> {
    if (changes.size === 0) return;
    const files = await this.load();
    for (const [path, content] of changes) {
      if (content === null) files.delete(path);
      else files.set(path, content);
    }
    await this.save(files);
  }
}
