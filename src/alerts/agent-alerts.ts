import { Alerter, alertForDrift, alerterTiming, recoveryForDrift, resolveSinks, type AlertEvent } from './index.ts';
import type { Logger } from '../log.ts';
import type { Site } from '../model/types.ts';
import type { HostEvent } from '../core/host-lifecycle.ts';
import type { Drift } from '../observe/drift.ts';
import type { ObservedHost } from '../core/host-state.ts';
import { errorMessage } from '../core/errors.ts';

/**
 * Turns what the agent sees into alerts: failed provisionings, hosts that converge, rejected commits, BMCs
 * that stop answering, drift and its healing. The Alerter deduplicates, retries and persists; this decides
 * which event means which alert, and rebuilds the Alerter when the site's sinks change.
 */
export class AgentAlerts {
  private alerter: Alerter | null = null;
  private configKey = '';
  private revision = '';

  constructor(
    private readonly stateDir: string,
    private readonly secret: (credential: string) => string,
    private readonly log: Logger,
    /**
     * Applied to each alert's payload as it is queued and sent (messages come from BMCs and lower layers), never to
     * the event the alerter deduplicates and formats with.
     */
    private readonly redact: <T>(value: T) => T = (value) => value,
  ) {}

  async configure(site: Site, revision: string): Promise<void> {
    this.revision = revision;
    const key = JSON.stringify(site.alerts);
    if (key === this.configKey && this.alerter) return;
    let sinks;
    try {
      sinks = resolveSinks(site.alerts, this.secret);
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'alert sinks cannot be set up; keeping the previous ones');
      return;
    }
    await this.alerter?.stop();
    this.alerter = new Alerter({ site: site.name, sinks, stateDir: this.stateDir, log: this.log, redact: this.redact, ...alerterTiming(site.alerts) });
    this.configKey = key;
    await this.alerter.start();
  }

  hostChanged(host: string, state: ObservedHost, event: HostEvent): void {
    switch (event.kind) {
      case 'failed':
        this.emit({ kind: 'provisioning-failed', host, revision: state.attemptRevision ?? this.revision, role: state.attemptRole ?? '', message: event.message, ...(event.step ? { step: event.step } : {}) });
        return;
      case 'phone-home':
        if (state.phase === 'Converged') this.emit({ kind: 'host-converged', host, revision: state.appliedRevision ?? this.revision, role: state.appliedRole ?? '' });
        return;
      case 'enroll-failed':
        if ((state.failures ?? 0) >= 2) this.emit({ kind: 'bmc-unreachable', host, revision: this.revision, message: event.message });
        return;
      case 'enrolled':
        void this.alerter?.resolve({ host, reason: 'bmc-unreachable' }, 'BMC answers again');
        return;
      default:
        return;
    }
  }

  commitRejected(revision: string, problems: string[]): void {
    this.emit({ kind: 'commit-rejected', revision, problems });
  }

  commitApplied(revision: string): void {
    void this.alerter?.resolve({ reason: 'commit-rejected' }, `commit ${revision.slice(0, 12)} applied`);
  }

  drift(drift: Drift, first: boolean): void {
    if (first) this.emit(alertForDrift(drift));
  }

  cleared(drift: Drift): void {
    const recovery = recoveryForDrift(drift);
    if ('event' in recovery) this.emit(recovery.event);
    else void this.alerter?.resolve(recovery.resolve);
  }

  async stop(): Promise<void> {
    await this.alerter?.stop();
  }

  private emit(event: AlertEvent): void {
    this.alerter?.emit(event).catch((err: unknown) => this.log.error({ err, alert: event.kind }, 'cannot queue alert'));
  }
}
