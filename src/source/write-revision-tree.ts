import * as fs from 'node:fs';
import { mkdir, readdir, writeFile, symlink } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import git, { type WalkerEntry } from 'isomorphic-git';
import { resolveRevision } from './resolve-revision.ts';
import { TargetNotEmptyError } from './target-not-empty-error.ts';
import { verifyCommitTree } from './verify-tree.ts';

async function isEmptyOrAbsent(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

/**
 * Writes the files of `rev` into `targetDir` (absent or empty), without touching any index or HEAD:
 * for `forseti plan --base --head`, which needs two trees side by side. Returns the resolved commit. A tree forseti
 * refuses (RefusedTreeError) writes nothing.
 */
export async function writeRevisionTree(gitdir: string, rev: string, targetDir: string, cache: object = {}): Promise<string> {
  if (!(await isEmptyOrAbsent(targetDir))) throw new TargetNotEmptyError(targetDir);
  const commit = await resolveRevision(gitdir, rev, cache);
  await verifyCommitTree(gitdir, commit, cache);
  await mkdir(targetDir, { recursive: true });
  await git.walk({
    fs,
    gitdir,
    cache,
    trees: [git.TREE({ ref: commit })],
    map: async (path: string, [entry]: Array<WalkerEntry | null>) => {
      if (!entry || path === '.') return undefined;
      const type = await entry.type();
      if (type === 'tree') {
        await mkdir(join(targetDir, path), { recursive: true });
        return true;
      }
      if (type !== 'blob') return undefined; // submodule (commit) entries have no content here
      const mode = await entry.mode();
      const content = (await entry.content()) ?? new Uint8Array();
      const target = join(targetDir, path);
      await mkdir(dirname(target), { recursive: true });
      if (mode === 0o120000) await symlink(Buffer.from(content).toString('utf8'), target);
      else await writeFile(target, content, { mode: mode === 0o100755 ? 0o755 : 0o644 });
      return true;
    },
    reduce: async () => true,
  });
  return commit;
}

/** The git directory of a local repository: a working repo (`.git` inside), a `.git` dir itself, or a bare repo. */
export async function findGitdir(repoDir: string): Promise<string> {
  const dotgit = join(repoDir, '.git');
  try {
    const stat = await fs.promises.stat(dotgit);
    if (stat.isDirectory()) return dotgit;
    // `.git` file of a linked worktree or submodule: "gitdir: <path>"
    const text = await fs.promises.readFile(dotgit, 'utf8');
    const m = /^gitdir:\s*(.+)$/m.exec(text);
    if (m?.[1]) return m[1].startsWith('/') ? m[1].trim() : join(repoDir, m[1].trim());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return repoDir;
}

/** `checkoutRevision` on a plain local repository directory (working repo, `.git` dir or bare). */
export async function checkoutRevision(repoDir: string, rev: string, targetDir: string): Promise<string> {
  return writeRevisionTree(await findGitdir(repoDir), rev, targetDir);
}
