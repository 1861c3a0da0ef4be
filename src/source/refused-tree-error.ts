/**
 * A commit whose tree forseti will not check out: an entry git itself refuses (`..`, `.git`, a slash in a name),
 * a name with control characters, two entries of one name, or a path or link the file system cannot hold. The
 * commit is rejected whole, like one that fails validation; `path` is the entry as the tree has it (unescaped).
 */
export class RefusedTreeError extends Error {
  override readonly name = 'RefusedTreeError';
  constructor(readonly commit: string, readonly path: string, readonly reason: string) {
    super(`commit ${commit.slice(0, 12)}: tree entry ${JSON.stringify(path)}: ${reason}`);
  }
}
