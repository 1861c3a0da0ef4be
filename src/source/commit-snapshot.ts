import type { TreeEntry } from 'isomorphic-git';

/**
 * A commit's files in memory, read from the object store: the first load of a process parses them instead of waiting
 * for a checkout and reading 10,000 files back (src/model/snapshot-tree.ts reads it as the working tree would be
 * read). Made only for a commit of regular files and directories: one with a symbolic link or a submodule is read from
 * the working tree, which resolves links.
 */
export interface CommitSnapshot {
  readonly commit: string;
  /** Each regular file's content by path (forward slashes, relative to the root). */
  readonly files: ReadonlyMap<string, Buffer>;
  /** Every directory by path, '' the root. */
  readonly dirs: ReadonlySet<string>;
}

/** The entries of several trees at once (the source's TreeReader, which keeps the trees the commit's check just read). */
export type ListTrees = (oids: readonly string[]) => Promise<Map<string, readonly TreeEntry[]>>;
/** The contents of blobs; fails past `maxBytes` in all. */
export type ReadBlobs = (oids: readonly string[], maxBytes: number) => Promise<Map<string, Buffer>>;

/**
 * The snapshot of `commit` (whose root tree is `rootTree`, checked by verifyCommitTree), or null when it holds a link
 * or a submodule, or its blobs come to more than `maxBytes` (when `readBlobs` does not fail first). Reads the trees
 * one depth at a time, then every blob at once.
 */
export async function readCommitSnapshot(commit: string, rootTree: string, listTrees: ListTrees, readBlobs: ReadBlobs, maxBytes: number): Promise<CommitSnapshot | null> {
  const blobAt = new Map<string, string>();
  // Two directories of the same content are one tree object: listed once, walked at each path.
  let level: Array<{ oid: string; dir: string }> = [{ oid: rootTree, dir: '' }];
  while (level.length > 0) {
    const lists = await listTrees(level.map(({ oid }) => oid));
    const next: typeof level = [];
    for (const { oid, dir } of level) {
      for (const entry of lists.get(oid) ?? []) {
        const path = dir === '' ? entry.path : `${dir}/${entry.path}`;
        if (entry.mode === '100644' || entry.mode === '100755') blobAt.set(path, entry.oid);
        else if (entry.type === 'tree') next.push({ oid: entry.oid, dir: path });
        else return null;
      }
    }
    level = next;
  }
  const contents = await readBlobs([...new Set(blobAt.values())], maxBytes);
  let bytes = 0;
  for (const content of contents.values()) bytes += content.length;
  if (bytes > maxBytes) return null; // the reader's own bound counts its headers' allowance too
  const files = new Map<string, Buffer>();
  for (const [path, oid] of blobAt) {
    const content = contents.get(oid);
    if (!content) throw new Error(`blob ${oid} (${path}) was not read`);
    files.set(path, content);
  }
  return { commit, files, dirs: directoriesOf(files.keys()) };
}

/** The directories a checkout of these files makes: git writes no empty directory, so an empty tree is none. */
function directoriesOf(paths: Iterable<string>): Set<string> {
  const dirs = new Set<string>(['']);
  for (const path of paths) {
    for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) {
      const dir = path.slice(0, slash);
      if (dirs.has(dir)) break;
      dirs.add(dir);
    }
  }
  return dirs;
}
