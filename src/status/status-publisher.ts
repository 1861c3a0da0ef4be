import type { Drift } from '../observe/drift.ts';
import { HostActions } from '../observe/host-actions.ts';
import type { HostEvent } from '../core/host-lifecycle.ts';
import type { Metrics } from '../observe/metrics.ts';
import { ReconcileLog, SYSTEM_CLOCK, type ActivityClock } from '../observe/reconcile-log.ts';
import type { Action } from '../plan/types.ts';
import type { DesiredHost, ObservedHost } from '../core/host-state.ts';
import type { Generation } from '../render/generation.ts';
import type { HostAction, ReconcileRecord } from '../observe/activity.ts';
import { nextHostStatus, renderHostStatus, statusUpdate, renderSiteStatus, type HostStatus, type HostUpdate, type RejectedRevision, type SiteStatus, type StatusWriter } from './index.ts';
import { parsePreviousStatus } from './previous-status.ts';
import { siteSyncHealth, syncAndHealth, syncHealthInput, type SyncHealth } from '../observe/sync-health.ts';

export interface StatusPublisherOptions {
  /** The drift measured now per host: a host with drift is OutOfSync, one that cannot be seen Missing. */
  drifts?: (host: string) => readonly Drift[];
  /** Commit-apply timings and hosts by sync/health go there too. */
  metrics?: Metrics;
  clock?: ActivityClock;
  /** Applied to each file's content before it is rendered: nothing on the branch carries a secret. */
  redact?: <T>(value: T) => T;
}

/** What the publisher needs of the StatusWriter (tests give it a map). */
export type StatusSink = Pick<StatusWriter, 'set' | 'remove' | 'stop' | 'readBranch'>;

/** What the dashboard and /v1/status show of the site beyond the hosts. */
export interface PublishedSite {
  revision: string | null;
  rejected: RejectedRevision | null;
  reconciles: ReconcileRecord[];
}

/**
 * Turns observed host states, drift and commit outcomes into files on the status branch. Only real changes are
 * queued (phase, step, revisions, error, sync, health, actions), so a steady lab produces no status commits.
 * Sync and health come from the one function that decides them (src/observe/sync-health.ts), with the drift.
 */
export class StatusPublisher {
  readonly reconciles: ReconcileLog;
  readonly actions: HostActions;
  private readonly hosts = new Map<string, HostStatus>();
  private readonly states = new Map<string, ObservedHost>();
  private readonly conditions = new Map<string, SyncHealth>();
  private siteStatus: SiteStatus = { revision: null, rejected: null, updated: new Date().toISOString() };
  private siteQueued = false;
  /** Host files found on the branch at start, until the first commit applied prunes those of hosts not in it. */
  private onBranch: Set<string> | null = null;

  constructor(private readonly writer: StatusSink, private readonly current: () => Generation | null, private readonly options: StatusPublisherOptions = {}) {
    const clock = options.clock ?? SYSTEM_CLOCK;
    this.reconciles = new ReconcileLog(clock);
    this.actions = new HostActions(clock.wall);
    this.reconciles.onChange((finished) => {
      // An apply abandoned for a newer commit or a stop is neither applied nor rejected: it is not a commit apply's duration.
      const result = finished?.record.result;
      if (finished && (result === 'applied' || result === 'rejected')) this.options.metrics?.observeReconcileRun(finished.seconds, result, finished.record.stages);
      this.writeSite();
    });
  }

  /**
   * Takes over what the previous run left on the status branch, so a restart neither loses nor overwrites it: the
   * last reconciles, each host's file (its transitions carry on) and actions. What was running when the agent
   * stopped is closed as interrupted, except a provisioning or wipe the journal resumes (`observed`: the host's
   * state from it). The first commit applied then prunes the files of hosts that left the lab meanwhile.
   * Call once at start, before the first commit; never throws (an unreadable branch gives an empty history).
   */
  async restore(observed: (host: string) => ObservedHost): Promise<void> {
    const previous = parsePreviousStatus(await this.writer.readBranch());
    this.reconciles.restore(previous.reconciles);
    for (const [name, host] of previous.hosts) {
      this.actions.restore(name, host.actions, observed(name));
      // As the file reads: the first update that differs from it (an interrupted action, say) rewrites it.
      if (host.status && !this.hosts.has(name)) this.hosts.set(name, host.status);
    }
    this.onBranch = new Set(previous.hosts.keys());
  }

  /** A host's observed state changed (`event` tells how: it may end the host's open action). */
  host(name: string, state: ObservedHost, event?: HostEvent): void {
    this.states.set(name, state);
    if (event) this.actions.event(name, event, state);
    const desired = this.current()?.hosts.get(name)?.desired;
    const role = desired?.role ?? state.attemptRole ?? state.appliedRole ?? '';
    const condition = desired ? syncAndHealth(syncHealthInput(desired, state, this.options.drifts?.(name) ?? [])) : syncAndHealth({ phase: state.phase, role });
    const update = statusUpdate(state, role, condition, this.actions.of(name));
    this.setCondition(name, condition);
    const previous = this.hosts.get(name) ?? null;
    if (previous && sameStatus(previous, update)) return;
    const next = nextHostStatus(name, previous, update, new Date(state.since));
    this.hosts.set(name, next);
    this.writer.set(`hosts/${name}.yaml`, renderHostStatus(this.redact(next)));
  }

  /**
   * A new generation serves (`previous`: the one before it): each host's status is decided again where what it
   * reads of the generation changed (a host new to it, or another role, power, boot or digest); every other host's
   * would come out as it is, and comparing 10,000 of them cost ~90 ms on the way to a commit's first BMC action.
   */
  generationServed(previous: Generation | null, observed: (host: string) => ObservedHost): void {
    for (const [name, rendered] of this.current()?.hosts ?? []) {
      const before = previous?.hosts.get(name)?.desired;
      if (before && sameStatusInputs(before, rendered.desired)) continue;
      this.host(name, observed(name));
    }
  }

  /** The drift of `host` changed: its sync and health are decided again from its last state. */
  refresh(name: string): void {
    const state = this.states.get(name);
    if (state) this.host(name, state);
  }

  /** An action was handed to the executor (by the reconcile tick or by drift healing). */
  actionStarted(name: string, action: Action, revision: string): void {
    if (!this.actions.started(name, action, revision)) return;
    this.reconciles.actionStarted(name, action.kind, revision);
    this.refresh(name);
  }

  applied(revision: string): void {
    this.siteStatus = { ...this.siteStatus, revision, rejected: null };
    this.retainDeclared();
    this.writeSite();
  }

  /** `step`: the step of applying it that failed (src/agent/commit-steps.ts). */
  rejected(revision: string, errors: string[], step?: string): void {
    const previous = this.siteStatus.rejected;
    if (previous?.revision === revision && previous.errors.join('\n') === errors.join('\n') && previous.step === step) return;
    this.siteStatus = { ...this.siteStatus, rejected: { revision, errors, ...(step ? { step } : {}) } };
    this.writeSite();
  }

  /** The applied revision, the rejected one and the last commit applies, for the dashboard. */
  site(): PublishedSite {
    return { revision: this.siteStatus.revision, rejected: this.siteStatus.rejected, reconciles: this.reconciles.list() };
  }

  actionsOf(host: string): HostAction[] {
    return this.actions.of(host);
  }

  async stop(): Promise<void> {
    if (this.siteQueued) this.renderSite();
    this.siteQueued = false;
    await this.writer.stop();
  }

  /**
   * Hosts that left the lab lose their status file, their actions and their share of the site's counts; at the
   * first commit after start also those that left while the agent was down (their files found on the branch).
   */
  private retainDeclared(): void {
    const declared = this.current()?.hosts;
    if (!declared) return;
    const names = new Set(declared.keys());
    const onBranch = this.onBranch ?? new Set<string>();
    this.onBranch = null;
    this.actions.retain(names);
    for (const name of new Set([...this.states.keys(), ...this.hosts.keys(), ...onBranch])) {
      if (names.has(name)) continue;
      this.states.delete(name);
      this.conditions.delete(name);
      if (this.hosts.delete(name) || onBranch.has(name)) this.writer.remove(`hosts/${name}.yaml`);
    }
  }

  private redact<T>(value: T): T {
    return this.options.redact ? this.options.redact(value) : value;
  }

  private setCondition(name: string, condition: SyncHealth): void {
    const before = this.conditions.get(name);
    if (before?.sync === condition.sync && before.health === condition.health) return;
    this.conditions.set(name, condition);
    this.writeSite();
  }

  /** Coalesced: a commit that moves every host's sync renders site.yaml once, not once per host. */
  private writeSite(): void {
    if (this.siteQueued) return;
    this.siteQueued = true;
    queueMicrotask(() => {
      if (!this.siteQueued) return; // stop() rendered it already
      this.siteQueued = false;
      this.renderSite();
    });
  }

  private renderSite(): void {
    const aggregate = siteSyncHealth(this.conditions.values(), { revision: this.siteStatus.revision, rejected: this.siteStatus.rejected !== null });
    this.options.metrics?.setHostConditions(aggregate.counts);
    this.siteStatus = { ...this.siteStatus, sync: aggregate.sync, health: aggregate.health, reconciles: this.reconciles.list(), updated: new Date().toISOString() };
    this.writer.set('site.yaml', renderSiteStatus(this.redact(this.siteStatus)));
  }
}

/** Whether a host's status reads the same of these two desired states (host() and syncHealthInput). */
function sameStatusInputs(a: DesiredHost, b: DesiredHost): boolean {
  return a.role === b.role && a.power === b.power && a.boot === b.boot && a.digest === b.digest;
}

function sameStatus(previous: HostStatus, update: HostUpdate): boolean {
  return (
    previous.role === update.role &&
    previous.phase === update.phase &&
    previous.step === update.step &&
    previous.revision === update.revision &&
    previous.attemptedRevision === update.attemptedRevision &&
    JSON.stringify(previous.lastError) === JSON.stringify(update.lastError) &&
    JSON.stringify(previous.inventory) === JSON.stringify(update.inventory) &&
    JSON.stringify(previous.bmc ?? null) === JSON.stringify(update.bmc ?? null) &&
    previous.wipedToken === update.wipedToken &&
    previous.sync === update.sync &&
    previous.health === update.health &&
    JSON.stringify(previous.actions ?? []) === JSON.stringify(update.actions ?? [])
  );
}
