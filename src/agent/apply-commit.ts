// Applying one commit as the named steps of src/agent/commit-steps.ts: each step's failure becomes its error type,
// the steps done before it are rolled back in reverse, and the commit is recorded once: applied when every step up
// to `publish` succeeded, else rejected with the step and the reason while the previous generation keeps serving.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.ts';
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../log.ts';
import { fileProblem } from '../model/documents.ts';
import { formatProblem, LabLoader, loadLab, type LoadResult } from '../model/load.ts';
import type { Lab } from '../model/types.ts';
import type { HostSightings } from '../observe/drift-sightings.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { ReconcileRun } from '../observe/reconcile-log.ts';
import { reconcile, type ReconcileDecision } from '../plan/reconcile.ts';
import type { Redactor, SecretValue } from '../redact/redactor.ts';
import type { Generation } from '../render/generation.ts';
import { AgentUrls, DEFAULT_TALOS_EVENTS_PORT } from '../render/urls.ts';
import type { Secrets } from '../secrets/secrets.ts';
import { ServiceBindError, type ServicesChange } from '../serve/boot-services.ts';
import type { RecentEvents } from '../serve/dashboard/recent-events.ts';
import type { CommitSnapshot, RefusedTreeError } from '../source/index.ts';
import type { AgentParts } from './agent-parts.ts';
import type { AttemptTokens } from './attempt-tokens.ts';
import { APPLY_STAGE_BOUND_MS, CommitAbandonedError, type CommitApply } from './commit-apply.ts';
import { agentPolicyProblems } from './agent-policy.ts';
import { AgentStepError, CommitStepError, FetchStepError, LoadStepError, RenderStepError, ServicesStepError, SwitchStepError, type CommitStep } from './commit-steps.ts';
import type { AgentConfig } from './config.ts';
import type { HostDrivers } from './host-drivers.ts';
import { labSecretPatterns } from './lab-secret-patterns.ts';
import { openTalosBases } from './talos-bases.ts';
import { TalosBaseResolver, type TalosBase } from '../render/talos/index.ts';

/** The commit being served and what it was served with. */
export interface ServedCommit {
  commit: string;
  generation: Generation;
  /** The agent's own secrets plus the lab's SOPS file of this commit. */
  labSecrets: Secrets;
  /** The values of the SOPS file that are redaction patterns (src/agent/lab-secret-patterns.ts). */
  labPatterns: SecretValue[];
}

/** A loaded commit's secrets: its SOPS file's and its decrypted Talos bases. */
type OpenedSecrets = Pick<ServedCommit, 'labSecrets' | 'labPatterns'> & { talosBases: ReadonlyMap<string, TalosBase> };

/** What the steps use of the agent: its parts, and the served commit it owns. */
export interface CommitStepsContext {
  config: AgentConfig;
  log: Logger;
  parts: AgentParts;
  loader: LabLoader;
  redactor: Redactor;
  tokens: AttemptTokens;
  drivers: HostDrivers;
  metrics: Metrics;
  events: RecentEvents;
  sightings: HostSightings;
  served(): ServedCommit | null;
  serve(next: ServedCommit | null): void;
  /** True while the agent starts: a port that cannot be bound stops it instead of rejecting the commit. */
  starting(): boolean;
  /** A port could not be bound while starting: the agent stops. */
  failStart(err: ServiceBindError): void;
  /** Hands decided actions to the executor (the same as every reconcile pass does). */
  act(decisions: ReconcileDecision[]): void;
}

/** The state file naming the commit last applied, for a restart whose branch head is invalid. */
const LAST_GOOD = 'last-good';

export class CommitSteps {
  /** The newest commit that is not a valid lab: not loaded again until the branch moves. */
  invalidRevision: string | null = null;

  /** The roles' Talos bases, decrypted once per committed text. */
  private readonly talosBases = new TalosBaseResolver();

  constructor(private readonly ctx: CommitStepsContext) {}

  /**
   * One commit is one snapshot: valid and applied whole, or rejected whole while the last good one serves. The load
   * reads `apply.snapshot` (the commit's files in memory, src/source/commit-snapshot.ts) instead of `tree` when given.
   */
  async apply(apply: CommitApply, tree: string): Promise<void> {
    const { commit, signal } = apply;
    if (this.ctx.served()?.commit === commit || signal.aborted) return;
    const run = this.ctx.parts.status.reconciles.start(commit);
    try {
      const { lab, labSecrets, labPatterns, talosBases } = await this.load(apply, tree, run);
      await this.activate(commit, lab, { labSecrets, labPatterns, talosBases }, apply, run);
    } catch (err) {
      if (err instanceof CommitAbandonedError) {
        this.ctx.log.info({ revision: commit, reason: err.message }, 'commit apply abandoned; neither applied nor rejected');
        run.finish('interrupted');
        return;
      }
      if (!(err instanceof CommitStepError)) throw err;
      if (err instanceof LoadStepError) return await this.rejectInvalid(commit, err, run, apply);
      this.rejected(err, run);
    } finally {
      // A path that ended without a record (an unexpected error, a bind failure at start) still ends the run.
      run.finish('rejected');
    }
  }

  /** A head whose tree the Git layer refuses is rejected once at the fetch step, like a commit that fails validation. */
  async refuseTree(err: RefusedTreeError): Promise<void> {
    if (err.commit === this.invalidRevision) return;
    const refused = new FetchStepError(err.commit, err.path, formatProblem(fileProblem(err.path, { code: 'unsafe-path', message: err.reason })), { cause: err });
    await this.rejectInvalid(err.commit, refused, this.ctx.parts.status.reconciles.start(err.commit));
  }

  /**
   * load: the commit's lab, re-reading only the files changed since the commit the loader saw last (valid or not:
   * after "A valid, B invalid, revert to A", the loader holds B, so the diff starts there, not at the served
   * generation), and its secrets. An invalid lab is a LoadStepError carrying every problem.
   */
  private async load(apply: CommitApply, tree: string, run: ReconcileRun): Promise<{ lab: Lab } & OpenedSecrets> {
    const { commit, snapshot } = apply;
    const { lab, problems } = await this.validate(commit, tree, snapshot);
    run.mark('validate');
    if (!lab) throw new LoadStepError(commit, problems);
    const opened = await this.openSecrets(commit, tree, lab, snapshot);
    apply.treeDone();
    run.mark('secrets');
    return { lab, ...opened };
  }

  /**
   * The commit's SOPS file opened. Its values that can be patterns are known to the redactor before anything of
   * this commit can be logged (they replace the served commit's once it switches); a password that cannot be one
   * rejects the commit at its line.
   */
  private async openSecrets(commit: string, tree: string, lab: Lab, snapshot?: CommitSnapshot): Promise<OpenedSecrets> {
    const labSecrets = await this.ctx.parts.secrets.withLab(tree, this.ctx.config.lab.limits, snapshot);
    const { patterns, problems } = labSecretPatterns(labSecrets, lab);
    const talos = await openTalosBases(this.talosBases, lab, labSecrets);
    patterns.push(...talos.patterns);
    this.ctx.redactor.set('next-lab-secrets', patterns);
    problems.push(...talos.problems);
    if (problems.length > 0) throw new LoadStepError(commit, problems);
    const refused = agentPolicyProblems(lab, labSecrets, this.ctx.config);
    if (refused.length > 0) throw new LoadStepError(commit, refused);
    return { labSecrets, labPatterns: patterns, talosBases: talos.bases };
  }

  private async validate(commit: string, tree: string, snapshot: CommitSnapshot | undefined): Promise<LoadResult> {
    const { loader, parts, log } = this.ctx;
    const base = loader.revision;
    if (base) {
      try {
        return loader.update(tree, await parts.source.changedPaths(base, commit), commit, snapshot);
      } catch (err) {
        log.warn({ err, revision: commit, base }, 'incremental load failed; loading the whole commit');
      }
    }
    return loader.load(tree, commit, snapshot);
  }

  /**
   * The steps from render to act for a loaded commit. Until the switch the apply may be abandoned (a newer commit, a
   * stop): the images carry its signal, the other steps check it, and what was done is rolled back.
   */
  private async activate(commit: string, lab: Lab, secrets: OpenedSecrets, apply: CommitApply | undefined, run: ReconcileRun | undefined): Promise<void> {
    const { ctx } = this;
    const { parts } = ctx;
    const undo: Array<{ step: CommitStep; rollback: () => Promise<void> }> = [];
    let step: CommitStep = 'render';
    let switched = false;
    let services: ServicesChange | undefined;
    let decisions: ReconcileDecision[] = [];
    try {
      const previous = ctx.served();
      const generation = await this.render(commit, lab, apply, run, secrets.talosBases);
      undo.push({ step, rollback: () => parts.generations.restoreCurrent(previous?.generation ?? null) });

      step = 'services';
      apply?.enter('activate', APPLY_STAGE_BOUND_MS);
      // The old generation's hosts and the new one's: either may be served when this is logged.
      ctx.tokens.know([...(previous?.generation.lab.hosts.keys() ?? []), ...lab.hosts.keys()], true);
      // Before anything switches: a port that cannot be bound rejects the commit and no host is acted on.
      const change = (services = await parts.services.ensure(lab.site));
      undo.push({ step, rollback: () => change.rollback() });
      apply?.signal.throwIfAborted();

      step = 'switch';
      await this.switchTo({ commit, generation, labSecrets: secrets.labSecrets, labPatterns: secrets.labPatterns });
      switched = true;
      undo.push({ step, rollback: () => this.switchBack(previous) });

      step = 'decide';
      decisions = this.decide(generation);

      step = 'publish';
      await this.publish(commit, generation, previous?.generation ?? null, run);
    } catch (err) {
      for (const done of undo.reverse()) {
        await done.rollback().catch((e: unknown) => ctx.log.error({ err: e, revision: commit, step: done.step }, `rolling back the ${done.step} step failed`));
      }
      // Abandoned before the switch (whatever the step threw on its way out): neither applied nor rejected.
      if (apply?.signal.aborted && !switched) throw apply.signal.reason as Error;
      if (err instanceof CommitAbandonedError) throw err;
      if (err instanceof ServiceBindError && ctx.starting()) {
        ctx.log.fatal({ revision: commit, service: err.service, address: err.address, port: err.port, code: err.code }, `${err.message}; the agent stops`);
        ctx.failStart(err);
        return;
      }
      throw failedStep(step, commit, err);
    }
    // Recorded applied: nothing is undone any more. The replaced servers retire, and the hosts are acted on.
    await services?.commit();
    try {
      ctx.act(decisions);
    } catch (err) {
      // The commit stays applied; each reconcile pass decides and acts again.
      ctx.log.error({ err: new AgentStepError('act', commit, err), revision: commit }, 'the decided actions could not all be handed to the executor; the next reconcile pass tries again');
    }
  }

  /** render: the images the commit uses, downloaded once and verified, and its generation written. */
  private async render(commit: string, lab: Lab, apply: CommitApply | undefined, run: ReconcileRun | undefined, talosBases: ReadonlyMap<string, TalosBase>): Promise<Generation> {
    const { images, generations } = this.ctx.parts;
    const used = usedImages(lab);
    for (const image of lab.images.values()) {
      if (!used.has(image.name)) continue;
      apply?.enter(`images (${image.name})`, images.boundMs(image) + APPLY_STAGE_BOUND_MS);
      await images.ensureImage(image, apply?.signal);
    }
    run?.mark('images');
    apply?.enter('render', APPLY_STAGE_BOUND_MS);
    // The Talos event sink runs once a profile converges on talosEvents; the kernel line and config name its port.
    const { serve } = this.ctx.config;
    const talosEventsPort = await this.ctx.parts.converge.ensureSink(lab, serve.bindAddress, serve.talosEvents ?? { port: DEFAULT_TALOS_EVENTS_PORT });
    const generation = await generations.write(lab, commit, new AgentUrls(lab.site, talosEventsPort !== undefined ? { talosEventsPort } : {}), talosBases);
    run?.mark('render');
    return generation;
  }

  /**
   * switch: the commit becomes last-good on disk first (written whole, or not at all on a full disk), then the
   * generation, its secrets and its hosts' drivers are the served ones.
   */
  private async switchTo(next: ServedCommit): Promise<void> {
    const { ctx } = this;
    await writeFileAtomic(join(ctx.config.stateDir, LAST_GOOD), `${next.commit}\n`);
    const lab = next.generation.lab;
    ctx.serve(next);
    ctx.tokens.know(lab.hosts.keys(), true);
    ctx.redactor.set('lab-secrets', next.labPatterns);
    await ctx.drivers.switchedTo(lab);
    const names = new Set(lab.hosts.keys());
    // The journal forgets hosts that left the lab; a write that fails now is made whole by the next one.
    await ctx.parts.tracker.retain(names).catch((err: unknown) => ctx.log.warn({ err }, 'the journal could not drop the hosts that left the lab; the next write does'));
    ctx.sightings.retain(names);
    ctx.events.retain(names);
  }

  /** The switch undone: the previous generation served again, and last-good names it again. */
  private async switchBack(previous: ServedCommit | null): Promise<void> {
    const { ctx } = this;
    ctx.serve(previous);
    ctx.tokens.know(previous?.generation.lab.hosts.keys() ?? [], true);
    if (previous) {
      ctx.redactor.set('lab-secrets', previous.labPatterns);
      await ctx.drivers.switchedTo(previous.generation.lab);
      await writeFileAtomic(join(ctx.config.stateDir, LAST_GOOD), `${previous.commit}\n`);
    }
  }

  /** decide: the reconcile decision for every host of the generation, with what is observed now. Pure. */
  private decide(generation: Generation): ReconcileDecision[] {
    const { tracker } = this.ctx.parts;
    const inputs = [...generation.hosts].map(([name, rendered]) => ({ desired: rendered.desired, observed: tracker.get(name), labels: generation.lab.hosts.get(name)?.labels ?? {} }));
    return reconcile(generation.lab.site, inputs, Date.now());
  }

  /**
   * publish: the services of the new commit set up (alert sinks, drift schedule), then the commit recorded applied
   * on the status branch, in the metrics, the events and the alerts; the record comes last, so nothing after it fails.
   */
  private async publish(commit: string, generation: Generation, previous: Generation | null, run: ReconcileRun | undefined): Promise<void> {
    const { ctx } = this;
    const { status, alerts, drift, backend, tracker } = ctx.parts;
    const lab = generation.lab;
    await alerts.configure(lab.site, commit);
    drift.configure(lab.site);
    ctx.log.info({ revision: commit, generation: generation.id, hosts: lab.hosts.size }, 'commit applied');
    status.applied(commit);
    status.generationServed(previous, (host) => tracker.get(host));
    ctx.metrics.setAppliedRevision(commit, generation.id);
    ctx.events.site('commit-applied', `commit ${commit.slice(0, 12)} applied`);
    alerts.commitApplied(commit);
    backend.changed();
    run?.mark('activate');
    run?.finish('applied', 0);
    // A first checkout's working tree, left for after the load (src/source/git-source.ts): written while the act step runs.
    void ctx.parts.source.written();
  }

  /** A step failed: recorded once, with the step and the reason; the previous generation keeps serving. */
  private rejected(err: CommitStepError, run?: ReconcileRun): void {
    const { ctx } = this;
    const { commit, step } = err;
    const errors = err.reasons.map((e) => ctx.redactor.redact(e));
    const cause = err.cause;
    const bind = err instanceof ServicesStepError ? err.bind : undefined;
    if (bind) {
      ctx.log.error({ revision: commit, step, service: bind.service, address: bind.address, port: bind.port, code: bind.code }, `commit rejected: ${ctx.redactor.redact(bind.message)}; the last good generation keeps serving`);
    } else if (step === 'load' || step === 'fetch') {
      ctx.log.warn({ revision: commit, step, errors }, 'commit rejected; the last good generation keeps serving');
    } else if (step === 'render') {
      ctx.log.error({ revision: commit, step, err: cause ?? err }, 'commit could not be rendered; the last good generation keeps serving');
    } else {
      ctx.log.error({ revision: commit, step, err: cause ?? err }, `commit rejected at the ${step} step; the last good generation keeps serving`);
    }
    const { status, alerts, backend } = ctx.parts;
    status.rejected(commit, errors, step);
    ctx.metrics.countRejection(commit);
    ctx.events.site('commit-rejected', `commit ${commit.slice(0, 12)} rejected: ${errors[0] ?? ''}${errors.length > 1 ? ` (+${errors.length - 1} more)` : ''}`);
    alerts.commitRejected(commit, errors);
    backend.changed();
    run?.finish('rejected', errors.length);
  }

  /** An invalid commit: not loaded again until the branch moves; a restarted agent serves its last good one meanwhile. */
  private async rejectInvalid(commit: string, err: CommitStepError, run: ReconcileRun, apply?: CommitApply): Promise<void> {
    this.invalidRevision = commit;
    if (!this.ctx.served()) await this.restoreLastGood(commit, apply);
    this.rejected(err, run);
  }

  /**
   * A restarted agent whose branch head is invalid serves the last commit it had applied, read again from its
   * own clone, rather than nothing.
   */
  private async restoreLastGood(rejected: string, apply?: CommitApply): Promise<void> {
    const { ctx } = this;
    const lastGood = (await readFile(join(ctx.config.stateDir, LAST_GOOD), 'utf8').catch(() => '')).trim();
    if (!lastGood || lastGood === rejected) return;
    const dir = join(ctx.config.stateDir, 'last-good-tree');
    try {
      await rm(dir, { recursive: true, force: true });
      await ctx.parts.source.checkoutRevision(lastGood, dir);
      const { lab } = await loadLab(dir, { limits: ctx.config.lab.limits });
      if (!lab) return;
      const secrets = await this.openSecrets(lastGood, dir, lab);
      ctx.log.info({ revision: lastGood }, 'serving the last good commit from before the restart');
      await this.activate(lastGood, lab, secrets, apply, undefined);
    } catch (err) {
      if (err instanceof CommitAbandonedError) throw err;
      ctx.log.error({ err: err instanceof CommitStepError ? errorMessage(err) : err, revision: lastGood }, 'cannot restore the last good commit');
    }
  }
}

/** What failing at `step` is, as that step's error type. */
function failedStep(step: CommitStep, commit: string, err: unknown): CommitStepError {
  switch (step) {
    case 'render':
      return new RenderStepError(commit, err);
    case 'services':
      return new ServicesStepError(commit, err instanceof ServiceBindError ? err : undefined, err);
    case 'switch':
      return new SwitchStepError(commit, LAST_GOOD, err);
    case 'decide':
    case 'publish':
    case 'act':
      return new AgentStepError(step, commit, err);
    default:
      throw new Error(`the ${step} step has no failure of this kind`, { cause: err });
  }
}

/** The images some host's role boots, and the one unknown machines boot while discovery is enabled (src/discover/agent-discovery.ts). */
function usedImages(lab: Lab): Set<string> {
  const roles = new Set<string>();
  for (const host of lab.hosts.values()) roles.add(host.role);
  const images = new Set<string>();
  for (const role of roles) {
    const boot = lab.profiles.get(role)?.boot;
    if (boot?.kind === 'image') images.add(boot.image);
  }
  const discovery = lab.site.discovery;
  if (discovery.enabled && discovery.image !== undefined) images.add(discovery.image);
  return images;
}
