import * as fs from 'node:fs';
import git from 'isomorphic-git';
import { resolveRevision } from './resolve-revision.ts';
import { TreeReader, type PathChangeKind } from './tree-diff.ts';

export type { PathChangeKind } from './tree-diff.ts';

export interface ChangedPath {
  /** Path relative to the repository root, forward slashes. */
  path: string;
  kind: PathChangeKind;
}

/**
 * Files that differ between two commits (`from` null: everything in `to` is added), sorted by path.
 * Pass a TreeReader kept across calls to reuse the trees it parsed already.
 */
export async function changedPaths(gitdir: string, from: string | null, to: string, cache: object = {}, trees = new TreeReader(gitdir, cache)): Promise<ChangedPath[]> {
  if (from === null) {
    const files = await git.listFiles({ fs, gitdir, ref: to, cache });
    return files.map((path) => ({ path, kind: 'added' as const })).sort((a, b) => (a.path < b.path ? -1 : 1));
  }
  const commit = (rev: string): Promise<string> => (/^[0-9a-f]{40}$/.test(rev) ? Promise.resolve(rev) : resolveRevision(gitdir, rev, cache));
  return (await trees.diff(await commit(from), await commit(to))).map(({ path, kind }) => ({ path, kind }));
}
