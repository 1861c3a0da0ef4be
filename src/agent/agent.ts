import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FileHostKeyStore } from '../bmc/oa/host-key.ts';
import type { Logger } from '../log.ts';
import { LabLoader } from '../model/load.ts';
import { HostSightings } from '../observe/drift-sightings.ts';
import { Metrics } from '../observe/metrics.ts';
import { reconcile, type ReconcileDecision } from '../plan/reconcile.ts';
import { FiringCache, nextTickDelay } from '../plan/schedules.ts';
import { Redactor } from '../redact/redactor.ts';
import { redactUrl } from '../redact/url.ts';
import type { Generation } from '../render/generation.ts';
import type { ServiceBindError } from '../serve/boot-services.ts';
import { RecentEvents } from '../serve/dashboard/recent-events.ts';
import { RefusedTreeError, type SyncResult } from '../source/index.ts';
import { pollSchedule } from '../source/webhook.ts';
import { assembleAgent, type AgentParts } from './agent-parts.ts';
import { CommitSteps, type ServedCommit } from './apply-commit.ts';
import { AttemptTokens } from './attempt-tokens.ts';
import { CommitApply } from './commit-apply.ts';
import type { AgentConfig } from './config.ts';
import { HostDrivers } from './host-drivers.ts';
import { StopSteps } from './stop-steps.ts';

/** What start() builds: the collaborators and what applies commits with them. */
interface Running {
  parts: AgentParts;
  steps: CommitSteps;
}

/**
 * The long-running agent: polls the lab repository, applies each commit whole or not at all as the named steps of
 * src/agent/commit-steps.ts, serves boot files for the current generation, drives BMCs toward what the commit
 * declares, and reports status.
 */
export class Agent {
  readonly metrics = new Metrics();
  /** Keeps the last commit's files parsed and checked: a commit re-reads only the files it changed. */
  private readonly loader: LabLoader;
  private readonly events = new RecentEvents();
  private readonly sightings = new HostSightings();
  /** Knows every secret the agent holds; the logger given here should write through it too (see agentCommand). */
  private readonly redactor: Redactor;
  private readonly drivers: HostDrivers;
  private started: Running | null = null;
  /** The commit served now: its generation and the secrets it is served with. */
  private served: ServedCommit | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  /** Cron firings of the power schedules and windows, each distinct expression evaluated once per pass. */
  private readonly firings = new FiringCache();
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

  constructor(private readonly config: AgentConfig, private readonly log: Logger, options: { redactor?: Redactor } = {}) {
    this.redactor = options.redactor ?? new Redactor();
    this.loader = new LabLoader({ limits: config.lab.limits });
    this.drivers = new HostDrivers(config.bmc, log, this.metrics, () => (this.served ? { lab: this.served.generation.lab, secrets: this.served.labSecrets } : null), new FileHostKeyStore(join(config.stateDir, 'ssh-host-keys.json')));
  }

  get current(): Generation | null {
    return this.served?.generation ?? null;
  }

  async start(): Promise<void> {
    const { stateDir } = this.config;
    await mkdir(stateDir, { recursive: true });
    const parts = await assembleAgent(this.config, this.log, { metrics: this.metrics, events: this.events, sightings: this.sightings, redactor: this.redactor }, {
      current: () => this.current,
      labSecret: (name) => (this.served?.labSecrets ?? parts.secrets).resolve(name).password,
      driverFor: (host) => this.drivers.driverFor(host),
      attemptStarted: (host) => tokens.know([host], false),
      health: () => this.health(),
      poll: () => void this.poll(),
    });
    const tokens = new AttemptTokens(parts.agentKey, this.redactor, (host) => parts.tracker.get(host).attemptNonce);
    const steps = new CommitSteps({
      config: this.config,
      log: this.log,
      parts,
      loader: this.loader,
      redactor: this.redactor,
      tokens,
      drivers: this.drivers,
      metrics: this.metrics,
      events: this.events,
      sightings: this.sightings,
      served: () => this.served,
      serve: (next) => (this.served = next),
      starting: () => this.starting,
      failStart: (err) => (this.startFailure = err),
      act: (decisions) => this.act(decisions),
    });
    this.started = { parts, steps };
    await this.during('reading the status branch', parts.status.restore((h) => parts.tracker.get(h)));
    parts.statusWriter.start();
    this.log.info({ lab: redactUrl(this.config.lab.url), branch: this.config.lab.branch, stateDir }, 'agent starting');
    if (this.stopped) return;
    // Polling starts before the first commit is applied, so a first commit stuck on an image cannot keep a fix out.
    this.schedulePoll();
    this.scheduleTick();
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
    if (this.tickTimer) clearTimeout(this.tickTimer);
    const steps = (this.stopping = new StopSteps(STOP_BUDGET_MS, this.log));
    const parts = this.started?.parts;
    this.applying?.abandon('the agent is stopping');
    await steps.wait('applying a commit', this.applying?.done, 1000, true);
    await steps.wait('fetching the lab branch', this.fetching?.done, 1000, true);
    parts?.source.close();
    await steps.wait('writing the lab tree', parts?.source.written(), 2000);
    await steps.wait('drift scan', parts?.drift.stop(), 1000);
    await steps.wait('BMC actions', parts?.executor.idle(), 3000, true);
    parts?.tracker.close();
    await steps.wait('alert deliveries', parts?.alerts.stop(), 1000);
    await steps.wait('discovery proposals', parts?.discovery.idle(), 1000);
    await steps.wait('status push', parts?.status.stop(), 3000);
    await steps.wait('sightings', this.sightings.flush(), 500);
    await steps.wait('boot services', parts?.services.stop(), 1000);
    await steps.wait('Talos event sink', parts?.converge.stop(), 1000);
    await steps.wait('closing BMC sessions', this.drivers.close(), 1000);
    const left = this.running();
    if (left.length > 0) this.log.warn({ stillRunning: left }, `agent stopped; left running: ${left.join('; ')}`);
    else this.log.info('agent stopped');
  }

  /** What is still in flight: for a stop that must say what it leaves behind. */
  running(): string[] {
    const parts = this.started?.parts;
    const busy = parts?.executor.busyHosts() ?? [];
    return [
      ...(this.stopping?.running() ?? []),
      ...this.pending,
      ...(this.applying ? [this.applying.describe()] : []),
      ...(this.fetching ? [`fetching the lab branch (${Math.round((Date.now() - this.fetching.since) / 1000)} s)`] : []),
      ...(parts?.images.running() ?? []),
      ...(parts?.discovery.running() ?? []),
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

  /** fetch, the first step: the lab branch's head, handed on to be applied. */
  private async fetchOnce(): Promise<void> {
    const running = this.started;
    if (!running) return;
    try {
      // The working tree moves only once the apply in flight has read it.
      await this.applying?.treeReleased;
      if (this.stopped) return;
      const snapshot = await running.parts.source.sync().catch((err: unknown) => {
        if (!(err instanceof RefusedTreeError)) this.metrics.countGitFetch(false);
        throw err;
      });
      this.metrics.countGitFetch(true);
      if (!this.stopped) this.dispatch(running.steps, snapshot);
    } catch (err) {
      if (err instanceof RefusedTreeError) return running.steps.refuseTree(err);
      this.log.error({ err }, 'poll failed; the last good generation keeps serving');
    }
  }

  /** Starts applying the head unless it is served, rejected or being applied; an apply of another commit is abandoned. */
  private dispatch(steps: CommitSteps, { commit, tree, snapshot }: SyncResult): void {
    const current = this.applying;
    if (current?.commit === commit) return;
    if (current) {
      this.log.warn({ revision: current.commit, head: commit }, 'a newer commit arrived; abandoning the apply in flight');
      current.abandon(`commit ${commit.slice(0, 12)} arrived`);
    }
    if (commit === this.served?.commit || commit === steps.invalidRevision) return;
    const apply = new CommitApply(commit);
    apply.snapshot = snapshot;
    const previous = current?.done ?? Promise.resolve();
    apply.done = previous
      .then(() => steps.apply(apply, tree))
      .catch((err: unknown) => this.log.error({ err, revision: commit }, 'applying the commit failed unexpectedly'))
      .finally(() => {
        apply.treeDone();
        void this.started?.parts.source.written(); // a first checkout's tree, if the apply ended before publishing
        if (this.applying === apply) this.applying = null;
      });
    this.applying = apply;
  }

  /**
   * The next reconcile pass, once this one ended and at least as long after it as it took: a slow pass cannot keep
   * the poll's timer, the boot services and the webhook from their turn (a pass is also cheap: src/plan/schedules.ts).
   */
  private scheduleTick(delay = this.config.reconcileIntervalMs): void {
    if (this.stopped) return;
    this.tickTimer = setTimeout(() => {
      const started = performance.now();
      try {
        this.tick();
      } finally {
        this.scheduleTick(nextTickDelay(this.config.reconcileIntervalMs, performance.now() - started));
      }
    }, delay);
  }

  /** A reconcile pass: decide for every host, act on what must happen. Cheap: runs every reconcile interval. */
  private tick(): void {
    const served = this.served;
    const parts = this.started?.parts;
    if (!served || !parts || this.stopped) return;
    const gen = served.generation;
    parts.converge.tick();
    const inputs = [...gen.hosts].map(([name, rendered]) => ({ desired: rendered.desired, observed: parts.tracker.get(name), labels: gen.lab.hosts.get(name)?.labels ?? {} }));
    this.act(reconcile(gen.lab.site, inputs, Date.now(), this.firings));
  }

  /** act: each decided action to the executor, unless its host is busy; the action itself runs in the background. */
  private act(decisions: ReconcileDecision[]): void {
    const parts = this.started?.parts;
    if (!parts || this.stopped) return;
    const started = performance.now();
    for (const decision of decisions) {
      if (parts.executor.isBusy(decision.host)) continue;
      parts.status.actionStarted(decision.host, decision.action, decision.desired.revision);
      parts.executor.run(decision.desired, decision.action);
    }
    this.metrics.observeReconcile((performance.now() - started) / 1000);
    this.metrics.setHostPhases(decisions.map((d) => parts.tracker.get(d.host).phase));
  }
}

/** The graceful part of a stop; the CLI's hard deadline (10 s) lies beyond it. */
const STOP_BUDGET_MS = 8000;
/** A fetch running longer than this (the source's idle timeout does not bound a server that trickles) is wedged. */
const FETCH_BOUND_MS = 10 * 60_000;
