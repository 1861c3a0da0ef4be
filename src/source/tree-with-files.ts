import * as fs from 'node:fs';
import git, { type TreeEntry } from 'isomorphic-git';

/** New content per path (`a/b.yaml`), or null to remove the file. */
export type FileChanges = Map<string, string | null>;

/**
 * Writes the tree that results from applying `changes` to `baseTree` (null: empty tree) and returns its oid.
 * Only the directories on changed paths are rewritten; everything else keeps its oid, so files other
 * writers put on the branch are preserved untouched.
 */
export async function applyFiles(gitdir: string, baseTree: string | null, changes: FileChanges, cache: object): Promise<string> {
  const entries = new Map<string, TreeEntry>();
  if (baseTree) {
    for (const entry of (await git.readTree({ fs, gitdir, oid: baseTree, cache })).tree) entries.set(entry.path, entry);
  }
  const leaves = new Map<string, string | null>();
  const subdirs = new Map<string, FileChanges>();
  for (const [path, content] of changes) {
    const slash = path.indexOf('/');
    if (slash < 0) {
      leaves.set(path, content);
      continue;
    }
    const name = path.slice(0, slash);
    const sub = subdirs.get(name) ?? new Map<string, string | null>();
    sub.set(path.slice(slash + 1), content);
    subdirs.set(name, sub);
  }
  for (const [name, content] of leaves) {
    if (content === null) {
      if (entries.get(name)?.type === 'blob') entries.delete(name);
      continue;
    }
    const oid = await git.writeBlob({ fs, gitdir, blob: Buffer.from(content, 'utf8') });
    entries.set(name, { mode: '100644', path: name, oid, type: 'blob' });
  }
  for (const [name, sub] of subdirs) {
    const existing = entries.get(name);
    const oid = await applyFiles(gitdir, existing?.type === 'tree' ? existing.oid : null, sub, cache);
    if (oid === EMPTY_TREE) entries.delete(name);
    else entries.set(name, { mode: '040000', path: name, oid, type: 'tree' });
  }
  return git.writeTree({ fs, gitdir, tree: [...entries.values()] });
}

export const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
