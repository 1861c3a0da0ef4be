// The one reader of a status branch in a local repository: which ref is the branch, and the status files of one of
// its commits. The agent (its own clone, at restart), `forseti status --repo` and `forseti plan` all read through it,
// so they agree on what a status file is and where the branch is.
import * as fs from 'node:fs';
import git from 'isomorphic-git';
import { checkStatusPath } from './status-path.ts';
import { blobOid } from './status-snapshot.ts';

/** Status files by path: `site.yaml` and `hosts/<name>.yaml`. */
export type StatusFiles = Map<string, string>;

/** `site.yaml` or `hosts/<name>.yaml` with a name the writer can write back (or remove); nothing else on the branch. */
export function isStatusFile(path: string): boolean {
  if (path !== 'site.yaml' && !/^hosts\/[^/]+\.yaml$/.test(path)) return false;
  try {
    checkStatusPath(path);
    return true;
  } catch {
    return false;
  }
}

/** The host a `hosts/<name>.yaml` path is about; undefined for any other path. */
export function hostOfStatusFile(path: string): string | undefined {
  return /^hosts\/([^/]+)\.yaml$/.exec(path)?.[1];
}

export interface StatusBranchHead {
  /** `B` for the local branch, `origin/B` for the remote-tracking one. */
  ref: string;
  commit: string;
}

/** The branch in a local repository: `refs/heads/B`, else `refs/remotes/origin/B`; null when neither exists. */
export async function resolveStatusBranch(gitdir: string, branch: string): Promise<StatusBranchHead | null> {
  for (const [ref, name] of [[`refs/heads/${branch}`, branch], [`refs/remotes/origin/${branch}`, `origin/${branch}`]] as const) {
    const commit = await git.resolveRef({ fs, gitdir, ref }).catch(() => null);
    if (commit) return { ref: name, commit };
  }
  return null;
}

/** Blob reads in flight at once: isomorphic-git spends much of a read waiting on the file system. */
const READ_CONCURRENCY = 16;

/**
 * Every status file of `commit` (none when it has neither site.yaml nor hosts/). `known`: files by path from an
 * earlier read (src/status/status-snapshot.ts); one is taken instead of the blob when its blob id is the tree
 * entry's, so the result is the same with or without it. `missed` is told how many blobs had to be read.
 */
export async function readStatusFiles(gitdir: string, commit: string, cache: object = {}, known?: ReadonlyMap<string, string>, missed?: (count: number) => void): Promise<StatusFiles> {
  const wanted: Array<{ path: string; oid: string }> = [];
  for (const entry of (await git.readTree({ fs, gitdir, oid: commit, cache })).tree) {
    if (entry.path === 'site.yaml' && entry.type === 'blob') wanted.push({ path: 'site.yaml', oid: entry.oid });
    if (entry.path !== 'hosts' || entry.type !== 'tree') continue;
    for (const host of (await git.readTree({ fs, gitdir, oid: entry.oid, cache })).tree) {
      const path = `hosts/${host.path}`;
      if (host.type === 'blob' && isStatusFile(path)) wanted.push({ path, oid: host.oid });
    }
  }
  const files: StatusFiles = new Map();
  const unknown = known ? wanted.filter(({ path, oid }) => {
    const text = known.get(path);
    if (text === undefined || blobOid(text) !== oid) return true;
    files.set(path, text);
    return false;
  }) : wanted;
  missed?.(unknown.length);
  let next = 0;
  const reader = async (): Promise<void> => {
    for (let item = unknown[next++]; item; item = unknown[next++]) {
      const { blob } = await git.readBlob({ fs, gitdir, oid: item.oid, cache });
      files.set(item.path, Buffer.from(blob).toString('utf8'));
    }
  };
  await Promise.all(Array.from({ length: READ_CONCURRENCY }, reader));
  // In path order whatever order the reads finished in: site.yaml, then the hosts by name.
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
