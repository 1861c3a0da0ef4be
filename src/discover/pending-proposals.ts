// The hosts other `forseti/discovered/*` branches propose and nobody merged yet. Each proposal is made against the
// base branch, so without these sixteen blades booting at once would all be given the same lowest free address (and
// two NICs of one machine two branches): the names, addresses, MACs, serials and BMC addresses of pending proposals
// are taken as used. A branch's host files are those that differ from the base branch's; each is read bounded and
// loosely (only the fields that matter here), and one that cannot be read is skipped.
import * as fs from 'node:fs';
import git, { type HttpClient } from 'isomorphic-git';
import { parse } from 'yaml';
import { authCallbacks, type GitCredentials } from '../source/auth.ts';
import type { LabIndex } from './lab-index.ts';
import { markUsed } from './lab-index.ts';

export interface PendingHost {
  branch: string;
  name: string;
  ip?: string;
  macs: string[];
  serial?: string;
  bmcAddresses: string[];
}

export interface PendingSource {
  gitdir: string;
  http: HttpClient;
  url: string;
  auth?: GitCredentials;
  cache: object;
}

/** Branches read at most, and the largest host file read. */
export const MAX_PENDING_BRANCHES = 200;
const MAX_HOST_FILE_BYTES = 64 * 1024;
const MAX_HOST_FILES_PER_BRANCH = 16;

/** The hosts the given branches add or change relative to `base`, fetching what is not here yet. */
export async function readPendingProposals(source: PendingSource, branches: Array<{ branch: string; oid: string }>, base: string): Promise<PendingHost[]> {
  const baseHosts = new Map((await hostEntries(source, base)).map((e) => [e.path, e.oid]));
  const pending: PendingHost[] = [];
  for (const { branch, oid } of [...branches].sort((a, b) => a.branch.localeCompare(b.branch)).slice(0, MAX_PENDING_BRANCHES)) {
    if (!(await hasCommit(source, oid))) {
      await git.fetch({ fs, http: source.http, gitdir: source.gitdir, cache: source.cache, url: source.url, remote: 'origin', ref: branch, remoteRef: branch, singleBranch: true, tags: false, ...authCallbacks(source.auth) });
      if (!(await hasCommit(source, oid))) continue;
    }
    const added = (await hostEntries(source, oid)).filter((e) => baseHosts.get(e.path) !== e.oid).slice(0, MAX_HOST_FILES_PER_BRANCH);
    for (const entry of added) {
      const host = await readHost(source, entry.oid, branch);
      if (host) pending.push(host);
    }
  }
  return pending;
}

/** Marks what pending proposals take: their names, addresses and BMC addresses; their MACs and serials as theirs. */
export function reservePending(index: LabIndex, pending: readonly PendingHost[]): void {
  for (const host of pending) {
    const who = `${host.name} (proposed on ${host.branch})`;
    index.names.add(host.name);
    if (host.ip) markUsed(index, host.ip);
    for (const mac of host.macs) if (!index.macs.has(mac)) index.macs.set(mac, who);
    if (host.serial && !index.serials.has(host.serial.toUpperCase())) index.serials.set(host.serial.toUpperCase(), who);
    for (const address of host.bmcAddresses) {
      markUsed(index, address);
      if (!index.bmcAddresses.has(address.toLowerCase())) index.bmcAddresses.set(address.toLowerCase(), who);
    }
  }
}

async function hasCommit(source: PendingSource, oid: string): Promise<boolean> {
  return git.readCommit({ fs, gitdir: source.gitdir, oid, cache: source.cache }).then(
    () => true,
    () => false,
  );
}

/** The blobs in hosts/ of a commit, by path. */
async function hostEntries(source: PendingSource, commit: string): Promise<Array<{ path: string; oid: string }>> {
  try {
    const { tree } = await git.readTree({ fs, gitdir: source.gitdir, oid: commit, filepath: 'hosts', cache: source.cache });
    return tree.filter((e) => e.type === 'blob' && /\.ya?ml$/.test(e.path)).map((e) => ({ path: e.path, oid: e.oid }));
  } catch {
    return []; // no hosts/ directory
  }
}

async function readHost(source: PendingSource, oid: string, branch: string): Promise<PendingHost | undefined> {
  try {
    const { blob } = await git.readBlob({ fs, gitdir: source.gitdir, oid, cache: source.cache });
    if (blob.byteLength > MAX_HOST_FILE_BYTES) return undefined;
    const doc = parse(Buffer.from(blob).toString('utf8'), { maxAliasCount: 10 }) as Record<string, unknown> | null;
    if (typeof doc !== 'object' || doc === null || typeof doc['name'] !== 'string') return undefined;
    const text = (v: unknown): string | undefined => (typeof v === 'string' && v.length <= 256 ? v : undefined);
    const labels = (typeof doc['labels'] === 'object' && doc['labels'] !== null ? doc['labels'] : {}) as Record<string, unknown>;
    const bmc = (typeof doc['bmc'] === 'object' && doc['bmc'] !== null ? doc['bmc'] : {}) as Record<string, unknown>;
    const ip = text(doc['ip']);
    const serial = text(labels['serial']);
    return {
      branch,
      name: doc['name'],
      ...(ip ? { ip } : {}),
      macs: (Array.isArray(doc['macs']) ? doc['macs'] : []).map(text).filter((m): m is string => m !== undefined).map((m) => m.toLowerCase()),
      ...(serial ? { serial } : {}),
      // A BMC that is the machine's own (not an enclosure manager's, not one system of several), as addHost takes it.
      bmcAddresses: [bmc['type'] !== 'hp-oa' && bmc['system'] === undefined ? text(bmc['address']) : undefined, text(labels['management-address'])].filter((a): a is string => a !== undefined),
    };
  } catch {
    return undefined;
  }
}
