import * as fs from 'node:fs';
import git, { type HttpClient } from 'isomorphic-git';
import { authCallbacks, type GitCredentials } from './auth.ts';
import type { GitCli } from './git-cli.ts';

export interface FetchBranchOptions {
  gitdir: string;
  http: HttpClient;
  url: string;
  branch: string;
  auth?: GitCredentials;
  cache: object;
  /** Fetches the pack with the git command line when it runs here and the URL is http(s) (src/source/git-cli.ts). */
  cli?: GitCli;
}

async function hasCommit(gitdir: string, oid: string, cache: object): Promise<boolean> {
  try {
    await git.readCommit({ fs, gitdir, oid, cache });
    return true;
  } catch {
    return false;
  }
}

/**
 * Brings the remote head of `branch` into `gitdir` (refs/remotes/origin/<branch>) and returns it; null when
 * the remote has no such branch. Existence is decided from the ref advertisement, not from fetch errors:
 * isomorphic-git's fetch also throws NotFoundError when the remote HEAD is dangling, which must not be
 * mistaken for "branch missing" (that would make the status writer start an orphan over existing history).
 */
export async function fetchBranch(opts: FetchBranchOptions): Promise<string | null> {
  const { gitdir, http, url, branch, cache } = opts;
  const fullRef = `refs/heads/${branch}`;
  const refs = await git.listServerRefs({ http, url, prefix: fullRef, ...authCallbacks(opts.auth) });
  const oid = refs.find((r) => r.ref === fullRef)?.oid ?? null;
  if (oid === null) return null;
  if (!(await hasCommit(gitdir, oid, cache))) {
    if (opts.cli && /^https?:\/\//i.test(url) && (await opts.cli.usable())) await opts.cli.fetch(gitdir, url, branch, opts.auth);
    else await fetchWithIsomorphicGit(opts);
    if (!(await hasCommit(gitdir, oid, cache))) throw new Error(`fetched ${fullRef} but commit ${oid} is missing`);
  }
  await git.writeRef({ fs, gitdir, ref: `refs/remotes/origin/${branch}`, value: oid, force: true });
  return oid;
}

async function fetchWithIsomorphicGit(opts: FetchBranchOptions): Promise<void> {
  const { gitdir, http, url, branch, cache } = opts;
  try {
    await git.fetch({ fs, http, gitdir, cache, url, remote: 'origin', ref: branch, remoteRef: branch, singleBranch: true, tags: false, ...authCallbacks(opts.auth) });
  } catch (err) {
    if (err instanceof git.Errors.NotFoundError && (err.data as { what?: string }).what === 'HEAD') {
      // isomorphic-git 1.44 resolves the remote HEAD after negotiating and before saving the pack.
      throw new Error(`the remote HEAD points to a branch that does not exist; isomorphic-git cannot fetch from such a repository (point HEAD at refs/heads/${branch} or another existing branch)`);
    }
    throw err;
  }
}
