import * as fs from 'node:fs';
import git from 'isomorphic-git';
import { RevisionNotFoundError } from './revision-not-found-error.ts';

/**
 * Resolves a revision to a commit oid: a full or abbreviated sha, a ref name (`main`, `HEAD`,
 * `refs/remotes/origin/main`, `origin/main`), optionally followed by `~N` / `^` (first-parent steps).
 */
export async function resolveRevision(gitdir: string, rev: string, cache: object = {}): Promise<string> {
  const match = /^(.*?)((?:~\d*|\^1?)*)$/.exec(rev);
  const base = match?.[1] ?? rev;
  const suffix = match?.[2] ?? '';
  let oid = await resolveBase(gitdir, base, cache);
  if (oid === null) throw new RevisionNotFoundError(rev);
  oid = await peelToCommit(gitdir, oid, rev, cache);
  for (const step of suffix.match(/~\d*|\^1?/g) ?? []) {
    const count = step.startsWith('~') ? Number(step.slice(1) || '1') : 1;
    for (let i = 0; i < count; i++) {
      const { commit } = await git.readCommit({ fs, gitdir, oid, cache });
      const parent = commit.parent[0];
      if (!parent) throw new RevisionNotFoundError(rev);
      oid = parent;
    }
  }
  return oid;
}

async function resolveBase(gitdir: string, base: string, cache: object): Promise<string | null> {
  for (const ref of [base, `refs/remotes/${base}`]) {
    try {
      return await git.resolveRef({ fs, gitdir, ref });
    } catch {
      // not a ref of that spelling; try the next
    }
  }
  if (/^[0-9a-f]{4,40}$/i.test(base)) {
    try {
      return await git.expandOid({ fs, gitdir, oid: base.toLowerCase(), cache });
    } catch {
      return null;
    }
  }
  return null;
}

/** Annotated tags point at tag objects; everything here wants the commit. */
async function peelToCommit(gitdir: string, oid: string, rev: string, cache: object): Promise<string> {
  let current = oid;
  for (let i = 0; i < 10; i++) {
    let type: string;
    try {
      type = (await git.readObject({ fs, gitdir, oid: current, format: 'content', cache })).type;
    } catch {
      throw new RevisionNotFoundError(rev);
    }
    if (type === 'commit') return current;
    if (type !== 'tag') throw new RevisionNotFoundError(rev);
    current = (await git.readTag({ fs, gitdir, oid: current, cache })).tag.object;
  }
  throw new RevisionNotFoundError(rev);
}
