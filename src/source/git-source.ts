import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import git, { type HttpClient, type TreeEntry } from 'isomorphic-git';
import { describeGitError } from './describe-git-error.ts';
import type { Logger } from '../log.ts';
import type { GitCredentials } from './auth.ts';
import { rm } from 'node:fs/promises';
import { applyChanges } from './apply-changes.ts';
import { changedPaths, type ChangedPath } from './changed-paths.ts';
import { checkoutExact } from './checkout-exact.ts';
import { readCommitSnapshot, type CommitSnapshot } from './commit-snapshot.ts';
import { CheckedOutRecord } from './checked-out-record.ts';
import { GitCli } from './git-cli.ts';
import type { GitObjectReader } from './git-object-reader.ts';
import { fetchBranch } from './fetch-branch.ts';
import { httpClientWithTimeout } from './http-client.ts';
import { readCommitInfo, type CommitInfo } from './read-commit-info.ts';
import { scrubSecrets } from '../redact/redactor.ts';
import { redactUrl } from '../redact/url.ts';
import { SourceCheckoutError } from './source-checkout-error.ts';
import { SourceFetchError } from './source-fetch-error.ts';
import { readTreeObjectsWith, TreeReader, type ReadTreeObjects, type TreeChange } from './tree-diff.ts';
import { TreeStamps } from './tree-stamps.ts';
import { verifyCommitTree } from './verify-tree.ts';
import { writeRevisionTree } from './write-revision-tree.ts';
import { errorMessage } from '../core/errors.ts';

/** Most bytes of tree objects read at once (up to 64 trees of one depth of a commit): a 10,000-entry tree is ~400 KB. */
const MAX_TREE_READ_BYTES = 64 * 1024 * 1024;

export interface GitSourceOptions {
  url: string;
  /** Default `main`. */
  branch?: string;
  /** State directory: holds `repo.git` (objects) and `tree` (the checked-out working tree). */
  dir: string;
  auth?: GitCredentials;
  log: Logger;
  /** Socket idle timeout for HTTP requests, default 60 s. */
  timeoutMs?: number;
  /**
   * Fetch packs and check whole commits out with the git command line where it runs (default true; it is ~30x
   * faster at 10,000 files), else with isomorphic-git. False: isomorphic-git only.
   */
  gitCli?: boolean;
  /**
   * Most bytes of files read from the object store into a CommitSnapshot (SyncResult.snapshot) for a load to parse
   * instead of the tree (the lab's maxLabBytes); 0 or absent: none is read.
   */
  snapshotMaxBytes?: number;
}

export interface SyncResult {
  commit: string;
  /** False when the commit is the one the previous sync() of this instance returned. */
  changed: boolean;
  /** Absolute path of a working tree checked out at exactly `commit` (once `written()` resolves when `snapshot` is given). */
  tree: string;
  /**
   * The commit's files in memory, read from the object store, from the first sync() of an instance and from one that
   * had to check the whole commit out (then `tree` is written later, by `written()` or the next sync()), when the
   * commit holds only files and directories within `snapshotMaxBytes`. A load reads them instead of the tree.
   */
  snapshot?: CommitSnapshot;
}

/** The lab repository as a series of snapshots: each sync() fetches the branch and checks its head out on disk. */
export class GitSource {
  readonly url: string;
  readonly branch: string;
  readonly gitdir: string;
  readonly treeDir: string;
  private readonly safeUrl: string;
  private readonly auth: GitCredentials | undefined;
  private readonly log: Logger;
  private readonly http: HttpClient;
  private readonly cache: object = {};
  /** Commit the working tree is known to hold exactly; null until the first checkout of this process. */
  private checkedOut: string | null = null;
  /** The commit the previous sync() returned. */
  private returned: string | null = null;
  /** Where the commit the tree holds is kept across restarts; read at the first sync(). */
  private readonly record: CheckedOutRecord;
  private adopted = false;
  /** The bare repository exists with this instance's remote settings. */
  private initialized = false;
  private readonly trees: TreeReader;
  /** Tree objects already checked by verifyCommitTree. */
  private readonly verifiedTrees = new Set<string>();
  private readonly stamps = new TreeStamps();
  /** The last diff computed (by sync, usually asked for again at once by the agent's loader). */
  private lastDiff: { from: string; to: string; changes: TreeChange[] } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly cli: GitCli | undefined;
  /** Reads tree objects through the git command line where it runs; ended by close(). */
  private readonly objects: GitObjectReader | undefined;
  /**
   * Read a whole commit's blobs for a snapshot, each half of them (a process per read, its output buffered; two at
   * once: ~70 ms for 10,000 blobs where one took ~110 ms); ended by close().
   */
  private readonly blobs: GitObjectReader[];
  private readonly slowTrees: ReadTreeObjects;
  private readonly snapshotMaxBytes: number;
  /**
   * The whole checkout of a sync() that returned a snapshot, left for later: the load parses the snapshot meanwhile
   * (on two cores, git writing 10,000 files beside it made it ~30% slower). Started by written() or the next sync().
   */
  private deferred: { commit: string; previous: string | null; cli: GitCli | undefined } | null = null;
  /** The last whole checkout started by written(); never rejects. */
  private writing: Promise<void> = Promise.resolve();
  /** That checkout failed: the next whole checkout is done within its sync(), which then fails with the error. */
  private writeFailed = false;

  constructor(opts: GitSourceOptions) {
    this.url = opts.url;
    this.branch = opts.branch ?? 'main';
    const dir = resolve(opts.dir);
    this.gitdir = join(dir, 'repo.git');
    this.treeDir = join(dir, 'tree');
    this.safeUrl = redactUrl(opts.url);
    this.auth = opts.auth;
    this.log = opts.log.child({ component: 'git-source', url: this.safeUrl, branch: this.branch });
    this.http = httpClientWithTimeout(opts.timeoutMs ?? 60_000);
    this.record = new CheckedOutRecord(join(dir, 'checked-out.json'));
    this.cli = opts.gitCli === false ? undefined : new GitCli({ idleTimeoutMs: opts.timeoutMs ?? 60_000 });
    this.objects = this.cli?.objectReader(this.gitdir);
    const cli = this.cli;
    this.blobs = cli ? [0, 1].map(() => cli.objectReader(this.gitdir, { processPerRead: true })) : [];
    this.slowTrees = readTreeObjectsWith(this.gitdir, this.cache);
    this.trees = new TreeReader(this.gitdir, this.cache, (oids) => this.readTrees(oids));
    this.snapshotMaxBytes = opts.snapshotMaxBytes ?? 0;
  }

  /** Tree objects through the git command line where it runs (and the reader is not closed), else isomorphic-git. */
  private async readTrees(oids: readonly string[]): Promise<Map<string, Buffer>> {
    if (this.objects?.open && (await this.cli?.usable())) return this.objects.read(oids, 'tree', MAX_TREE_READ_BYTES);
    return this.slowTrees(oids);
  }

  /**
   * Fetches the branch and checks out its head. Calls are serialized; the tree changes only inside sync(). A head
   * whose tree forseti refuses (RefusedTreeError, carrying the commit) leaves the working tree as it was.
   */
  sync(): Promise<SyncResult> {
    const run = this.queue.then(() => this.syncNow());
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Writes the working tree a sync() that returned a snapshot left for later, unless close() was called; resolves
   * once it is written (or that failed, logged: the next sync checks the commit out again).
   */
  written(): Promise<void> {
    const deferred = this.deferred;
    if (deferred) {
      this.deferred = null;
      this.writing = this.checkoutWhole(deferred.commit, deferred.cli).then(
        () => this.checkedOutNow(deferred.commit, deferred.previous, null),
        (err: unknown) => {
          this.writeFailed = true;
          this.log.error({ err, commit: deferred.commit }, 'checking the lab revision out failed; the next sync checks it out again');
        },
      );
    }
    return this.writing;
  }

  private async syncNow(): Promise<SyncResult> {
    await this.written();
    if (this.objects?.open && (await this.cli?.usable())) this.objects.warm(); // started beside the fetch, not after it
    const commit = await this.fetchHead();
    if (!this.adopted) await this.adoptTree();
    const changed = commit !== this.returned;
    if (commit !== this.checkedOut) {
      await verifyCommitTree(this.gitdir, commit, this.cache, this.verifiedTrees, this.trees);
      const previous = this.checkedOut;
      this.checkedOut = null; // a checkout that dies halfway leaves an unknown tree: redo it next time
      await this.record.clear();
      const files = previous ? await this.checkoutChanges(previous, commit) : null;
      if (files === null) {
        const cli = this.cli && (await this.cli.usable()) ? this.cli : undefined;
        const snapshot = this.writeFailed ? null : await this.snapshotOf(commit);
        if (snapshot) {
          this.deferred = { commit, previous, cli };
          this.returned = commit;
          return { commit, changed, tree: this.treeDir, snapshot };
        }
        await this.checkoutWhole(commit, cli);
        this.writeFailed = false;
      }
      await this.checkedOutNow(commit, previous, files);
    }
    // The first sync of an instance (a restart, the tree taken over or moved on): its load reads everything, and the
    // object store gives it the same files faster than the tree (~0.1 s against ~0.3 s for 10,000).
    const snapshot = this.returned === null ? await this.snapshotOf(commit) : null;
    this.returned = commit;
    return snapshot ? { commit, changed, tree: this.treeDir, snapshot } : { commit, changed, tree: this.treeDir };
  }

  /** Writes every file of `commit` into the tree (removing any other) and stamps it; SourceCheckoutError on failure. */
  private checkoutWhole(commit: string, cli: GitCli | undefined): Promise<void> {
    this.stamps.forget();
    const written = cli ? cli.checkout(this.gitdir, this.treeDir, commit) : checkoutExact(this.treeDir, this.gitdir, commit, this.cache);
    return written
      .then(() => this.stamps.record(this.treeDir))
      .catch((err: unknown) => {
        throw new SourceCheckoutError(commit, errorMessage(err));
      });
  }

  /** The tree holds `commit`: kept in memory and on disk for the next start. `files`: how many changed, null for all. */
  private async checkedOutNow(commit: string, previous: string | null, files: number | null): Promise<void> {
    this.checkedOut = commit;
    const stamps = this.stamps.saved();
    if (stamps) await this.record.save({ commit, stamps }).catch((err: unknown) => this.log.warn({ err }, 'cannot record the checked-out commit; the next start checks it out again'));
    this.log.info({ commit, previous, ...(files !== null && { files }) }, 'checked out lab revision');
  }

  /** Blobs read in parts, one per reader at once; each part may take its share of `maxBytes`. */
  private async readBlobs(oids: readonly string[], maxBytes: number): Promise<Map<string, Buffer>> {
    const size = Math.ceil(oids.length / this.blobs.length);
    const parts = await Promise.all(this.blobs.map((reader, i) => reader.read(oids.slice(i * size, (i + 1) * size), 'blob', Math.ceil(maxBytes / this.blobs.length))));
    return new Map(parts.flatMap((part) => [...part]));
  }

  /**
   * The commit's files from the object store: null where no snapshot is wanted or the command line does not run,
   * for a commit with a link or a submodule, and when reading fails (too many bytes).
   */
  private async snapshotOf(commit: string): Promise<CommitSnapshot | null> {
    if (this.snapshotMaxBytes <= 0 || this.blobs.length === 0 || !this.blobs.every((r) => r.open) || !(await this.cli?.usable())) return null;
    try {
      const listTrees = (oids: readonly string[]): Promise<Map<string, readonly TreeEntry[]>> => this.trees.listMany(oids);
      return await readCommitSnapshot(commit, await this.trees.treeOf(commit), listTrees, (oids, max) => this.readBlobs(oids, max), this.snapshotMaxBytes);
    } catch (err) {
      this.log.debug({ err, commit }, 'no snapshot of the commit; the load reads the working tree');
      return null;
    }
  }

  /**
   * Takes over the tree an earlier process checked out, when its record says which commit it holds and no file of
   * it changed since (the stamps): a restart then need not write 10,000 files again.
   */
  private async adoptTree(): Promise<void> {
    this.adopted = true;
    const record = await this.record.load();
    if (!record) return;
    try {
      await git.readCommit({ fs, gitdir: this.gitdir, oid: record.commit, cache: this.cache });
      this.stamps.adopt(record.stamps);
      if (this.stamps.intact(this.treeDir)) {
        this.checkedOut = record.commit;
        return;
      }
    } catch {
      // the commit is not in the clone any more: check out whole
    }
    this.stamps.forget();
  }

  /**
   * Moves the tree from `previous` (which it holds exactly) to `commit` by writing only the files that differ:
   * a whole checkout reads and stats every file (0.2 s at 1,000 files, 1.5 s at 10,000). Returns how many files
   * changed, or null when the whole commit must be checked out instead (also when something else touched the
   * tree since where the commit writes, or added or removed a file anywhere: local edits are discarded and stray
   * files removed by the whole checkout; an edit in place of a file the commit leaves alone is found at the next
   * start, which looks at every file).
   */
  private async checkoutChanges(previous: string, commit: string): Promise<number | null> {
    try {
      const changes = await this.diff(previous, commit);
      if (!this.stamps.intactAt(this.treeDir, changes.map((c) => c.path))) {
        this.log.warn({ commit, previous }, 'the working tree was changed outside forseti; checking the whole commit out');
        return null;
      }
      // git's index still describes an older commit; without it, a later whole checkout starts clean
      await rm(join(this.gitdir, 'index'), { force: true });
      await applyChanges(this.treeDir, this.gitdir, changes, this.cache);
      this.stamps.update(this.treeDir, changes.map((c) => c.path));
      return changes.length;
    } catch (err) {
      this.log.warn({ err, commit, previous }, 'incremental checkout failed; checking the whole commit out');
      return null;
    }
  }

  private async diff(from: string, to: string): Promise<TreeChange[]> {
    const last = this.lastDiff;
    if (last && last.from === from && last.to === to) return last.changes;
    const changes = await this.trees.diff(from, to);
    this.lastDiff = { from, to, changes };
    return changes;
  }

  private async fetchHead(): Promise<string> {
    let oid: string | null;
    try {
      if (!this.initialized) {
        await git.init({ fs, gitdir: this.gitdir, bare: true, defaultBranch: this.branch });
        // Written by each instance so a changed URL or branch takes effect; the stored URL never carries credentials.
        await git.setConfig({ fs, gitdir: this.gitdir, path: 'remote.origin.url', value: this.safeUrl });
        await git.setConfig({ fs, gitdir: this.gitdir, path: 'remote.origin.fetch', value: `+refs/heads/${this.branch}:refs/remotes/origin/${this.branch}` });
        this.initialized = true;
      }
      oid = await fetchBranch({ gitdir: this.gitdir, http: this.http, url: this.url, branch: this.branch, auth: this.auth, cache: this.cache, ...(this.cli ? { cli: this.cli } : {}) });
    } catch (err) {
      this.initialized = false; // set up again next time, in case the state directory lost the repository
      throw this.fetchError(describeGitError(err));
    }
    if (!oid) throw this.fetchError(`branch ${this.branch} does not exist`);
    // A local branch makes the plain branch name usable as a revision (readCommitInfo, checkoutRevision).
    await git.writeRef({ fs, gitdir: this.gitdir, ref: `refs/heads/${this.branch}`, value: oid, force: true });
    return oid;
  }

  private fetchError(reason: string): SourceFetchError {
    const error = new SourceFetchError(this.safeUrl, this.branch, scrubSecrets(reason, [this.auth?.password]));
    this.log.warn({ err: error }, 'fetch failed, keeping the last tree');
    return error;
  }

  /**
   * Ends the git process kept for reading objects (a sync after this reads them through isomorphic-git) and drops a
   * checkout left for later (the next start checks the commit out).
   */
  close(): void {
    this.deferred = null;
    this.objects?.close();
    for (const reader of this.blobs) reader.close();
  }

  readCommitInfo(commit: string): Promise<CommitInfo> {
    return readCommitInfo(this.gitdir, commit, this.cache);
  }

  /**
   * Files changed between two fetched commits; `from` null lists every file of `to` as added. Cheap right after
   * a sync() from `from` to `to` (the diff it checked out with), and otherwise follows the size of the change.
   */
  async changedPaths(from: string | null, to: string): Promise<ChangedPath[]> {
    const last = this.lastDiff;
    if (last && last.from === from && last.to === to) return last.changes.map(({ path, kind }) => ({ path, kind }));
    return changedPaths(this.gitdir, from, to, this.cache, this.trees);
  }

  /** Writes the files of any fetched revision into `targetDir` (absent or empty); returns the commit. */
  checkoutRevision(rev: string, targetDir: string): Promise<string> {
    return writeRevisionTree(this.gitdir, rev, targetDir, this.cache);
  }
}
