import * as fs from 'node:fs';
import git, { type TreeEntry } from 'isomorphic-git';
import { RefusedTreeError } from './refused-tree-error.ts';
import { TreeReader } from './tree-diff.ts';
import { MalformedTreeError, RefusedTreeNameError } from './tree-object.ts';

/** Longest name (bytes) and path below the working tree forseti checks out; past these, writing it fails. */
const MAX_NAME_BYTES = 255;
const MAX_PATH_BYTES = 2048;
/** Longest symbolic link target (bytes): PATH_MAX less the terminating NUL. */
const MAX_LINK_BYTES = 4095;
/** Control characters (C0, DEL, C1) and the Unicode line and paragraph separators. */
const CONTROL = /[\p{Cc}\p{Zl}\p{Zp}]/u;
/** Verified trees remembered, by object id (a tree's content never changes); cleared when it grows past this. */
const MAX_REMEMBERED = 100_000;

/** How verifyCommitTree reads trees: the source's TreeReader, which keeps them parsed for the diff that follows. */
export type TreeLister = Pick<TreeReader, 'listMany'>;
/** Trees read at once (one git run where the command line runs): a depth of the tree with more is read in parts. */
const TREES_PER_READ = 64;

interface PendingTree {
  oid: string;
  /** The tree's path with a trailing slash; '' for the root. */
  prefix: string;
}

/**
 * Checks every entry of `commit`'s tree before anything of it is written to disk: names git refuses (`.`, `..`,
 * `.git` in its NTFS and HFS+ spellings, slashes: src/source/tree-object.ts), malformed tree objects, control
 * characters, names that are not UTF-8, duplicate names, over-long names and paths, and link targets no file system
 * takes. Throws RefusedTreeError naming the first bad entry. `verified` (kept by the caller) skips trees checked
 * before: a commit costs the trees it changed. The trees of one depth are read together, up to TREES_PER_READ at a time.
 */
export async function verifyCommitTree(gitdir: string, commit: string, cache: object, verified: Set<string> = new Set(), trees: TreeLister = new TreeReader(gitdir, cache)): Promise<void> {
  const { commit: parsed } = await git.readCommit({ fs, gitdir, oid: commit, cache });
  const seen: string[] = [];
  let level: PendingTree[] = [{ oid: parsed.tree, prefix: '' }];
  while (level.length > 0) {
    const unchecked = level.filter(({ oid }) => !verified.has(oid));
    const next: PendingTree[] = [];
    for (let start = 0; start < unchecked.length; start += TREES_PER_READ) {
      const part = unchecked.slice(start, start + TREES_PER_READ);
      const prefixes = new Map(part.map((t) => [t.oid, t.prefix]));
      const lists = await refusingBadTrees(commit, (oid) => prefixes.get(oid) ?? '', () => trees.listMany(part.map(({ oid }) => oid)));
      for (const { oid, prefix } of part) {
        await checkEntries(gitdir, commit, cache, prefix, lists.get(oid) ?? [], next);
        seen.push(oid);
      }
    }
    level = next;
  }
  if (verified.size + seen.length > MAX_REMEMBERED) verified.clear();
  for (const oid of seen) verified.add(oid);
}

/** `read()`, with a tree git refuses or cannot parse turned into the commit's RefusedTreeError; `prefixOf` a tree's path. */
async function refusingBadTrees<T>(commit: string, prefixOf: (oid: string) => string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof RefusedTreeNameError) {
      throw new RefusedTreeError(commit, `${prefixOf(err.treeOid)}${err.entryName}`, 'git refuses an entry of this name (., .., .git or a slash): it would be written outside the working tree or into git\'s own directory');
    }
    if (err instanceof MalformedTreeError) {
      const prefix = prefixOf(err.oid);
      throw new RefusedTreeError(commit, prefix === '' ? '.' : prefix.slice(0, -1), `a malformed tree object: ${err.message}`);
    }
    throw err;
  }
}

/** One tree's entries checked; its subtrees are added to `next`. */
async function checkEntries(gitdir: string, commit: string, cache: object, prefix: string, entries: readonly TreeEntry[], next: PendingTree[]): Promise<void> {
  const names = new Set<string>();
  const prefixBytes = Buffer.byteLength(prefix);
  for (const entry of entries) {
    const name = entry.path;
    const ascii = plainAscii(name);
    if (!ascii && CONTROL.test(name)) refuseEntry(commit, prefix, name, 'a control character in a file name; forseti refuses a lab repository holding one (rename it)');
    // parseTree decodes names as UTF-8, a byte sequence that is not UTF-8 as U+FFFD: the name on disk would be another.
    if (!ascii && name.includes('\uFFFD')) refuseEntry(commit, prefix, name, 'a file name that is not UTF-8 (or holds U+FFFD); forseti refuses a lab repository holding one (rename it)');
    if (names.has(name)) refuseEntry(commit, prefix, name, 'the tree holds two entries of this name (git fsck: duplicateEntries)');
    names.add(name);
    const nameBytes = ascii ? name.length : Buffer.byteLength(name);
    if (nameBytes > MAX_NAME_BYTES) refuseEntry(commit, prefix, name, `a name longer than ${MAX_NAME_BYTES} bytes`);
    if (prefixBytes + nameBytes > MAX_PATH_BYTES) refuseEntry(commit, prefix, name, `a path longer than ${MAX_PATH_BYTES} bytes`);
    if (entry.type === 'tree') next.push({ oid: entry.oid, prefix: `${prefix}${name}/` });
    else if (entry.mode === '120000') {
      const { blob } = await git.readBlob({ fs, gitdir, oid: entry.oid, cache });
      if (blob.length > MAX_LINK_BYTES) refuseEntry(commit, prefix, name, `a symbolic link whose target is longer than ${MAX_LINK_BYTES} bytes`);
      if (blob.includes(0)) refuseEntry(commit, prefix, name, 'a symbolic link whose target holds a NUL byte');
    }
  }
}

/** An entry refused: RefusedTreeError at its path (a plain function: a closure per entry costs at 10,000 entries). */
function refuseEntry(commit: string, prefix: string, name: string, reason: string): never {
  throw new RefusedTreeError(commit, `${prefix}${name}`, reason);
}

/** Only printable ASCII (no control character, nothing CONTROL could match). */
function plainAscii(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}
