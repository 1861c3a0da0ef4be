import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BmcDriver } from '../bmc/driver.ts';
import { FileHostKeyStore } from '../bmc/oa/host-key.ts';
import type { Logger } from '../log.ts';
import { fileProblem } from '../model/documents.ts';
import { formatProblem, LabLoader, loadLab, type LoadResult } from '../model/load.ts';
import type { Lab } from '../model/types.ts';
import { HostSightings } from '../observe/drift-sightings.ts';
import { Journal } from '../observe/journal.ts';
import { instrumentBmcDriver } from '../observe/metrics-bmc.ts';
import { Metrics } from '../observe/metrics.ts';
import type { ReconcileRun } from '../observe/reconcile-log.ts';
import { RecentEvents } from '../serve/dashboard/recent-events.ts';
import { createWebhookRoute, handleWebhook, pollSchedule } from '../source/webhook.ts';
import { reconcile } from '../plan/reconcile.ts';
import { MIN_SUBSTRING_SECRET_LENGTH, Redactor } from '../redact/redactor.ts';
import { redactUrl } from '../redact/url.ts';
import { GenerationWriter, type Generation } from '../render/generation.ts';
import { ImageCache } from '../render/image-cache.ts';
import { attemptToken, TOKEN_SLOT } from '../render/token.ts';
import { AgentUrls } from '../render/urls.ts';
import { GitSource, RefusedTreeError } from '../source/index.ts';
import { StatusWriter } from '../status/index.ts';
import { AgentAlerts } from './agent-alerts.ts';
import { loadAgentKey } from './agent-key.ts';
import { AgentBootBackend } from './boot-backend.ts';
import type { AgentConfig } from './config.ts';
import { BootServices, ServiceBindError } from './boot-services.ts';
import { createDriver, retainBmcState } from './drivers.ts';
import { DriftLoop } from './drift-loop.ts';
import { Executor } from './executor.ts';
import { HostTracker } from './host-tracker.ts';
import { Secrets } from './secrets.ts';
import { StatusPublisher } from './status-publisher.ts';
import { APPLY_STAGE_BOUND_MS, CommitAbandonedError, CommitApply } from './commit-apply.ts';
import { StopSteps } from './stop-steps.ts';

/**
 * The long-running agent: polls the lab repository, applies each commit whole or not at all, serves boot
 * files for the current generation, drives BMCs toward what the commit declares, and reports status.
 */
export class Agent {
  private generation: Generation | null = null;
  /** Keeps the last commit's files parsed and checked: a commit re-reads only the files it changed. */
  private readonly loader: LabLoader;
  /** Renders only the hosts whose inputs changed and links unchanged shards from the previous generation. */
  private generations!: GenerationWriter;
  private readonly drivers = new Map<string, BmcDriver>();
  private tracker!: HostTracker;
  private executor!: Executor;
  private source!: GitSource;
  private status!: StatusPublisher;
  private images!: ImageCache;
  private secrets!: Secrets;
  /** The agent's own secrets plus the lab's SOPS file of the commit being served. */
  private labSecrets!: Secrets;
  readonly metrics = new Metrics();
  private readonly events = new RecentEvents();
  private readonly sightings = new HostSightings();
  private alerts!: AgentAlerts;
  private drift!: DriftLoop;
  private agentKey!: Buffer;
  private backend!: AgentBootBackend;
  private services!: BootServices;
  private pollTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  /** The fetch in flight and since when; one at a time. */
  private fetching: { done: Promise<void>; since: number } | null = null;
  /** The commit being applied; a newer head abandons it. */
  private applying: CommitApply | null = null;
  private stopped = false;
  /** Set while start() runs: a service that cannot bind its port then stops the agent instead of rejecting the commit. */
  private starting = false;
  private startFailure: ServiceBindError | null = null;
  private stopping: StopSteps | null = null;
  /** Awaited work that running() names: what a stop during start() leaves behind. */
  private readonly pending = new Set<string>();
  /** The newest commit that failed validation: not validated again until the branch moves. */
  private invalidRevision: string | null = null;

  /** Knows every secret the agent holds; the logger given here should write through it too (see agentCommand). */
  private readonly redactor: Redactor;
  /** Each host's current attempt token, for the redactor. */
  private readonly attemptTokens = new Map<string, string>();
  private readonly redactDeep = <T>(value: T): T => this.redactor.redactDeep(value);
  /** SSH host keys of Onboard Administrators first seen (trust on first use), in stateDir. */
  private sshHostKeys!: FileHostKeyStore;

  constructor(private readonly config: AgentConfig, private readonly log: Logger, options: { redactor?: Redactor } = {}) {
    this.redactor = options.redactor ?? new Redactor();
    this.loader = new LabLoader({ limits: config.lab.limits });
  }

  get current(): Generation | null {
    return this.generation;
  }

  async start(): Promise<void> {
    const { stateDir } = this.config;
    await mkdir(stateDir, { recursive: true });
    this.agentKey = await loadAgentKey(stateDir);
    this.sshHostKeys = new FileHostKeyStore(join(stateDir, 'ssh-host-keys.json'));
    this.generations = new GenerationWriter(stateDir, () => TOKEN_SLOT, {
      onPruneError: (err) => this.log.warn({ err }, 'old generations could not be removed; retried at the next commit'),
    });
    this.secrets = await Secrets.load(this.config.secretsFile, process.env, this.config.ageKeyFile ? { ageKeyFile: this.config.ageKeyFile } : {});
    this.redactor.set('agent-secrets', this.secrets.values());
    const short = this.redactor.shortSecrets('agent-secrets').length;
    if (short > 0) this.log.warn({ count: short, minLength: MIN_SUBSTRING_SECRET_LENGTH }, 'some secrets are too short to be redacted inside other text; only whole values equal to them are');
    this.labSecrets = this.secrets;
    this.images = new ImageCache(join(stateDir, 'images'), this.log, this.config.images);
    this.tracker = new HostTracker(new Journal(join(stateDir, 'journal.json')), this.log, Date.now, this.redactDeep);
    await this.tracker.load();
    await this.sightings.persistTo(join(stateDir, 'sightings.json'), this.log);
    const auth = this.config.lab.credential ? this.secrets.resolve(this.config.lab.credential) : undefined;
    this.source = new GitSource({ url: this.config.lab.url, branch: this.config.lab.branch, dir: join(stateDir, 'lab'), log: this.log, ...(auth ? { auth } : {}) });
    const writer = new StatusWriter({
      url: this.config.lab.url,
      branch: this.config.status.branch,
      dir: join(stateDir, 'status'),
      author: this.config.status.author,
      log: this.log,
      batchMs: this.config.status.batchSeconds * 1000,
      onPush: (result) => this.metrics.countStatusPush(result),
      ...(auth ? { auth } : {}),
    });
    this.status = new StatusPublisher(writer, () => this.generation, { drifts: (h) => this.drift?.driftsOf(h) ?? [], metrics: this.metrics, redact: this.redactDeep });
    await this.during('reading the status branch', this.status.restore((h) => this.tracker.get(h)));
    this.alerts = new AgentAlerts(stateDir, (name) => this.labSecrets.resolve(name).password, this.log, this.redactDeep);
    this.tracker.onChange((host, state, event) => {
      if (event.kind === 'provision-started' || event.kind === 'wipe-started') this.knowTokensOf([host], false);
      this.status.host(host, state, event);
      this.metrics.hostEvent(host, event.kind, state.phase);
      this.events.host(host, event);
      this.alerts.hostChanged(host, state, event);
    });
    this.executor = new Executor(this.tracker, (h) => this.driverFor(h), (h) => this.generation?.lab.hosts.get(h)?.hardware.firmware ?? 'bios', this.log);
    this.drift = new DriftLoop(() => this.generation, this.tracker, this.executor, this.sightings, (h) => this.driverFor(h), this.alerts, this.log, {
      driftChanged: (h) => {
        this.status.refresh(h);
        this.backend.changed();
      },
      actionStarted: (h, action, revision) => this.status.actionStarted(h, this.redactDeep(action), revision),
    });
    this.backend = new AgentBootBackend(() => this.generation, this.tracker, this.images, this.agentKey, this.log, {
      sightings: this.sightings,
      events: this.events,
      site: () => this.status.site(),
      drifts: (h) => this.redactDeep(this.drift.driftsOf(h)),
      actions: (h) => this.status.actionsOf(h),
      health: () => this.health(),
    });
    this.services = new BootServices(this.config, this.backend, () => this.generation, this.log, { metrics: this.metrics, ...this.webhookRoute() });
    writer.start();
    this.log.info({ lab: redactUrl(this.config.lab.url), branch: this.config.lab.branch, stateDir }, 'agent starting');
    if (this.stopped) return;
    // Polling starts before the first commit is applied, so a first commit stuck on an image cannot keep a fix out.
    this.schedulePoll();
    this.tickTimer = setInterval(() => this.tick(), this.config.reconcileIntervalMs);
    this.starting = true;
    await this.poll();
    this.starting = false;
    if (this.startFailure) throw this.startFailure;
  }

  /**
   * Stops within STOP_BUDGET_MS whatever hangs: the commit being applied is abandoned, and each step below is waited
   * for at most its bound (a hung BMC exchange, a status push to a dead server are left behind and named by running()).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.tickTimer) clearInterval(this.tickTimer);
    const steps = (this.stopping = new StopSteps(STOP_BUDGET_MS, this.log));
    this.applying?.abandon('the agent is stopping');
    await steps.wait('applying a commit', this.applying?.done, 1000, true);
    await steps.wait('fetching the lab branch', this.fetching?.done, 1000, true);
    await steps.wait('drift scan', this.drift?.stop(), 1000);
    await steps.wait('BMC actions', this.executor?.idle(), 3000, true);
    this.tracker?.close();
    await steps.wait('alert deliveries', this.alerts?.stop(), 1000);
    await steps.wait('status push', this.status?.stop(), 3000);
    await steps.wait('sightings', this.sightings.flush(), 500);
    await steps.wait('boot services', this.services?.stop(), 1000);
    await steps.wait('closing BMC sessions', this.closeDrivers(), 1000);
    retainBmcState([]);
    const left = this.running();
    if (left.length > 0) this.log.warn({ stillRunning: left }, `agent stopped; left running: ${left.join('; ')}`);
    else this.log.info('agent stopped');
  }

  /** What is still in flight: for a stop that must say what it leaves behind. */
  running(): string[] {
    const busy = this.executor?.busyHosts() ?? [];
    return [
      ...(this.stopping?.running() ?? []),
      ...this.pending,
      ...(this.applying ? [this.applying.describe()] : []),
      ...(this.fetching ? [`fetching the lab branch (${Math.round((Date.now() - this.fetching.since) / 1000)} s)`] : []),
      ...(this.images?.running() ?? []),
      ...(busy.length > 0 ? [`BMC actions on ${busy.join(', ')}`] : []),
    ];
  }

  private async during<T>(what: string, work: Promise<T>): Promise<T> {
    this.pending.add(what);
    try {
      return await work;
    } finally {
      this.pending.delete(what);
    }
  }

  /** Why the agent is wedged (/healthz answers 503 with it), or null. */
  health(): string | null {
    const overdue = this.applying?.overdue();
    if (overdue) return overdue;
    const fetching = this.fetching ? Date.now() - this.fetching.since : 0;
    if (fetching > FETCH_BOUND_MS) return `the fetch of the lab branch has been running for ${Math.round(fetching / 1000)} s, past its bound of ${FETCH_BOUND_MS / 1000} s`;
    return null;
  }

  /**
   * Fetches the lab repository now and applies a new head; resolves once that head is applied, rejected or given up
   * for a newer one. A webhook calls this too; concurrent calls share one fetch.
   */
  poll(): Promise<void> {
    return this.fetch().then(() => this.applying?.done);
  }

  private fetch(): Promise<void> {
    if (!this.fetching) {
      const done = this.fetchOnce().finally(() => (this.fetching = null));
      this.fetching = { done, since: Date.now() };
    }
    return this.fetching.done;
  }

  /** The next poll is scheduled when the fetch ends, not the apply: a newer commit is seen while an image still downloads. */
  private schedulePoll(): void {
    if (this.stopped) return;
    this.pollTimer = setTimeout(() => void this.fetch().finally(() => this.schedulePoll()), this.nextPoll());
  }

  private readonly nextPoll = (): number => pollSchedule(this.config.lab.pollSeconds * 1000, 0.1)();

  private async fetchOnce(): Promise<void> {
    try {
      // The working tree moves only once the apply in flight has read it.
      await this.applying?.treeReleased;
      if (this.stopped) return;
      const snapshot = await this.source.sync().catch((err: unknown) => {
        if (!(err instanceof RefusedTreeError)) this.metrics.countGitFetch(false);
        throw err;
      });
      this.metrics.countGitFetch(true);
      if (!this.stopped) this.dispatch(snapshot.commit, snapshot.tree);
    } catch (err) {
      if (err instanceof RefusedTreeError) return this.refuseTree(err);
      this.log.error({ err }, 'poll failed; the last good generation keeps serving');
    }
  }

  /** A head whose tree the Git layer refuses is rejected once, like a commit that fails validation. */
  private async refuseTree(err: RefusedTreeError): Promise<void> {
    if (err.commit === this.invalidRevision) return;
    await this.rejectCommit(err.commit, [formatProblem(fileProblem(err.path, { code: 'unsafe-path', message: err.reason }))]);
  }

  /** Starts applying the head unless it is served, rejected or being applied; an apply of another commit is abandoned. */
  private dispatch(commit: string, tree: string): void {
    const current = this.applying;
    if (current?.commit === commit) return;
    if (current) {
      this.log.warn({ revision: current.commit, head: commit }, 'a newer commit arrived; abandoning the apply in flight');
      current.abandon(`commit ${commit.slice(0, 12)} arrived`);
    }
    if (commit === this.generation?.revision || commit === this.invalidRevision) return;
    const apply = new CommitApply(commit);
    const previous = current?.done ?? Promise.resolve();
    apply.done = previous
      .then(() => this.applyCommit(apply, tree))
      .catch((err: unknown) => this.log.error({ err, revision: commit }, 'applying the commit failed unexpectedly'))
      .finally(() => {
        apply.treeDone();
        if (this.applying === apply) this.applying = null;
      });
    this.applying = apply;
  }

  /** One commit is one snapshot: valid and applied whole, or rejected whole while the last good one serves. */
  private async applyCommit(apply: CommitApply, tree: string): Promise<void> {
    const { commit, signal } = apply;
    if (this.generation?.revision === commit || signal.aborted) return;
    const run = this.status.reconciles.start(commit);
    try {
      const { lab, problems } = await this.loadCommit(commit, tree);
      run.mark('validate');
      if (!lab) return await this.rejectCommit(commit, problems.map(formatProblem), run, apply);
      const labSecrets = await this.secrets.withLab(tree, this.config.lab.limits);
      // Known before anything of this commit can be logged; they replace the served commit's once it switches.
      this.redactor.set('next-lab-secrets', labSecrets.values());
      apply.treeDone();
      run.mark('secrets');
      await this.activate(commit, lab, labSecrets, run, apply);
      run.finish(this.generation?.revision === commit ? 'applied' : 'rejected', this.status.site().rejected?.errors.length ?? 0);
    } catch (err) {
      if (!(err instanceof CommitAbandonedError)) throw err;
      this.log.info({ revision: commit, reason: err.message }, 'commit apply abandoned; neither applied nor rejected');
      run.finish('interrupted');
    }
  }

  private async rejectCommit(commit: string, errors: string[], run: ReconcileRun = this.status.reconciles.start(commit), apply?: CommitApply): Promise<void> {
    this.log.warn({ revision: commit, errors }, 'commit rejected; the last good generation keeps serving');
    this.invalidRevision = commit;
    if (!this.generation) await this.restoreLastGood(commit, apply);
    this.rejected(commit, errors);
    run.finish('rejected', errors.length);
  }

  /**
   * The commit's lab, re-reading only the files changed since the commit the loader saw last (valid or not: after
   * "A valid, B invalid, revert to A", the loader holds B, so the diff starts there, not at the served generation).
   */
  private async loadCommit(commit: string, tree: string): Promise<LoadResult> {
    const base = this.loader.revision;
    if (base) {
      try {
        return this.loader.update(tree, await this.source.changedPaths(base, commit), commit);
      } catch (err) {
        this.log.warn({ err, revision: commit, base }, 'incremental load failed; loading the whole commit');
      }
    }
    return this.loader.load(tree, commit);
  }

  /**
   * A restarted agent whose branch head is invalid serves the last commit it had applied, read again from its
   * own clone, rather than nothing.
   */
  private async restoreLastGood(rejected: string, apply?: CommitApply): Promise<void> {
    const lastGood = (await readFile(join(this.config.stateDir, 'last-good'), 'utf8').catch(() => '')).trim();
    if (!lastGood || lastGood === rejected) return;
    const dir = join(this.config.stateDir, 'last-good-tree');
    try {
      await rm(dir, { recursive: true, force: true });
      await this.source.checkoutRevision(lastGood, dir);
      const { lab } = await loadLab(dir, { limits: this.config.lab.limits });
      if (lab) {
        const labSecrets = await this.secrets.withLab(dir, this.config.lab.limits);
        this.redactor.set('next-lab-secrets', labSecrets.values());
        this.log.info({ revision: lastGood }, 'serving the last good commit from before the restart');
        await this.activate(lastGood, lab, labSecrets, undefined, apply);
      }
    } catch (err) {
      this.log.error({ err, revision: lastGood }, 'cannot restore the last good commit');
    }
  }

  /**
   * Fetches the images, renders and switches to the commit. Until the switch, `apply` may abandon it: the images stage
   * carries its signal, the others check it.
   */
  private async activate(commit: string, lab: Lab, labSecrets: Secrets, run?: ReconcileRun, apply?: CommitApply): Promise<void> {
    try {
      for (const image of lab.images.values()) {
        if (!isUsed(lab, image.name)) continue;
        apply?.enter(`images (${image.name})`, this.images.boundMs(image) + APPLY_STAGE_BOUND_MS);
        await this.images.ensureImage(image, apply?.signal);
      }
      run?.mark('images');
      apply?.enter('render', APPLY_STAGE_BOUND_MS);
      const generation = await this.generations.write(lab, commit, new AgentUrls(lab.site));
      run?.mark('render');
      apply?.enter('activate', APPLY_STAGE_BOUND_MS);
      // The old generation's hosts and the new one's: either may be served when this is logged.
      this.knowTokensOf([...(this.generation?.lab.hosts.keys() ?? []), ...lab.hosts.keys()], true);
      // Before anything switches: a port that cannot be bound rejects the commit and no host is acted on.
      await this.services.ensure(lab.site);
      this.generation = generation;
      this.knowTokensOf(lab.hosts.keys(), true);
      this.labSecrets = labSecrets;
      this.redactor.set('lab-secrets', labSecrets.values());
      await this.closeDrivers();
      retainBmcState(lab.hosts.values());
      const names = new Set(lab.hosts.keys());
      await this.tracker.retain(names);
      this.sightings.retain(names);
      this.events.retain(names);
      this.log.info({ revision: commit, generation: generation.id, hosts: lab.hosts.size }, 'commit applied');
      await writeFile(join(this.config.stateDir, 'last-good'), `${commit}\n`);
      this.status.applied(commit);
      this.metrics.setAppliedRevision(commit, generation.id);
      this.events.site('commit-applied', `commit ${commit.slice(0, 12)} applied`);
      for (const host of lab.hosts.keys()) this.status.host(host, this.tracker.get(host));
      await this.alerts.configure(lab.site, commit);
      this.alerts.commitApplied(commit);
      this.drift.configure(lab.site);
      this.backend.changed();
      this.tick();
      run?.mark('activate');
    } catch (err) {
      if (apply?.signal.aborted && this.generation?.revision !== commit) throw apply.signal.reason as Error;
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof ServiceBindError && this.starting) {
        this.log.fatal({ revision: commit, service: err.service, address: err.address, port: err.port, code: err.code }, `${message}; the agent stops`);
        this.startFailure = err;
        return;
      }
      if (err instanceof ServiceBindError) {
        this.log.error({ revision: commit, service: err.service, address: err.address, port: err.port, code: err.code }, `commit rejected: ${message}; the last good generation keeps serving`);
        this.rejected(commit, [message]);
        return;
      }
      this.log.error({ revision: commit, err }, 'commit could not be rendered; the last good generation keeps serving');
      this.rejected(commit, message.split('\n'));
    }
  }

  /**
   * Tells the redactor the tokens of these hosts' current provisioning attempts (src/render/token.ts); `only`:
   * these hosts are all there are (a commit switches), otherwise they are added to those known.
   */
  private knowTokensOf(hosts: Iterable<string>, only: boolean): void {
    if (only) this.attemptTokens.clear();
    for (const host of hosts) {
      const nonce = this.tracker.get(host).attemptNonce;
      if (nonce) this.attemptTokens.set(host, attemptToken(this.agentKey, host, nonce));
    }
    this.redactor.setTokens('attempt-tokens', this.attemptTokens.values());
  }

  private rejected(commit: string, given: string[]): void {
    const errors = given.map((e) => this.redactor.redact(e));
    this.status.rejected(commit, errors);
    this.metrics.countRejection(commit);
    this.events.site('commit-rejected', `commit ${commit.slice(0, 12)} rejected: ${errors[0] ?? ''}${errors.length > 1 ? ` (+${errors.length - 1} more)` : ''}`);
    this.alerts.commitRejected(commit, errors);
    this.backend?.changed();
  }

  /** Decides for every host and starts what must happen. Cheap: runs every reconcile interval. */
  private tick(): void {
    const gen = this.generation;
    if (!gen || this.stopped) return;
    const started = performance.now();
    const inputs = [...gen.hosts].map(([name, rendered]) => ({
      desired: rendered.desired,
      observed: this.tracker.get(name),
      labels: gen.lab.hosts.get(name)?.labels ?? {},
    }));
    for (const decision of reconcile(gen.lab.site, inputs, Date.now())) {
      if (this.executor.isBusy(decision.host)) continue;
      this.status.actionStarted(decision.host, decision.action, decision.desired.revision);
      this.executor.run(decision.desired, decision.action);
    }
    this.metrics.observeReconcile((performance.now() - started) / 1000);
    this.metrics.setHostPhases(inputs.map((i) => i.observed.phase));
  }

  private driverFor(host: string): BmcDriver {
    let driver = this.drivers.get(host);
    if (!driver) {
      const declared = this.generation?.lab.hosts.get(host);
      if (!declared) throw new Error(`host ${host} is not declared`);
      const site = this.generation?.lab.site;
      driver = instrumentBmcDriver(createDriver(declared, this.labSecrets, this.config.bmc, this.log, { ...(site ? { site } : {}), oa: { hostKeyStore: this.sshHostKeys } }), this.metrics);
      this.drivers.set(host, driver);
    }
    return driver;
  }

  /** Drivers are rebuilt per commit (a BMC address or credential may have changed); Redfish sessions are logged out. */
  private async closeDrivers(): Promise<void> {
    const old = [...this.drivers.values()];
    this.drivers.clear();
    for (const driver of old) await driver.close?.().catch(() => undefined);
  }

  private webhookRoute(): { webhook?: { path: string; route: ReturnType<typeof createWebhookRoute> } } {
    const settings = this.config.webhook;
    if (!settings) return {};
    const secret = this.secrets.resolve(settings.credential).password;
    const route = createWebhookRoute(
      (req) => {
        const result = handleWebhook(req, { secret, branch: this.config.lab.branch, log: this.log, maxBodyBytes: settings.maxBodyBytes, ...(settings.repository ? { repository: settings.repository } : {}) });
        if (result.push) void this.poll();
        return result;
      },
      { maxBodyBytes: settings.maxBodyBytes, log: this.log },
    );
    return { webhook: { path: settings.path, route } };
  }
}

/** The graceful part of a stop; the CLI's hard deadline (10 s) lies beyond it. */
const STOP_BUDGET_MS = 8000;
/** A fetch running longer than this (the source's idle timeout does not bound a server that trickles) is wedged. */
const FETCH_BOUND_MS = 10 * 60_000;

function isUsed(lab: Lab, image: string): boolean {
  for (const host of lab.hosts.values()) {
    const boot = lab.profiles.get(host.role)?.boot;
    if (boot?.kind === 'image' && boot.image === image) return true;
  }
  return false;
}
