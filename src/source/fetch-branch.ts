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
  if (opts.cli && /^https?:\/\//i.test(url) && (await opts.cli.usable())) return fetchWithCli(opts, opts.cli);
  const refs = await git.listServerRefs({ http, url, prefix: fullRef, ...authCallbacks(opts.auth) });
  const oid = refs.find((r) => r.ref === fullRef)?.oid ?? null;
  if (oid === null) return null;
  if (!(await hasCommit(gitdir, oid, cache))) {
    await fetchWithIsomorphicGit(opts);
    if (!(await hasCommit(gitdir, oid, cache))) throw new Error(`fetched ${fullRef} but commit ${oid} is missing`);
  }
  await git.writeRef({ fs, gitdir, ref: `refs/remotes/origin/${branch}`, value: oid, force: true });
  return oid;
}

/**
 * The git command line fetches at once (it asks for the refs itself: asking first costs two more round trips, ~20 ms
 * of a push's way to its first BMC action); only when it fails does the ref advertisement tell a missing branch
 * (null) from a server that does not answer or refuses the credentials (its error) and any other failure (git's).
 */
async function fetchWithCli(opts: FetchBranchOptions, cli: GitCli): Promise<string | null> {
  const { gitdir, http, url, branch, cache } = opts;
  const fullRef = `refs/heads/${branch}`;
  try {
    await cli.fetch(gitdir, url, branch, opts.auth);
  } catch (err) {
    // Its error says more than git's (an HTTP 401 where git says it could not prompt for a user name).
    const refs = await git.listServerRefs({ http, url, prefix: fullRef, ...authCallbacks(opts.auth) });
    if (!refs.some((r) => r.ref === fullRef)) return null;
    throw err;
  }
  const oid = await git.resolveRef({ fs, gitdir, ref: `refs/remotes/origin/${branch}` });
  if (!(await hasCommit(gitdir, oid, cache))) throw new Error(`fetched ${fullRef} but commit ${oid} is missing`);
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
