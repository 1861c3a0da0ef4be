// The git command line, where it is installed, for the two things isomorphic-git does slowly at scale: fetching a
// pack (isomorphic-git indexes it in JavaScript: ~4 s for a 10,000-file lab, git ~0.1 s) and checking a whole
// commit out (isomorphic-git stats and writes each file in turn). Everything else stays with isomorphic-git, which
// reads what git writes (loose objects, packs with their .idx). Without git on the PATH, or for a URL that is not
// http(s), the caller falls back to isomorphic-git: same result, slower.
import { execFile } from 'node:child_process';
import { mkdir, opendir, rm } from 'node:fs/promises';
import type { GitCredentials } from './auth.ts';
import { GitCliError } from './git-cli-error.ts';
import { GitObjectReader } from './git-object-reader.ts';

/** Bounds every git run: a fetch that trickles is cut off here too (the lab's other bound is FETCH_BOUND_MS). */
const RUN_TIMEOUT_MS = 10 * 60_000;

/** Settings every run gets: no prompt, no credential helper, no background housekeeping, only http(s). */
const SAFE_CONFIG: Array<[string, string]> = [
  ['credential.helper', ''],
  ['core.askPass', ''],
  ['gc.auto', '0'],
  ['maintenance.auto', 'false'],
  ['protocol.allow', 'never'],
  ['protocol.http.allow', 'always'],
  ['protocol.https.allow', 'always'],
  // The credential goes as http.extraHeader: a redirect is not followed, so it is sent only to the configured URL.
  ['http.followRedirects', 'false'],
  ['core.symlinks', 'true'],
  ['core.autocrlf', 'false'],
  ['core.fsmonitor', 'false'],
  ['core.hooksPath', '/dev/null'],
];

/** SAFE_CONFIG as arguments. */
const CONFIG_ARGS = SAFE_CONFIG.flatMap(([k, v]) => ['-c', `${k}=${v}`]);

/** The environment of every run: no prompt, no user or system configuration. */
const BASE_ENV = (): Record<string, string> => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', LC_ALL: 'C' });


export interface GitCliOptions {
  /** Socket idle timeout: a transfer slower than 1 KB/s for this long is cut off. */
  idleTimeoutMs?: number;
}

/** Runs git commands with SAFE_CONFIG; credentials travel in the environment of one run, never in its arguments. */
export class GitCli {
  private available: Promise<boolean> | null = null;

  constructor(private readonly options: GitCliOptions = {}) {}

  /** Whether `git` runs here (asked once). */
  usable(): Promise<boolean> {
    this.available ??= this.run(['--version'], {}).then(
      () => true,
      () => false,
    );
    return this.available;
  }

  /** Fetches `branch` of `url` into the bare repository `gitdir` as refs/remotes/origin/<branch>. */
  async fetch(gitdir: string, urlWithCredentials: string, branch: string, given?: GitCredentials): Promise<void> {
    // Credentials in the URL go into the header too: an argument would show in the process list.
    const parsed = new URL(urlWithCredentials);
    const inUrl = parsed.username || parsed.password ? { username: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) } : undefined;
    parsed.username = '';
    parsed.password = '';
    const url = parsed.href;
    const auth = given ?? inUrl;
    const idle = Math.max(1, Math.round((this.options.idleTimeoutMs ?? 60_000) / 1000));
    const env: Record<string, string> = { GIT_DIR: gitdir, ...configEnv([['http.lowSpeedLimit', '1000'], ['http.lowSpeedTime', String(idle)], ...(auth ? [['http.extraHeader', `Authorization: Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`] as [string, string]] : [])]) };
    await this.run(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--no-auto-gc', url, `+refs/heads/${branch}:refs/remotes/origin/${branch}`], env, [auth?.password, inUrl?.password]);
  }

  /**
   * Makes `dir` hold exactly the files of `commit`: every file written from a fresh index of its own (isomorphic-git's
   * stays its own; a fresh one, so a local edit of a file the commit did not change is overwritten too), then every
   * file it does not track removed (not needed in a directory that was empty).
   */
  async checkout(gitdir: string, dir: string, commit: string): Promise<void> {
    const index = `${gitdir}/index-git-cli`;
    await rm(index, { force: true });
    await mkdir(dir, { recursive: true });
    const listing = await opendir(dir);
    const wasEmpty = await listing.read().then((entry) => entry === null).finally(() => listing.close());
    const env = { GIT_DIR: gitdir, GIT_WORK_TREE: dir, GIT_INDEX_FILE: index, ...configEnv([]) };
    await this.run(['read-tree', '--reset', '-u', commit], env);
    if (!wasEmpty) await this.run(['clean', '-ffdxq'], env);
  }

  /** A long-running object reader of the bare repository `gitdir` (src/source/git-object-reader.ts), with SAFE_CONFIG. */
  objectReader(gitdir: string, options: { processPerRead?: boolean } = {}): GitObjectReader {
    return new GitObjectReader({ command: { args: CONFIG_ARGS, env: { ...BASE_ENV(), GIT_DIR: gitdir, ...configEnv([]) } }, ...options });
  }

  private run(args: string[], env: Record<string, string>, secrets: Array<string | undefined> = []): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile('git', [...CONFIG_ARGS, ...args], { env: { ...BASE_ENV(), ...env }, timeout: RUN_TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
        if (!err) return resolve();
        const text = (String(stderr).trim() || err.message).slice(0, 2000);
        reject(new GitCliError(args, secrets.reduce<string>((t, secret) => (secret ? t.split(secret).join('***') : t), text)));
      });
    });
  }
}

/** Config for one run through GIT_CONFIG_COUNT: unlike `-c`, not visible in the process list. */
function configEnv(pairs: Array<[string, string]>): Record<string, string> {
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(pairs.length) };
  pairs.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return env;
}
