// I/O: the status branch as `forseti plan` sees it, read from the local repository's objects (no checkout).
import * as fs from 'node:fs';
import git from 'isomorphic-git';
import { parse } from 'yaml';
import { resolveRevision } from '../source/resolve-revision.ts';
import { RevisionNotFoundError } from '../source/revision-not-found-error.ts';
import { parseHostStatus } from '../status/host-status.ts';
import type { StatusHostFile } from './observed-state.ts';
import { inventoryOf } from './status-inventory.ts';

export interface StatusBranchFiles {
  /** The ref that resolved: `forseti-status` or `origin/forseti-status`. */
  ref: string;
  commit: string;
  /** By host name (the file name without `.yaml`). */
  files: Map<string, StatusHostFile>;
  /** Files that could not be read, said out loud. */
  notes: string[];
}

/** The local branch, else the remote-tracking one; null when neither exists. */
export async function readStatusBranch(gitdir: string, branch: string): Promise<StatusBranchFiles | null> {
  for (const ref of [branch, `origin/${branch}`]) {
    let commit: string;
    try {
      commit = await resolveRevision(gitdir, ref);
    } catch (err) {
      if (err instanceof RevisionNotFoundError) continue;
      throw err;
    }
    return { ref, commit, ...(await readHostFiles(gitdir, commit, ref)) };
  }
  return null;
}

async function readHostFiles(gitdir: string, commit: string, ref: string): Promise<{ files: Map<string, StatusHostFile>; notes: string[] }> {
  const files = new Map<string, StatusHostFile>();
  const notes: string[] = [];
  let entries: Array<{ path: string; oid: string; type: string }>;
  try {
    entries = (await git.readTree({ fs, gitdir, oid: commit, filepath: 'hosts' })).tree;
  } catch {
    return { files, notes: [`${ref} has no hosts/ directory: no host has been seen yet`] };
  }
  for (const entry of entries) {
    if (entry.type !== 'blob' || !/\.ya?ml$/.test(entry.path)) continue;
    const host = entry.path.replace(/\.ya?ml$/, '');
    try {
      const { blob } = await git.readBlob({ fs, gitdir, oid: entry.oid });
      const text = Buffer.from(blob).toString('utf8');
      const status = parseHostStatus(text);
      const inventory = inventoryOf(parse(text));
      files.set(host, inventory ? { status, inventory } : { status });
    } catch (err) {
      notes.push(`${ref}:hosts/${entry.path} cannot be read (${err instanceof Error ? err.message : String(err)}): ${host} is taken as never seen`);
    }
  }
  return { files, notes };
}
