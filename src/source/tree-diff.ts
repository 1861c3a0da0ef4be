import * as fs from 'node:fs';
import git, { type TreeEntry } from 'isomorphic-git';
import { parseTree } from './tree-object.ts';

export type PathChangeKind = 'added' | 'modified' | 'deleted';

/** One file that differs between two commits; for added and modified files, the blob the newer commit holds. */
export interface TreeChange {
  /** Path relative to the repository root, forward slashes. */
  path: string;
  kind: PathChangeKind;
  /** The newer side (added, modified): its object, mode (`100644`, `100755`, `120000`, `160000`) and type. */
  oid?: string;
  mode?: string;
  type?: TreeEntry['type'];
}

const KEEP_TREES = 64;

/** Reads tree objects' contents, all of `oids` at once (the git command line's cat-file where it runs, else isomorphic-git). */
export type ReadTreeObjects = (oids: readonly string[]) => Promise<Map<string, Buffer>>;

/**
 * Reads tree objects and keeps the most recent ones parsed (trees never change): the diff of the next commit
 * usually parses only the trees that commit changed. A `hosts/` tree of 10,000 entries is one 400 KB object.
 */
export class TreeReader {
  private readonly trees = new Map<string, { list: TreeEntry[]; byName: Map<string, TreeEntry> }>();

  private readonly readObjects: ReadTreeObjects;

  /** `readObjects`: how tree objects are read (default: one by one through isomorphic-git). */
  constructor(private readonly gitdir: string, private readonly cache: object, readObjects?: ReadTreeObjects) {
    this.readObjects = readObjects ?? readTreeObjectsWith(gitdir, cache);
  }

  /** The entries of each of `oids` (as list() gives them), the trees not parsed yet read in one go. */
  async listMany(oids: readonly string[]): Promise<Map<string, readonly TreeEntry[]>> {
    const lists = new Map<string, readonly TreeEntry[]>();
    const missing: string[] = [];
    for (const oid of new Set(oids)) {
      const cached = this.trees.get(oid);
      if (cached) lists.set(oid, cached.list);
      else missing.push(oid);
    }
    if (missing.length === 0) return lists;
    const contents = await this.readObjects(missing);
    for (const oid of missing) {
      const content = contents.get(oid);
      if (!content) throw new Error(`tree ${oid} was not read`);
      lists.set(oid, this.keep(oid, parseTree(oid, content)).list);
    }
    return lists;
  }

  async entries(oid: string): Promise<Map<string, TreeEntry>> {
    return (await this.read(oid)).byName;
  }

  /** The entries as the object lists them, duplicates included (verifyCommitTree refuses those). */
  async list(oid: string): Promise<readonly TreeEntry[]> {
    return (await this.read(oid)).list;
  }

  private async read(oid: string): Promise<{ list: TreeEntry[]; byName: Map<string, TreeEntry> }> {
    const cached = this.trees.get(oid);
    if (cached) {
      this.trees.delete(oid); // most recently used last
      this.trees.set(oid, cached);
      return cached;
    }
    await this.listMany([oid]);
    const parsed = this.trees.get(oid);
    if (!parsed) throw new Error(`tree ${oid} was not read`);
    return parsed;
  }

  private keep(oid: string, list: TreeEntry[]): { list: TreeEntry[]; byName: Map<string, TreeEntry> } {
    const parsed = { list, byName: new Map(list.map((e) => [e.path, e])) };
    this.trees.set(oid, parsed);
    if (this.trees.size > KEEP_TREES) this.trees.delete(this.trees.keys().next().value ?? '');
    return parsed;
  }

  async treeOf(commit: string): Promise<string> {
    return (await git.readCommit({ fs, gitdir: this.gitdir, oid: commit, cache: this.cache })).commit.tree;
  }

  /**
   * Files that differ between two commits, sorted by path. Subtrees with equal oids are skipped, so the cost
   * follows the size of the change. A path that is a file on one side and a directory on the other is reported
   * as that file deleted (or added) and the directory's files added (or deleted).
   */
  async diff(from: string, to: string): Promise<TreeChange[]> {
    const changes: TreeChange[] = [];
    await this.diffTrees(await this.treeOf(from), await this.treeOf(to), '', changes);
    return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  private async diffTrees(a: string, b: string, prefix: string, out: TreeChange[]): Promise<void> {
    if (a === b) return;
    const [left, right] = await Promise.all([this.entries(a), this.entries(b)]);
    for (const [name, x] of left) {
      const path = prefix + name;
      const y = right.get(name);
      if (y && x.oid === y.oid && x.mode === y.mode) continue;
      if (y && x.type === 'tree' && y.type === 'tree') {
        await this.diffTrees(x.oid, y.oid, `${path}/`, out);
      } else if (y && x.type !== 'tree' && y.type !== 'tree') {
        out.push({ path, kind: 'modified', oid: y.oid, mode: y.mode, type: y.type });
      } else {
        await this.side(x, path, 'deleted', out);
        if (y) await this.side(y, path, 'added', out);
      }
    }
    for (const [name, y] of right) if (!left.has(name)) await this.side(y, prefix + name, 'added', out);
  }

  /** A whole entry present on one side only: a file, or every file below a directory. */
  private async side(entry: TreeEntry, path: string, kind: 'added' | 'deleted', out: TreeChange[]): Promise<void> {
    if (entry.type !== 'tree') {
      out.push(kind === 'added' ? { path, kind, oid: entry.oid, mode: entry.mode, type: entry.type } : { path, kind });
      return;
    }
    for (const child of (await this.entries(entry.oid)).values()) await this.side(child, `${path}/${child.path}`, kind, out);
  }
}

/** Tree objects read one by one through isomorphic-git (where the git command line does not run). */
export function readTreeObjectsWith(gitdir: string, cache: object): ReadTreeObjects {
  return async (oids) => {
    const contents = new Map<string, Buffer>();
    for (const oid of oids) {
      const object = await git.readObject({ fs, gitdir, oid, format: 'content', cache });
      if (object.type !== 'tree' || !(object.object instanceof Uint8Array)) throw new Error(`object ${oid} is a ${object.type}, not a tree`);
      contents.set(oid, Buffer.from(object.object.buffer, object.object.byteOffset, object.object.byteLength));
    }
    return contents;
  };
}
