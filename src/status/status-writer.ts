import * as fs from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import git, { type HttpClient } from 'isomorphic-git';
import { describeGitError } from '../source/describe-git-error.ts';
import type { Logger } from '../log.ts';
import type { StatusPushResult } from '../observe/metrics.ts';
import { authCallbacks, type GitCredentials } from '../source/auth.ts';
import { fetchBranch } from '../source/fetch-branch.ts';
import { GitCli } from '../source/git-cli.ts';
import { httpClientWithTimeout } from '../source/http-client.ts';
import { scrubSecrets } from '../redact/redactor.ts';
import { redactUrl } from '../redact/url.ts';
import { applyFiles } from '../source/tree-with-files.ts';
import { isPushRace } from '../source/is-push-race.ts';
import { PendingStore } from './pending-store.ts';
import { checkStatusPath } from './status-path.ts';
import { isStatusFile, readStatusFiles } from './status-branch.ts';
import { StatusPushError } from './status-push-error.ts';
import { StatusSnapshot } from './status-snapshot.ts';

export interface StatusWriterOptions {
  /** The lab repository; status goes to another branch of the same remote. */
  url: string;
  /** Default `forseti-status`. */
  branch?: string;
  /** State directory (a bare repository plus the pending queue); may be wiped between runs. */
  dir: string;
  auth?: GitCredentials;
  author: { name: string; email: string };
  log: Logger;
  /** Timer-driven flush period while dirty, default 2000 ms. */
  batchMs?: number;
  /** Push attempts per flush when the branch moves under us, default 5. */
  attempts?: number;
  /** First backoff between those attempts, doubled each time, default 100 ms. */
  backoffMs?: number;
  /** Socket idle timeout for HTTP requests, default 30 s. */
  timeoutMs?: number;
  /** Told the result of every flush that had something queued (the agent counts them in its metrics). */
  onPush?: (result: StatusPushResult) => void;
}


interface Queued {
  content: string | null;
  /** Bumped by every set(); a flush only dequeues what it pushed, not what was set() while it ran. */
  generation: number;
}

/**
 * Commits status files to a branch of the lab remote: set() queues, flush() makes one commit for
 * everything queued (none when nothing differs from the branch) and pushes it, re-applying on top of
 * the remote head when another writer got there first.
 */
export class StatusWriter {
  readonly url: string;
  readonly branch: string;
  private readonly safeUrl: string;
  private readonly gitdir: string;
  private readonly auth: GitCredentials | undefined;
  private readonly author: { name: string; email: string };
  private readonly log: Logger;
  private readonly http: HttpClient;
  private readonly batchMs: number;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly pendingStore: PendingStore;
  /** The branch's files as last read, so a restart reads only the blobs that changed since (src/status/status-snapshot.ts). */
  private readonly snapshot: StatusSnapshot;
  /** What was pushed since the snapshot was saved: it is brought up to date at stop(). */
  private readonly pushedSince = new Map<string, string | null>();
  private snapshotSaving: Promise<void> = Promise.resolve();
  private readonly queue = new Map<string, Queued>();
  private generation = 0;
  private cache: object = {};
  private flushing: Promise<{ commit: string | null }> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly onPush: ((result: StatusPushResult) => void) | undefined;
  /** Fetches the branch with git where it runs: a new state dir then reads a long history's pack in ~0.1 s, not seconds. */
  private readonly cli: GitCli;

  constructor(opts: StatusWriterOptions) {
    this.url = opts.url;
    this.branch = opts.branch ?? 'forseti-status';
    this.safeUrl = redactUrl(opts.url);
    const dir = resolve(opts.dir);
    this.gitdir = join(dir, 'repo.git');
    this.pendingStore = new PendingStore(join(dir, 'pending.json'));
    this.snapshot = new StatusSnapshot(join(dir, 'snapshot.json'));
    this.auth = opts.auth;
    this.author = opts.author;
    this.log = opts.log.child({ component: 'status-writer', url: this.safeUrl, branch: this.branch });
    this.http = httpClientWithTimeout(opts.timeoutMs ?? 30_000);
    this.batchMs = opts.batchMs ?? 2000;
    this.attempts = Math.max(1, opts.attempts ?? 5);
    this.backoffMs = opts.backoffMs ?? 100;
    this.onPush = opts.onPush;
    this.cli = new GitCli({ idleTimeoutMs: opts.timeoutMs ?? 30_000 });
    for (const [path, content] of this.pendingStore.load()) this.enqueue(path, content);
  }

  /** Queues `content` for `path` (e.g. `hosts/bld-003.yaml`); a later set() of the same path replaces it. */
  set(path: string, content: string): void {
    this.enqueue(checkStatusPath(path), content);
  }

  /** Queues the removal of `path` from the branch (e.g. a host that left the lab). */
  remove(path: string): void {
    this.enqueue(checkStatusPath(path), null);
  }

  /**
   * The status files as the previous run left them: `site.yaml` and `hosts/*.yaml` at the branch head (fetched;
   * this writer's own clone when the remote cannot be reached), with what is still queued on top. Empty when
   * neither has the branch or it cannot be read (logged): a restarted agent then starts an empty history.
   */
  async readBranch(): Promise<Map<string, string>> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    const files = new Map<string, string>();
    try {
      const head = await this.headForReading();
      if (head) {
        let missed = 0;
        const known = await this.snapshot.load();
        for (const [path, text] of await readStatusFiles(this.gitdir, head, this.cache, known, (n) => (missed = n))) files.set(path, text);
        if (missed > 0 || known.size !== files.size) this.saveSnapshot(new Map(files));
      }
    } catch (err) {
      files.clear();
      this.log.warn({ reason: scrubSecrets(describeGitError(err), [this.auth?.password]) }, 'cannot read the status branch; its history starts empty');
    }
    for (const [path, q] of this.queue) {
      if (!isStatusFile(path)) continue;
      if (q.content === null) files.delete(path);
      else files.set(path, q.content);
    }
    return files;
  }

  get dirty(): boolean {
    return this.queue.size > 0;
  }

  private enqueue(path: string, content: string | null): void {
    this.queue.set(path, { content, generation: ++this.generation });
  }

  /** Commits and pushes everything queued now. Flushes never overlap: a call during one waits and then runs. */
  async flush(): Promise<{ commit: string | null }> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    const run = this.flushNow();
    this.flushing = run;
    try {
      return await run;
    } finally {
      this.flushing = null;
    }
  }

  /** Flushes every batchMs while there is something queued. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  /** Stops the timer and flushes what is pending; a failed final flush is logged and kept in the pending file. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.flushing) await this.flushing.catch(() => undefined);
    if (this.dirty) await this.flush().catch(() => undefined); // flushNow already logged it
    await this.snapshotSaving;
    const pushed = new Map(this.pushedSince);
    this.pushedSince.clear();
    await this.snapshot.update(pushed).catch((err: unknown) => this.log.warn({ err }, 'the status snapshot could not be saved; the next start reads the branch'));
  }

  /** In the background: the start it speeds up is the next one. */
  private saveSnapshot(files: Map<string, string>): void {
    this.pushedSince.clear();
    this.snapshotSaving = this.snapshotSaving
      .then(() => this.snapshot.save(files))
      .catch((err: unknown) => this.log.warn({ err }, 'the status snapshot could not be saved; the next start reads the branch'));
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const tick = this.dirty ? this.flush().catch(() => undefined) : Promise.resolve();
      void tick.then(() => this.schedule());
    }, this.batchMs);
    this.timer.unref();
  }

  private async flushNow(): Promise<{ commit: string | null }> {
    if (this.queue.size === 0) return { commit: null };
    const batch = new Map(this.queue);
    const changes = new Map([...batch].map(([path, q]) => [path, q.content]));
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      try {
        const commit = await this.commitAndPush(changes);
        this.dequeue(batch);
        if (commit) for (const [path, content] of changes) this.pushedSince.set(path, content);
        await this.pendingStore.save(this.pendingChanges()).catch(() => undefined);
        if (commit) this.log.info({ commit, files: changes.size, attempt }, 'status pushed');
        this.report(commit === null ? 'unchanged' : attempt > 1 ? 'retried' : 'ok');
        return { commit };
      } catch (err) {
        lastError = err;
        if (!isPushRace(err) || attempt === this.attempts) break;
        this.log.debug({ attempt }, 'status branch moved under us, retrying on top of it');
        await sleep(this.backoffMs * 2 ** (attempt - 1));
      }
    }
    const error = new StatusPushError(this.safeUrl, this.branch, this.attempts, scrubSecrets(describeGitError(lastError), [this.auth?.password]));
    await this.pendingStore.save(this.pendingChanges()).catch(() => undefined);
    this.log.warn({ err: error, queued: this.queue.size }, 'status push failed; files stay queued for the next flush');
    this.report('failed');
    throw error;
  }

  private report(result: StatusPushResult): void {
    try {
      this.onPush?.(result);
    } catch (err) {
      // A counting hook must not turn a pushed batch into a failed flush.
      this.log.warn({ err }, 'status push hook threw');
    }
  }

  private pendingChanges(): Map<string, string | null> {
    return new Map([...this.queue].map(([path, q]) => [path, q.content]));
  }

  private dequeue(batch: Map<string, Queued>): void {
    for (const [path, q] of batch) {
      if (this.queue.get(path)?.generation === q.generation) this.queue.delete(path);
    }
  }

  /** One attempt: fetch the remote head, build a commit on top of it, push. Null when nothing would change. */
  private async commitAndPush(changes: Map<string, string | null>): Promise<string | null> {
    await this.ensureRepo();
    const base = await this.fetchHead();
    const baseTree = base ? (await git.readCommit({ fs, gitdir: this.gitdir, oid: base, cache: this.cache })).commit.tree : null;
    const tree = await applyFiles(this.gitdir, baseTree, changes, this.cache);
    if (tree === baseTree) return null;
    const now = Math.floor(Date.now() / 1000);
    const signature = { ...this.author, timestamp: now, timezoneOffset: 0 };
    const commit = await git.writeCommit({
      fs,
      gitdir: this.gitdir,
      commit: { message: commitMessage([...changes.keys()]), tree, parent: base ? [base] : [], author: signature, committer: signature },
    });
    await git.writeRef({ fs, gitdir: this.gitdir, ref: `refs/heads/${this.branch}`, value: commit, force: true });
    await git.push({
      fs,
      http: this.http,
      gitdir: this.gitdir,
      cache: this.cache,
      url: this.url,
      remote: 'origin',
      ref: this.branch,
      remoteRef: this.branch,
      ...authCallbacks(this.auth),
    });
    return commit;
  }

  /** The remote head; when the remote cannot be reached, what this clone last pushed or fetched. */
  private async headForReading(): Promise<string | null> {
    try {
      await this.ensureRepo();
      return await this.fetchHead();
    } catch (err) {
      this.log.warn({ reason: scrubSecrets(describeGitError(err), [this.auth?.password]) }, 'cannot fetch the status branch; reading the local copy');
    }
    const resolve = (ref: string): Promise<string | null> => git.resolveRef({ fs, gitdir: this.gitdir, ref }).catch(() => null);
    const pushed = await resolve(`refs/heads/${this.branch}`);
    const fetched = await resolve(`refs/remotes/origin/${this.branch}`);
    if (!pushed || !fetched || pushed === fetched) return pushed ?? fetched;
    // The newer of the two: a flush builds on what it fetched, a later read may fetch what others pushed since.
    const fetchedIsNewer = await git.isDescendent({ fs, gitdir: this.gitdir, oid: fetched, ancestor: pushed, depth: -1, cache: this.cache }).catch(() => false);
    return fetchedIsNewer ? fetched : pushed;
  }

  /** The remote branch head, or null if the branch does not exist there yet. */
  private fetchHead(): Promise<string | null> {
    return fetchBranch({ gitdir: this.gitdir, http: this.http, url: this.url, branch: this.branch, auth: this.auth, cache: this.cache, cli: this.cli });
  }

  private async ensureRepo(): Promise<void> {
    try {
      await this.initRepo();
    } catch {
      // A state dir damaged by a crash is only a cache of the remote: start over.
      await rm(this.gitdir, { recursive: true, force: true });
      this.cache = {};
      await this.initRepo();
    }
  }

  private async initRepo(): Promise<void> {
    await mkdir(this.gitdir, { recursive: true });
    await git.init({ fs, gitdir: this.gitdir, bare: true, defaultBranch: this.branch });
    await git.setConfig({ fs, gitdir: this.gitdir, path: 'remote.origin.url', value: this.safeUrl });
    await git.setConfig({ fs, gitdir: this.gitdir, path: 'remote.origin.fetch', value: `+refs/heads/${this.branch}:refs/remotes/origin/${this.branch}` });
  }
}

function commitMessage(paths: string[]): string {
  const sorted = [...paths].sort();
  const subject = sorted.length <= 3 ? `status: ${sorted.join(', ')}` : `status: ${sorted.length} files`;
  return `${subject}\n\n${sorted.map((p) => `- ${p}`).join('\n')}\n`;
}


function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
