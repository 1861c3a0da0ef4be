import * as fs from 'node:fs';
import git, { type WalkerEntry } from 'isomorphic-git';

export type ChangeKind = 'added' | 'modified' | 'deleted';

export interface ChangedPath {
  /** Path relative to the repository root, forward slashes. */
  path: string;
  kind: ChangeKind;
}

interface Side {
  type: string;
  oid: string;
  mode: number;
}

async function describe(entry: WalkerEntry | null): Promise<Side | null> {
  if (!entry) return null;
  return { type: await entry.type(), oid: await entry.oid(), mode: await entry.mode() };
}

/**
 * Files that differ between two commits (`from` null: everything in `to` is added).
 * Walks both trees together and skips subtrees whose oids are equal, so cost follows the size of the change.
 */
export async function changedPaths(gitdir: string, from: string | null, to: string, cache: object = {}): Promise<ChangedPath[]> {
  if (from === null) {
    const files = await git.listFiles({ fs, gitdir, ref: to, cache });
    return files.map((path) => ({ path, kind: 'added' as const })).sort((a, b) => (a.path < b.path ? -1 : 1));
  }
  const result: unknown = await git.walk({
    fs,
    gitdir,
    cache,
    trees: [git.TREE({ ref: from }), git.TREE({ ref: to })],
    map: async (path: string, entries: Array<WalkerEntry | null>): Promise<ChangedPath | null | undefined> => {
      const [a, b] = await Promise.all([describe(entries[0] ?? null), describe(entries[1] ?? null)]);
      if (path === '.') return undefined;
      if (a?.type === 'tree' && b?.type === 'tree') return a.oid === b.oid ? null : undefined;
      const aFile = a !== null && a.type !== 'tree' ? a : null;
      const bFile = b !== null && b.type !== 'tree' ? b : null;
      // A path that is a file on one side and a directory on the other: the directory's files are reported as children.
      if (aFile && bFile) return aFile.oid === bFile.oid && aFile.mode === bFile.mode ? undefined : { path, kind: 'modified' };
      if (aFile) return { path, kind: 'deleted' };
      if (bFile) return { path, kind: 'added' };
      return undefined;
    },
  });
  const flat = (Array.isArray(result) ? result.flat(Infinity) : []) as ChangedPath[];
  return flat.filter((c) => c !== undefined && c !== null).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
