import * as fs from 'node:fs';
import { mkdir, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import git from 'isomorphic-git';
import type { TreeChange } from './tree-diff.ts';
import { UnsafeTreePathError } from './unsafe-tree-path-error.ts';

/**
 * Moves a working tree that holds exactly one commit to the next one by writing only the files that differ
 * (`changes`, from TreeReader.diff). Deletions go first, so a file that becomes a directory (or the reverse)
 * is out of the way before the new side is written. Throws on anything unexpected (UnsafeTreePathError before
 * touching anything when a path would leave the tree); the caller then checks the whole commit out instead.
 */
export async function applyChanges(dir: string, gitdir: string, changes: readonly TreeChange[], cache: object): Promise<void> {
  const root = resolve(dir);
  const targets = changes.map((change) => ({ change, rel: insideTree(root, change.path) }));
  for (const { change, rel } of targets) {
    if (change.kind !== 'deleted') continue;
    await rm(join(root, rel), { force: true });
    await removeEmptyParents(root, rel);
  }
  for (const { change, rel } of targets) {
    if (change.kind === 'deleted') continue;
    const target = join(root, rel);
    // a new mode or a symbolic link takes effect only on a new file; a submodule leaves nothing behind
    await rm(target, { force: true });
    if (change.type === 'commit') continue; // submodules are not checked out
    if (!change.oid) throw new Error(`no object for ${change.path}`);
    const { blob } = await git.readBlob({ fs, gitdir, oid: change.oid, cache });
    await mkdir(dirname(target), { recursive: true });
    if (change.mode === '120000') await symlink(Buffer.from(blob).toString('utf8'), target);
    else await writeFile(target, blob, { mode: change.mode === '100755' ? 0o755 : 0o644 });
  }
}

/** `path` relative to the tree `root`, normalized; throws when it is the root itself or anything outside it. */
function insideTree(root: string, path: string): string {
  const rel = relative(root, resolve(root, path));
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) throw new UnsafeTreePathError(path, root);
  return rel;
}

/** Removes the directories above `rel` (normalized, inside `root`) that its removal left empty. */
async function removeEmptyParents(root: string, rel: string): Promise<void> {
  for (let parent = dirname(rel); parent !== '.'; parent = dirname(parent)) {
    try {
      await rmdir(join(root, parent));
    } catch {
      return; // not empty (or already gone)
    }
  }
}
