import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BmcDriver } from '../bmc/driver.ts';
import type { Logger } from '../log.ts';
import { formatProblem, loadLab } from '../model/load.ts';
import type { Lab } from '../model/types.ts';
import { Journal } from '../observe/journal.ts';
import { reconcile } from '../plan/reconcile.ts';
import { writeGeneration, type Generation } from '../render/generation.ts';
import { ImageCache } from '../render/image-cache.ts';
import { hostToken } from '../render/token.ts';
import { AgentUrls } from '../render/urls.ts';
import { GitSource } from '../source/index.ts';
import { StatusWriter } from '../status/index.ts';
import { loadAgentKey } from './agent-key.ts';
import { AgentBootBackend } from './boot-backend.ts';
import type { AgentConfig } from './config.ts';
import { BootServices } from './boot-services.ts';
import { createDriver } from './drivers.ts';
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
  private readonly drivers = new Map<string, BmcDriver>();
  private tracker!: HostTracker;
  private executor!: Executor;
  private source!: GitSource;
  private status!: StatusPublisher;
  private images!: ImageCache;
  private secrets!: Secrets;
  private agentKey!: Buffer;
  private backend!: AgentBootBackend;
  private services!: BootServices;
  private pollTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private stopped = false;
  /** The newest commit that failed validation: not validated again until the branch moves. */
  private invalidRevision: string | null = null;

  constructor(private readonly config: AgentConfig, private readonly log: Logger) {}

  get current(): Generation | null {
    return this.generation;
  }

  async start(): Promise<void> {
    const { stateDir } = this.config;
    await mkdir(stateDir, { recursive: true });
    this.agentKey = await loadAgentKey(stateDir);
    this.secrets = await Secrets.load(this.config.secretsFile);
    this.images = new ImageCache(join(stateDir, 'images'), this.log);
    this.tracker = new HostTracker(new Journal(join(stateDir, 'journal.json')), this.log);
    await this.tracker.load();
    const auth = this.config.lab.credential ? this.secrets.resolve(this.config.lab.credential) : undefined;
    this.source = new GitSource({ url: this.config.lab.url, branch: this.config.lab.branch, dir: join(stateDir, 'lab'), log: this.log, ...(auth ? { auth } : {}) });
    const writer = new StatusWriter({
      url: this.config.lab.url,
      branch: this.config.status.branch,
      dir: join(stateDir, 'status'),
      author: this.config.status.author,
      log: this.log,
      batchMs: this.config.status.batchSeconds * 1000,
      ...(auth ? { auth } : {}),
    });
    this.status = new StatusPublisher(writer, () => this.generation);
    this.tracker.onChange((host, state) => this.status.host(host, state));
    this.backend = new AgentBootBackend(() => this.generation, this.tracker, this.images, this.agentKey, this.log);
    this.services = new BootServices(this.config, this.backend, () => this.generation, this.log);
    this.executor = new Executor(this.tracker, (h) => this.driverFor(h), (h) => this.generation?.lab.hosts.get(h)?.hardware.firmware ?? 'bios', this.log);
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
    await this.status?.stop();
    await this.services?.stop();
    for (const driver of this.drivers.values()) await driver.close?.();
    this.log.info('agent stopped');
  }

  /** Fetches the lab repository now; a webhook calls this too. Concurrent calls share one fetch. */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => (this.polling = null));
    return this.polling;
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    const base = this.config.lab.pollSeconds * 1000;
    const jitter = base * 0.1 * Math.random();
    this.pollTimer = setTimeout(() => void this.poll().finally(() => this.schedulePoll()), base + jitter);
  }

  private async pollOnce(): Promise<void> {
    try {
      const snapshot = await this.source.sync();
      if (snapshot.commit === this.generation?.revision || snapshot.commit === this.invalidRevision) return;
      await this.applyCommit(snapshot.commit, snapshot.tree);
    } catch (err) {
      this.log.error({ err }, 'poll failed; the last good generation keeps serving');
    }
  }

  /** One commit is one snapshot: valid and applied whole, or rejected whole while the last good one serves. */
  private async applyCommit(commit: string, tree: string): Promise<void> {
    if (this.generation?.revision === commit) return;
    const { lab, problems } = await loadLab(tree);
    if (!lab) {
      const errors = problems.map(formatProblem);
      this.log.warn({ revision: commit, errors }, 'commit rejected; the last good generation keeps serving');
      this.invalidRevision = commit;
      if (!this.generation) await this.restoreLastGood(commit);
      this.status.rejected(commit, errors);
      return;
    }
    await this.activate(commit, lab);
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
      const { lab } = await loadLab(dir);
      if (lab) {
        this.log.info({ revision: lastGood }, 'serving the last good commit from before the restart');
        await this.activate(lastGood, lab);
      }
    } catch (err) {
      this.log.error({ err, revision: lastGood }, 'cannot restore the last good commit');
    }
  }

  private async activate(commit: string, lab: Lab): Promise<void> {
    try {
      for (const image of lab.images.values()) if (isUsed(lab, image.name)) await this.images.ensureImage(image);
      const generation = await writeGeneration(this.config.stateDir, {
        lab,
        urls: new AgentUrls(lab.site),
        revision: commit,
        token: (h) => hostToken(this.agentKey, h),
      });
      this.generation = generation;
      this.drivers.clear();
      await this.tracker.retain(new Set(lab.hosts.keys()));
      this.log.info({ revision: commit, generation: generation.id, hosts: lab.hosts.size }, 'commit applied');
      await writeFile(join(this.config.stateDir, 'last-good'), `${commit}\n`);
      this.status.applied(commit);
      for (const host of lab.hosts.keys()) this.status.host(host, this.tracker.get(host));
      await this.services.ensure(lab.site);
      this.tick();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error({ revision: commit, err }, 'commit could not be rendered; the last good generation keeps serving');
      this.status.rejected(commit, message.split('\n'));
    }
  }

  /** Decides for every host and starts what must happen. Cheap: runs every reconcile interval. */
  private tick(): void {
    const gen = this.generation;
    if (!gen || this.stopped) return;
    const inputs = [...gen.hosts].map(([name, rendered]) => ({
      desired: rendered.desired,
      observed: this.tracker.get(name),
      labels: gen.lab.hosts.get(name)?.labels ?? {},
    }));
    for (const decision of reconcile(gen.lab.site, inputs, Date.now())) {
      if (this.executor.isBusy(decision.host)) continue;
      this.executor.run(decision.desired, decision.action);
    }
  }

  private driverFor(host: string): BmcDriver {
    let driver = this.drivers.get(host);
    if (!driver) {
      const declared = this.generation?.lab.hosts.get(host);
      if (!declared) throw new Error(`host ${host} is not declared`);
      driver = createDriver(declared, this.secrets, this.config.bmc, this.log);
      this.drivers.set(host, driver);
    }
    return driver;
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
