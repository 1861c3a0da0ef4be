import type { ObservedHost } from '../plan/types.ts';
import type { Generation } from '../render/generation.ts';
import { nextHostStatus, renderHostStatus, renderSiteStatus, type HostStatus, type HostUpdate, type SiteStatus, type StatusWriter } from '../status/index.ts';

/**
 * Turns observed host states and commit outcomes into files on the status branch. Only real changes are
 * queued (phase, step, revisions, error), so a steady lab produces no status commits at all.
 */
export class StatusPublisher {
  private readonly hosts = new Map<string, HostStatus>();
  private siteStatus: SiteStatus = { revision: null, rejected: null, updated: new Date().toISOString() };

  constructor(private readonly writer: StatusWriter, private readonly current: () => Generation | null) {}

  host(name: string, state: ObservedHost): void {
    const role = this.current()?.hosts.get(name)?.desired.role ?? state.attemptRole ?? state.appliedRole ?? '';
    const update: HostUpdate = {
      role,
      phase: state.phase,
      revision: state.appliedRevision ?? null,
      attemptedRevision: state.attemptRevision ?? null,
      lastError: state.lastError ? { message: state.lastError.message, ...(state.lastError.step ? { step: state.lastError.step } : {}) } : null,
      ...(state.step ? { step: state.step } : {}),
      ...(state.inventory ? { inventory: { ...state.inventory } } : {}),
      ...(state.wipedToken !== undefined ? { wipedToken: state.wipedToken } : {}),
      message: state.lastError?.message ?? `${state.phase}${state.step ? ` (${state.step})` : ''}`,
    };
    const previous = this.hosts.get(name) ?? null;
    if (previous && sameStatus(previous, update)) return;
    const next = nextHostStatus(name, previous, update, new Date(state.since));
    this.hosts.set(name, next);
    this.writer.set(`hosts/${name}.yaml`, renderHostStatus(next));
  }

  applied(revision: string): void {
    this.siteStatus = { revision, rejected: null, updated: new Date().toISOString() };
    this.writer.set('site.yaml', renderSiteStatus(this.siteStatus));
  }

  rejected(revision: string, errors: string[]): void {
    const previous = this.siteStatus.rejected;
    if (previous?.revision === revision && previous.errors.join('\n') === errors.join('\n')) return;
    this.siteStatus = { ...this.siteStatus, rejected: { revision, errors }, updated: new Date().toISOString() };
    this.writer.set('site.yaml', renderSiteStatus(this.siteStatus));
  }

  /** The applied revision and the rejected one, for the dashboard. */
  site(): { revision: string | null; rejected: { revision: string; errors: string[] } | null } {
    return { revision: this.siteStatus.revision, rejected: this.siteStatus.rejected };
  }

  stop(): Promise<void> {
    return this.writer.stop();
  }
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
    previous.wipedToken === update.wipedToken
  );
}
