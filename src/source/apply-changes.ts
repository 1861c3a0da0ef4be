import * as fs from 'node:fs';
import { mkdir, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import git from 'isomorphic-git';
import type { TreeChange } from './tree-diff.ts';

/**
 * Moves a working tree that holds exactly one commit to the next one by writing only the files that differ
 * (`changes`, from TreeReader.diff). Deletions go first, so a file that becomes a directory (or the reverse)
 * is out of the way before the new side is written. Throws on anything unexpected; the caller then checks the
 * whole commit out instead.
 */
export async function applyChanges(dir: string, gitdir: string, changes: readonly TreeChange[], cache: object): Promise<void> {
  for (const change of changes) {
    if (change.kind !== 'deleted') continue;
    await rm(join(dir, change.path), { force: true });
    await removeEmptyParents(dir, change.path);
  }
  for (const change of changes) {
    if (change.kind === 'deleted' || change.type === 'commit') continue; // submodules are not checked out
    if (!change.oid) throw new Error(`no object for ${change.path}`);
    const { blob } = await git.readBlob({ fs, gitdir, oid: change.oid, cache });
    const target = join(dir, change.path);
    await rm(target, { force: true }); // a new mode or a symbolic link takes effect only on a new file
    await mkdir(dirname(target), { recursive: true });
    if (change.mode === '120000') await symlink(Buffer.from(blob).toString('utf8'), target);
    else await writeFile(target, blob, { mode: change.mode === '100755' ? 0o755 : 0o644 });
  }
}

async function removeEmptyParents(dir: string, path: string): Promise<void> {
  for (let parent = dirname(path); parent !== '.' && parent !== ''; parent = dirname(parent)) {
    try {
      await rmdir(join(dir, parent));
    } catch {
      return; // not empty (or already gone)
    }
  }
}
