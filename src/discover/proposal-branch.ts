// A discovered machine's proposed host file, pushed to the lab's remote on its own branch
// `forseti/discovered/<mac>` (the MAC with dashes: git refuses ':' in a ref name), never to the base branch. Each
// attempt asks the remote first: a branch that exists there was proposed already (by this agent before a restart,
// by another, or kept by a human after closing the pull request) and is never pushed again. Otherwise the base
// branch is fetched, the proposal made against the lab at that commit (the machine may have been declared since:
// then nothing is pushed), clear of what the other open proposal branches take (src/discover/pending-proposals.ts),
// validated there with the whole lab, committed on top of it and pushed without force.
// A push refused because the branch appeared meanwhile, or any ref race, starts the attempt again from the
// remote's refs, as the status writer does.
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import git, { type HttpClient } from 'isomorphic-git';
import { formatProblem } from '../model/load.ts';
import type { LabProblem } from '../model/types.ts';
import { scrubSecrets } from '../redact/redactor.ts';
import { redactUrl } from '../redact/url.ts';
import { authCallbacks, type GitCredentials } from '../source/auth.ts';
import { fetchBranch } from '../source/fetch-branch.ts';
import { httpClientWithTimeout } from '../source/http-client.ts';
import { isPushRace } from '../source/is-push-race.ts';
import type { MachineFacts } from './facts.ts';
import type { HostDocument } from './host-yaml.ts';
import { indexLab } from './lab-index.ts';
import { readPendingProposals, reservePending } from './pending-proposals.ts';
import { bootMacOf, proposeHosts } from './propose-host.ts';
import { loadStage, openStage, publish, stageProposals } from './publish.ts';

export const DISCOVERED_BRANCH_PREFIX = 'forseti/discovered/';

/** `forseti/discovered/52-54-00-aa-bb-cc` for 52:54:00:AA:BB:CC. */
export function discoveredBranch(mac: string): string {
  return `${DISCOVERED_BRANCH_PREFIX}${mac.trim().toLowerCase().replace(/[:-]/g, '-')}`;
}

export interface ProposalBranchOptions {
  /** The lab repository (smart HTTP). */
  url: string;
  /** The branch proposals start from and pull requests go to; default `main`. */
  baseBranch?: string;
  /** State directory: a bare repository (`repo.git`); may be wiped between runs. */
  dir: string;
  auth?: GitCredentials;
  /** Author and committer of the proposal commits. */
  author: { name: string; email: string };
  /** Attempts when the remote's refs move under a push, default 5. */
  attempts?: number;
  /** First backoff between those attempts, doubled each time, default 200 ms. */
  backoffMs?: number;
  /** Socket idle timeout of each Git request, default 30 s. */
  timeoutMs?: number;
}

export interface ProposeOnBranchOptions {
  /** `{serial}`; placeholders as proposeHosts takes them. */
  namePattern: string;
  fallbackPattern?: string;
  /** What found the machine, for the file's first comment and the commit: "forseti agent discovery". */
  command: string;
}

export type BranchProposal =
  | { kind: 'pushed'; branch: string; base: string; commit: string; file: string; name: string; document: HostDocument; yaml: string }
  /** The branch is on the remote already: proposed before, never again. */
  | { kind: 'exists'; branch: string; commit: string }
  /** The lab at the base commit declares the machine (its MAC, serial or BMC). */
  | { kind: 'declared'; branch: string; base: string; host: string; why: string }
  /** Nothing to push: no MAC, no free address, no `off` profile, or the lab (with the proposal) not valid. */
  | { kind: 'refused'; branch: string; base?: string; why: string; problems: string[] };

/** The remote could not be read or refused the push (not a race), or races outlasted the attempts. */
export class ProposalPushError extends Error {
  override readonly name = 'ProposalPushError';
  constructor(readonly url: string, readonly branch: string, readonly attempts: number, reason: string) {
    super(`proposing ${branch} on ${url} failed after ${attempts} attempt(s): ${reason}`);
  }
}

/** Pushes one branch per discovered machine; calls are serialized. */
export class ProposalBranchPublisher {
  readonly baseBranch: string;
  private readonly url: string;
  private readonly safeUrl: string;
  private readonly gitdir: string;
  private readonly auth: GitCredentials | undefined;
  private readonly author: { name: string; email: string };
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly http: HttpClient;
  private readonly cache: object = {};
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: ProposalBranchOptions) {
    this.url = options.url;
    this.safeUrl = redactUrl(options.url);
    this.baseBranch = options.baseBranch ?? 'main';
    this.gitdir = join(resolve(options.dir), 'repo.git');
    this.auth = options.auth;
    this.author = options.author;
    this.attempts = Math.max(1, options.attempts ?? 5);
    this.backoffMs = options.backoffMs ?? 200;
    this.http = httpClientWithTimeout(options.timeoutMs ?? 30_000);
  }

  /** Proposes the machine on its branch, unless the remote has that branch already. */
  propose(facts: MachineFacts, options: ProposeOnBranchOptions): Promise<BranchProposal> {
    const run = this.queue.then(() => this.proposeNow(facts, options));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async proposeNow(facts: MachineFacts, options: ProposeOnBranchOptions): Promise<BranchProposal> {
    const mac = bootMacOf(facts);
    if (mac === undefined) return { kind: 'refused', branch: DISCOVERED_BRANCH_PREFIX, why: facts.nicsUnknown ?? 'no valid MAC address to name the branch and the host by', problems: [] };
    const branch = discoveredBranch(mac);
    if (branch === this.baseBranch) throw new Error(`refusing to push to the base branch ${branch}`);
    let attempt = 0;
    for (;;) {
      attempt++;
      try {
        return await this.attempt(branch, facts, options);
      } catch (err) {
        if (!isPushRace(err) || attempt === this.attempts) throw new ProposalPushError(this.safeUrl, branch, attempt, scrubSecrets(describeError(err), [this.auth?.password]));
        await new Promise((r) => setTimeout(r, this.backoffMs * 2 ** (attempt - 1)));
      }
    }
  }

  private async attempt(branch: string, facts: MachineFacts, options: ProposeOnBranchOptions): Promise<BranchProposal> {
    await this.ensureRepo();
    const ref = `refs/heads/${branch}`;
    const proposals = await git.listServerRefs({ http: this.http, url: this.url, prefix: `refs/heads/${DISCOVERED_BRANCH_PREFIX}`, ...authCallbacks(this.auth) });
    const remote = proposals.find((r) => r.ref === ref);
    if (remote) return { kind: 'exists', branch, commit: remote.oid };
    const source = { gitdir: this.gitdir, http: this.http, url: this.url, ...(this.auth ? { auth: this.auth } : {}), cache: this.cache };
    const base = await fetchBranch({ ...source, branch: this.baseBranch });
    if (base === null) throw new Error(`the base branch ${this.baseBranch} does not exist`);
    const pending = await readPendingProposals(source, proposals.map((r) => ({ branch: r.ref.slice('refs/heads/'.length), oid: r.oid })), base);
    await git.writeRef({ fs, gitdir: this.gitdir, ref: `refs/heads/${this.baseBranch}`, value: base, force: true });
    // A proposal of an earlier attempt that was not pushed: made again on the current base.
    await git.deleteRef({ fs, gitdir: this.gitdir, ref }).catch(() => undefined);

    const stage = await openStage(this.gitdir, { kind: 'branch', name: branch });
    try {
      const before = await loadStage(stage);
      if (!before.lab) return { kind: 'refused', branch, base, why: `the lab at ${this.baseBranch} (${base.slice(0, 12)}) is not valid`, problems: texts(before.problems) };
      const index = indexLab(before.lab, stage.hostFiles, stage.schemaComment);
      reservePending(index, pending);
      const [proposal] = proposeHosts([facts], index, { namePattern: options.namePattern, ...(options.fallbackPattern !== undefined ? { fallbackPattern: options.fallbackPattern } : {}), command: options.command });
      if (!proposal || proposal.kind === 'refused') return { kind: 'refused', branch, base, why: proposal?.why ?? 'nothing proposed', problems: [] };
      if (proposal.kind === 'declared') return { kind: 'declared', branch, base, host: proposal.host, why: proposal.why };
      const files = new Map([[proposal.file, proposal.yaml]]);
      const staged = await stageProposals(stage, files);
      if (!staged.lab) return { kind: 'refused', branch, base, why: `the lab at ${this.baseBranch} with ${proposal.file} is not valid`, problems: texts(staged.problems) };
      const { commit } = await publish(stage, files, commitMessage(proposal.name, facts, proposal.document, options.command));
      await git.push({ fs, http: this.http, gitdir: this.gitdir, cache: this.cache, url: this.url, ref: branch, remoteRef: branch, ...authCallbacks(this.auth) });
      return { kind: 'pushed', branch, base, commit: commit!, file: proposal.file, name: proposal.name, document: proposal.document, yaml: proposal.yaml };
    } finally {
      await stage.close();
    }
  }

  private async ensureRepo(): Promise<void> {
    await git.init({ fs, gitdir: this.gitdir, bare: true, defaultBranch: this.baseBranch });
    // The stored URL never carries credentials; the author is whom the proposal commits name.
    await git.setConfig({ fs, gitdir: this.gitdir, path: 'remote.origin.url', value: this.safeUrl });
    await git.setConfig({ fs, gitdir: this.gitdir, path: 'remote.origin.fetch', value: '+refs/heads/*:refs/remotes/origin/*' });
    await git.setConfig({ fs, gitdir: this.gitdir, path: 'user.name', value: this.author.name });
    await git.setConfig({ fs, gitdir: this.gitdir, path: 'user.email', value: this.author.email });
  }
}

function texts(problems: LabProblem[]): string[] {
  return problems.map(formatProblem);
}

function commitMessage(name: string, facts: MachineFacts, doc: HostDocument, command: string): string {
  return `Discovered ${name}: ${doc.description ?? facts.source}\n\nProposed by ${command}. Its role is ${doc.role} until a human sets one:\nmerged as it is, the machine is kept off and never network-booted.\n`;
}

function describeError(err: unknown): string {
  if (err instanceof git.Errors.HttpError) return `HTTP ${err.data.statusCode} ${err.data.statusMessage}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
