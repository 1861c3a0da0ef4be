import * as fs from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';

/**
 * Makes `dir` hold exactly the files of `commit`: isomorphic-git's forced checkout discards local edits
 * and removes files it tracked, then anything it did not track (stray files, emptied directories) is removed.
 */
export async function checkoutExact(dir: string, gitdir: string, commit: string, cache: object): Promise<void> {
  await mkdir(dir, { recursive: true });
  try {
    await git.checkout({ fs, dir, gitdir, ref: commit, force: true, cache });
  } catch {
    // isomorphic-git cannot switch a path between file and directory in place; start from an empty tree and index.
    await rm(dir, { recursive: true, force: true });
    await rm(join(gitdir, 'index'), { force: true });
    await mkdir(dir, { recursive: true });
    await git.checkout({ fs, dir, gitdir, ref: commit, force: true, cache });
  }
  const files = new Set(await git.listFiles({ fs, gitdir, ref: commit, cache }));
  const dirs = new Set<string>();
  for (const file of files) {
    for (let i = file.indexOf('/'); i >= 0; i = file.indexOf('/', i + 1)) dirs.add(file.slice(0, i));
  }
  await prune(dir, '', files, dirs);
}

async function prune(root: string, rel: string, files: Set<string>, dirs: Set<string>): Promise<void> {
  for (const entry of await readdir(join(root, rel), { withFileTypes: true })) {
    const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      if (dirs.has(path)) await prune(root, path, files, dirs);
      else await rm(join(root, path), { recursive: true, force: true });
    } else if (!files.has(path)) {
      await rm(join(root, path), { force: true });
    }
  }
}
