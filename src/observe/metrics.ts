import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PHASES, type Phase } from '../core/host-state.ts';
import type { ReconcileStage } from './activity.ts';
import { HEALTH_STATES, SYNC_STATES, type HealthState, type SyncState } from './sync-health.ts';

export interface MetricsOptions {
  /** Node process metrics (CPU, memory, event loop lag) with the `forseti_` prefix; default true. */
  processMetrics?: boolean;
}

export type Outcome = 'ok' | 'error';

/**
 * What a flush of the status branch came to (src/status/status-writer.ts reports it): `ok` pushed at the first
 * attempt; `retried` the branch moved under the push and the batch went again on top of it; `unchanged` the branch
 * already held every queued file; `failed` not pushed, the files stay queued.
 */
export type StatusPushResult = 'ok' | 'retried' | 'unchanged' | 'failed';

/**
 * The agent's Prometheus metrics, in a registry of its own (two agents in one process, as in tests, do not
 * share counters). One method per thing that happens, so each call site is a single line; label values are
 * bounded sets (phases, driver kinds, operations, DHCP actions, route names), never host names or MACs.
 */
export class Metrics {
  readonly registry = new Registry();

  private readonly hosts = new Gauge({ name: 'forseti_hosts', help: 'Declared hosts by phase.', labelNames: ['phase'], registers: [this.registry] });
  private readonly reconcile = new Histogram({
    name: 'forseti_reconcile_duration_seconds',
    help: 'One reconcile pass: decide for every host and start the actions.',
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  private readonly apply = new Histogram({
    name: 'forseti_commit_apply_duration_seconds',
    help: 'From a fetched commit to its generation serving (validate, download images, render), or to its rejection.',
    labelNames: ['outcome'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  private readonly provision = new Histogram({
    name: 'forseti_provision_duration_seconds',
    help: 'From the power cycle to the phone-home (converged) or to the failure.',
    labelNames: ['outcome'],
    buckets: [5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600],
    registers: [this.registry],
  });
  private readonly bmcLatency = new Histogram({
    name: 'forseti_bmc_call_duration_seconds',
    help: 'BMC operations by driver kind and operation, failed ones included.',
    labelNames: ['kind', 'op'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 60],
    registers: [this.registry],
  });
  private readonly bmcErrors = new Counter({ name: 'forseti_bmc_call_errors_total', help: 'Failed BMC operations by driver kind and operation.', labelNames: ['kind', 'op'], registers: [this.registry] });
  private readonly dhcp = new Counter({ name: 'forseti_dhcp_requests_total', help: 'Handled DHCP requests by what was done (offer, ack, nak, ignored, ...).', labelNames: ['action'], registers: [this.registry] });
  private readonly tftp = new Counter({ name: 'forseti_tftp_transfers_total', help: 'Finished TFTP read transfers by result.', labelNames: ['result'], registers: [this.registry] });
  private readonly tftpBytes = new Counter({ name: 'forseti_tftp_bytes_total', help: 'Payload bytes acknowledged by TFTP clients.', registers: [this.registry] });
  private readonly http = new Counter({ name: 'forseti_http_requests_total', help: 'Boot HTTP requests by route and status class.', labelNames: ['route', 'code'], registers: [this.registry] });
  private readonly gitFetch = new Counter({ name: 'forseti_git_fetch_total', help: 'Polls of the lab branch by result.', labelNames: ['result'], registers: [this.registry] });
  private readonly applyStage = new Histogram({
    name: 'forseti_commit_apply_stage_duration_seconds',
    help: 'Stages of applying a commit: validate, secrets, images, render, activate.',
    labelNames: ['stage'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  private readonly hostSync = new Gauge({ name: 'forseti_hosts_sync', help: 'Declared hosts by sync state (Synced, OutOfSync, Unknown).', labelNames: ['sync'], registers: [this.registry] });
  private readonly hostHealth = new Gauge({ name: 'forseti_hosts_health', help: 'Declared hosts by health (Healthy, Progressing, Degraded, Missing).', labelNames: ['health'], registers: [this.registry] });
  private readonly gitPush = new Counter({
    name: 'forseti_status_push_total',
    help: 'Status-branch flushes by result: ok, retried (the branch moved under the push), unchanged, failed.',
    labelNames: ['result'],
    registers: [this.registry],
  });
  private readonly appliedInfo = new Gauge({ name: 'forseti_applied_revision_info', help: 'The lab revision the agent serves (value 1).', labelNames: ['revision', 'generation'], registers: [this.registry] });
  private readonly appliedAt = new Gauge({ name: 'forseti_applied_revision_timestamp_seconds', help: 'When the served revision was applied (Unix time).', registers: [this.registry] });
  private readonly rejections = new Counter({ name: 'forseti_commit_rejections_total', help: 'Commits refused (invalid lab, or rendering/image failure).', registers: [this.registry] });
  private readonly provisionStarts = new Map<string, number>();
  private readonly rejectedInfo = new Gauge({ name: 'forseti_rejected_revision_info', help: 'The newest rejected revision while it is newer than the applied one (value 1).', labelNames: ['revision'], registers: [this.registry] });

  constructor(options: MetricsOptions = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'forseti_' });
    for (const phase of PHASES) this.hosts.set({ phase }, 0);
    for (const sync of SYNC_STATES) this.hostSync.set({ sync }, 0);
    for (const health of HEALTH_STATES) this.hostHealth.set({ health }, 0);
  }

  /** Hosts per sync and health state, every state exported (zeros included). */
  setHostConditions(counts: { sync: Record<SyncState, number>; health: Record<HealthState, number> }): void {
    for (const sync of SYNC_STATES) this.hostSync.set({ sync }, counts.sync[sync]);
    for (const health of HEALTH_STATES) this.hostHealth.set({ health }, counts.health[health]);
  }

  /** One commit apply: its total under `outcome`, and each stage that ran. */
  observeReconcileRun(seconds: number, outcome: 'applied' | 'rejected', stages: Partial<Record<ReconcileStage, number>>): void {
    this.observeCommitApply(seconds, outcome);
    for (const [stage, ms] of Object.entries(stages)) this.applyStage.observe({ stage }, ms / 1000);
  }

  /** The phase of every declared host; phases without hosts are exported as 0. */
  setHostPhases(phases: Iterable<Phase> | Map<string, { phase: Phase }>): void {
    const counts = new Map<Phase, number>(PHASES.map((p) => [p, 0]));
    const list = phases instanceof Map ? [...phases.values()].map((s) => s.phase) : phases;
    for (const phase of list) counts.set(phase, (counts.get(phase) ?? 0) + 1);
    for (const [phase, n] of counts) this.hosts.set({ phase }, n);
  }

  observeReconcile(seconds: number): void {
    this.reconcile.observe(seconds);
  }

  observeCommitApply(seconds: number, outcome: 'applied' | 'rejected'): void {
    this.apply.observe({ outcome }, seconds);
  }

  observeProvision(seconds: number, outcome: 'converged' | 'failed'): void {
    this.provision.observe({ outcome }, seconds);
  }

  /**
   * Feed of lifecycle events (HostTracker.onChange): times each provisioning from its start to the phase
   * it ends in, so the caller need not remember when it began.
   */
  hostEvent(host: string, kind: string, phase: Phase, now: number = Date.now()): void {
    if (kind === 'provision-started') {
      this.provisionStarts.set(host, now);
      return;
    }
    const started = this.provisionStarts.get(host);
    if (started === undefined || (phase !== 'Converged' && phase !== 'Failed')) return;
    this.provisionStarts.delete(host);
    this.observeProvision((now - started) / 1000, phase === 'Converged' ? 'converged' : 'failed');
  }

  /** `kind` is the driver's (`ipmi`, `redfish`, `manual`, ...), `op` the BmcDriver method name. */
  observeBmcCall(kind: string, op: string, seconds: number, ok: boolean): void {
    this.bmcLatency.observe({ kind, op }, seconds);
    if (!ok) this.bmcErrors.inc({ kind, op });
  }

  countDhcp(action: string): void {
    this.dhcp.inc({ action });
  }

  countTftp(ok: boolean, bytes: number): void {
    this.tftp.inc({ result: ok ? 'ok' : 'error' });
    if (bytes > 0) this.tftpBytes.inc(bytes);
  }

  /** `route` is a route name (`boot-script`, `image`, ...), never the raw path: MACs and hashes would explode the series. */
  countHttp(route: string, status: number): void {
    this.http.inc({ route, code: `${Math.floor(status / 100)}xx` });
  }

  countGitFetch(ok: boolean): void {
    this.gitFetch.inc({ result: ok ? 'ok' : 'error' });
  }

  countStatusPush(result: StatusPushResult): void {
    this.gitPush.inc({ result });
  }

  setAppliedRevision(revision: string, generation = '', at: Date = new Date()): void {
    this.appliedInfo.reset();
    this.appliedInfo.set({ revision, generation }, 1);
    this.appliedAt.set(at.getTime() / 1000);
    this.rejectedInfo.reset();
  }

  countRejection(revision: string): void {
    this.rejections.inc();
    this.rejectedInfo.reset();
    this.rejectedInfo.set({ revision }, 1);
  }

  /** The text exposition format (`text/plain; version=0.0.4`). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
