import * as fs from 'node:fs';
import git from 'isomorphic-git';

export interface CommitInfo {
  sha: string;
  message: string;
  /** `Name <email>` */
  author: string;
  /** Author time, ISO 8601 (UTC). */
  timestamp: string;
}

export async function readCommitInfo(gitdir: string, sha: string, cache: object = {}): Promise<CommitInfo> {
  const { oid, commit } = await git.readCommit({ fs, gitdir, oid: sha, cache });
  return {
    sha: oid,
    message: commit.message.replace(/\n+$/, ''),
    author: `${commit.author.name} <${commit.author.email}>`,
    timestamp: new Date(commit.author.timestamp * 1000).toISOString(),
  };
}
