import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BmcDriver } from '../bmc/driver.ts';
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
import { GenerationWriter, type Generation } from '../render/generation.ts';
import { ImageCache } from '../render/image-cache.ts';
import { hostToken } from '../render/token.ts';
import { AgentUrls } from '../render/urls.ts';
import { GitSource, RefusedTreeError } from '../source/index.ts';
import { StatusWriter } from '../status/index.ts';
import { AgentAlerts } from './agent-alerts.ts';
import { loadAgentKey } from './agent-key.ts';
import { AgentBootBackend } from './boot-backend.ts';
import type { AgentConfig } from './config.ts';
import { BootServices } from './boot-services.ts';
import { createDriver, retainBmcState } from './drivers.ts';
import { DriftLoop } from './drift-loop.ts';
import { Executor } from './executor.ts';
import { HostTracker } from './host-tracker.ts';
import { Secrets } from './secrets.ts';
import { StatusPublisher } from './status-publisher.ts';

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
  private polling: Promise<void> | null = null;
  private stopped = false;
  /** The newest commit that failed validation: not validated again until the branch moves. */
  private invalidRevision: string | null = null;

  constructor(private readonly config: AgentConfig, private readonly log: Logger) {
    this.loader = new LabLoader({ limits: config.lab.limits });
  }

  get current(): Generation | null {
    return this.generation;
  }

  async start(): Promise<void> {
    const { stateDir } = this.config;
    await mkdir(stateDir, { recursive: true });
    this.agentKey = await loadAgentKey(stateDir);
    this.generations = new GenerationWriter(stateDir, (h) => hostToken(this.agentKey, h), {
      onPruneError: (err) => this.log.warn({ err }, 'old generations could not be removed; retried at the next commit'),
    });
    this.secrets = await Secrets.load(this.config.secretsFile, process.env, this.config.ageKeyFile ? { ageKeyFile: this.config.ageKeyFile } : {});
    this.labSecrets = this.secrets;
    this.images = new ImageCache(join(stateDir, 'images'), this.log);
    this.tracker = new HostTracker(new Journal(join(stateDir, 'journal.json')), this.log);
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
    this.status = new StatusPublisher(writer, () => this.generation, { drifts: (h) => this.drift?.driftsOf(h) ?? [], metrics: this.metrics });
    await this.status.restore((h) => this.tracker.get(h));
    this.alerts = new AgentAlerts(stateDir, (name) => this.labSecrets.resolve(name).password, this.log);
    this.tracker.onChange((host, state, event) => {
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
      actionStarted: (h, action, revision) => this.status.actionStarted(h, action, revision),
    });
    this.backend = new AgentBootBackend(() => this.generation, this.tracker, this.images, this.agentKey, this.log, {
      sightings: this.sightings,
      events: this.events,
      site: () => this.status.site(),
      drifts: (h) => this.drift.driftsOf(h),
      actions: (h) => this.status.actionsOf(h),
    });
    this.services = new BootServices(this.config, this.backend, () => this.generation, this.log, { metrics: this.metrics, ...this.webhookRoute() });
    writer.start();
    this.log.info({ lab: redact(this.config.lab.url), branch: this.config.lab.branch, stateDir }, 'agent starting');
    await this.poll();
    this.schedulePoll();
    this.tickTimer = setInterval(() => this.tick(), this.config.reconcileIntervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.tickTimer) clearInterval(this.tickTimer);
    await this.polling;
    await this.drift?.stop();
    await this.executor?.idle();
    await this.alerts?.stop();
    await this.status?.stop();
    await this.sightings.flush();
    await this.services?.stop();
    await this.closeDrivers();
    retainBmcState([]);
    this.log.info('agent stopped');
  }

  /** Fetches the lab repository now; a webhook calls this too. Concurrent calls share one fetch. */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => (this.polling = null));
    return this.polling;
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.pollTimer = setTimeout(() => void this.poll().finally(() => this.schedulePoll()), this.nextPoll());
  }

  private readonly nextPoll = (): number => pollSchedule(this.config.lab.pollSeconds * 1000, 0.1)();

  private async pollOnce(): Promise<void> {
    try {
      const snapshot = await this.source.sync().catch((err: unknown) => {
        if (!(err instanceof RefusedTreeError)) this.metrics.countGitFetch(false);
        throw err;
      });
      this.metrics.countGitFetch(true);
      if (snapshot.commit === this.generation?.revision || snapshot.commit === this.invalidRevision) return;
      await this.applyCommit(snapshot.commit, snapshot.tree);
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

  /** One commit is one snapshot: valid and applied whole, or rejected whole while the last good one serves. */
  private async applyCommit(commit: string, tree: string): Promise<void> {
    if (this.generation?.revision === commit) return;
    const run = this.status.reconciles.start(commit);
    const { lab, problems } = await this.loadCommit(commit, tree);
    run.mark('validate');
    if (!lab) return this.rejectCommit(commit, problems.map(formatProblem), run);
    this.labSecrets = await this.secrets.withLab(tree, this.config.lab.limits);
    run.mark('secrets');
    await this.activate(commit, lab, run);
    run.finish(this.generation?.revision === commit ? 'applied' : 'rejected', this.status.site().rejected?.errors.length ?? 0);
  }

  private async rejectCommit(commit: string, errors: string[], run: ReconcileRun = this.status.reconciles.start(commit)): Promise<void> {
    this.log.warn({ revision: commit, errors }, 'commit rejected; the last good generation keeps serving');
    this.invalidRevision = commit;
    if (!this.generation) await this.restoreLastGood(commit);
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
  private async restoreLastGood(rejected: string): Promise<void> {
    const lastGood = (await readFile(join(this.config.stateDir, 'last-good'), 'utf8').catch(() => '')).trim();
    if (!lastGood || lastGood === rejected) return;
    const dir = join(this.config.stateDir, 'last-good-tree');
    try {
      await rm(dir, { recursive: true, force: true });
      await this.source.checkoutRevision(lastGood, dir);
      const { lab } = await loadLab(dir, { limits: this.config.lab.limits });
      if (lab) {
        this.labSecrets = await this.secrets.withLab(dir, this.config.lab.limits);
        this.log.info({ revision: lastGood }, 'serving the last good commit from before the restart');
        await this.activate(lastGood, lab);
      }
    } catch (err) {
      this.log.error({ err, revision: lastGood }, 'cannot restore the last good commit');
    }
  }

  private async activate(commit: string, lab: Lab, run?: ReconcileRun): Promise<void> {
    try {
      for (const image of lab.images.values()) if (isUsed(lab, image.name)) await this.images.ensureImage(image);
      run?.mark('images');
      const generation = await this.generations.write(lab, commit, new AgentUrls(lab.site));
      run?.mark('render');
      this.generation = generation;
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
      await this.services.ensure(lab.site);
      await this.alerts.configure(lab.site, commit);
      this.alerts.commitApplied(commit);
      this.drift.configure(lab.site);
      this.backend.changed();
      this.tick();
      run?.mark('activate');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error({ revision: commit, err }, 'commit could not be rendered; the last good generation keeps serving');
      this.rejected(commit, message.split('\n'));
    }
  }

  private rejected(commit: string, errors: string[]): void {
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
      driver = instrumentBmcDriver(createDriver(declared, this.labSecrets, this.config.bmc, this.log, site ? { site } : {}), this.metrics);
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

function isUsed(lab: Lab, image: string): boolean {
  for (const host of lab.hosts.values()) {
    const boot = lab.profiles.get(host.role)?.boot;
    if (boot?.kind === 'image' && boot.image === image) return true;
  }
  return false;
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//');
}
