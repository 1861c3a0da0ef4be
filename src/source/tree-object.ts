import type { TreeEntry } from 'isomorphic-git';

/** A tree entry git itself refuses to check out (`.`, `..`, `.git` in any spelling, a slash); `name` as the tree has it. */
export class RefusedTreeNameError extends Error {
  override readonly name = 'RefusedTreeNameError';
  constructor(readonly treeOid: string, readonly entryName: string) {
    super(`tree entry ${JSON.stringify(entryName)}: git refuses an entry of this name`);
  }
}

/** A tree object that is not one git writes: no space or NUL where an entry needs one, a short id, an unknown mode. */
export class MalformedTreeError extends Error {
  override readonly name = 'MalformedTreeError';
  constructor(readonly oid: string, reason: string) {
    super(`tree ${oid}: ${reason}`);
  }
}

const TYPE_OF_MODE: Readonly<Record<string, TreeEntry['type']>> = { '40000': 'tree', '100644': 'blob', '100755': 'blob', '120000': 'blob', '160000': 'commit' };
/** Characters HFS+ ignores in a name (git's is_hfs_dotgit): `.git` spelled with one of them is still `.git` there. */
const HFS_IGNORED = /[\u200C-\u200F\u202A-\u202E\u206A-\u206F\uFEFF]/g;

/**
 * Parses a tree object's content (`mode SP name NUL 20-byte id`, repeated) into its entries in the object's order,
 * duplicates included. Refuses (RefusedTreeNameError) the names git's verify_path() refuses, as isomorphic-git's own
 * parser does: a slash or backslash, `.` and `..`, `.git` case-insensitively with NTFS's trailing dots and spaces and
 * alternate data streams (`.git::$INDEX_ALLOCATION`), its 8.3 short names `git~1`..`git~9`, and HFS+'s ignorable
 * characters. Ours because isomorphic-git's readTree spends ~30-70 ms on a 10,000-entry tree; this takes a few.
 */
export function parseTree(oid: string, content: Buffer): TreeEntry[] {
  const entries: TreeEntry[] = [];
  let cursor = 0;
  while (cursor < content.length) {
    const space = content.indexOf(0x20, cursor);
    const nul = space < 0 ? -1 : content.indexOf(0, space + 1);
    if (space < 0 || nul < 0) throw new MalformedTreeError(oid, `no entry can be read at byte ${cursor}`);
    if (nul + 21 > content.length) throw new MalformedTreeError(oid, `the entry at byte ${cursor} has no full object id`);
    const rawMode = space - cursor === 6 && content[cursor] === 0x31 && content[cursor + 1] === 0x30 ? modeOf(content, cursor) : content.toString('latin1', cursor, space);
    const type = TYPE_OF_MODE[rawMode];
    if (type === undefined) throw new MalformedTreeError(oid, `an entry has the mode ${JSON.stringify(rawMode)}, not one git writes`);
    const path = content.toString('utf8', space + 1, nul);
    if (refusedByGit(path)) throw new RefusedTreeNameError(oid, path);
    entries.push({ mode: rawMode === '40000' ? '040000' : rawMode, path, oid: content.toString('hex', nul + 1, nul + 21), type });
    cursor = nul + 21;
  }
  return entries;
}

/** The common modes `100644` and `100755` without making a string of each entry's mode. */
function modeOf(content: Buffer, at: number): string {
  if (content[at + 2] === 0x30 && content[at + 3] === 0x36 && content[at + 4] === 0x34 && content[at + 5] === 0x34) return '100644';
  if (content[at + 2] === 0x30 && content[at + 3] === 0x37 && content[at + 4] === 0x35 && content[at + 5] === 0x35) return '100755';
  return content.toString('latin1', at, at + 6);
}

function refusedByGit(name: string): boolean {
  if (name === '' || name.includes('/') || name.includes('\\')) return true;
  // Every refused spelling starts with a dot, a g, or a character HFS+ ignores (none of them ASCII): most names do not.
  const first = name.charCodeAt(0);
  if (first < 0x80 && first !== 0x2e && first !== 0x67 && first !== 0x47) return false;
  const hfs = name.replace(HFS_IGNORED, '');
  if (hfs === '.' || hfs === '..') return true;
  const ntfs = (hfs.split(':')[0] ?? '').toLowerCase().replace(/[. ]+$/, '');
  return ntfs === '.git' || /^\.?git~[1-9]$/.test(ntfs);
}
