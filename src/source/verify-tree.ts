import * as fs from 'node:fs';
import git, { type TreeEntry } from 'isomorphic-git';
import { RefusedTreeError } from './refused-tree-error.ts';

/** Longest name (bytes) and path below the working tree forseti checks out; past these, writing it fails. */
const MAX_NAME_BYTES = 255;
const MAX_PATH_BYTES = 2048;
/** Longest symbolic link target (bytes): PATH_MAX less the terminating NUL. */
const MAX_LINK_BYTES = 4095;
/** Control characters (C0, DEL, C1) and the Unicode line and paragraph separators. */
const CONTROL = /[\p{Cc}\p{Zl}\p{Zp}]/u;
/** Verified trees remembered, by object id (a tree's content never changes); cleared when it grows past this. */
const MAX_REMEMBERED = 100_000;

/**
 * Checks every entry of `commit`'s tree before anything of it is written to disk: names git refuses (isomorphic-git
 * throws UnsafeFilepathError for `.`, `..`, `.git` in its NTFS and HFS+ spellings, and slashes), control characters,
 * duplicate names, over-long names and paths, and link targets no file system takes. Throws RefusedTreeError naming
 * the first bad entry. `verified` (kept by the caller) skips trees checked before: a commit costs the trees it changed.
 * `readTree`: how tree objects are read (the source's TreeReader, which keeps them parsed for the diff that follows).
 */
export async function verifyCommitTree(gitdir: string, commit: string, cache: object, verified: Set<string> = new Set(), readTree?: (oid: string) => Promise<Iterable<TreeEntry>>): Promise<void> {
  const { commit: parsed } = await git.readCommit({ fs, gitdir, oid: commit, cache });
  const seen: string[] = [];
  const pending: Array<{ oid: string; prefix: string }> = [{ oid: parsed.tree, prefix: '' }];
  while (pending.length > 0) {
    const { oid, prefix } = pending.pop() ?? { oid: '', prefix: '' };
    if (verified.has(oid)) continue;
    let entries;
    try {
      entries = readTree ? await readTree(oid) : (await git.readTree({ fs, gitdir, oid, cache })).tree;
    } catch (err) {
      if (err instanceof git.Errors.UnsafeFilepathError) {
        throw new RefusedTreeError(commit, `${prefix}${err.data.filepath}`, 'git refuses an entry of this name (., .., .git or a slash): it would be written outside the working tree or into git\'s own directory');
      }
      throw err;
    }
    const names = new Set<string>();
    for (const entry of entries) {
      const path = `${prefix}${entry.path}`;
      const refuse = (reason: string): never => {
        throw new RefusedTreeError(commit, path, reason);
      };
      if (CONTROL.test(entry.path)) refuse('a control character in a file name; forseti refuses a lab repository holding one (rename it)');
      if (names.has(entry.path)) refuse('the tree holds two entries of this name (git fsck: duplicateEntries)');
      names.add(entry.path);
      if (Buffer.byteLength(entry.path) > MAX_NAME_BYTES) refuse(`a name longer than ${MAX_NAME_BYTES} bytes`);
      if (Buffer.byteLength(path) > MAX_PATH_BYTES) refuse(`a path longer than ${MAX_PATH_BYTES} bytes`);
      if (entry.type === 'tree') pending.push({ oid: entry.oid, prefix: `${path}/` });
      else if (entry.mode === '120000') {
        const { blob } = await git.readBlob({ fs, gitdir, oid: entry.oid, cache });
        if (blob.length > MAX_LINK_BYTES) refuse(`a symbolic link whose target is longer than ${MAX_LINK_BYTES} bytes`);
        if (blob.includes(0)) refuse('a symbolic link whose target holds a NUL byte');
      }
    }
    seen.push(oid);
  }
  if (verified.size + seen.length > MAX_REMEMBERED) verified.clear();
  for (const oid of seen) verified.add(oid);
}
