export { StatusWriter, type StatusWriterOptions, type StatusPushResult } from './status-writer.ts';
export {
  renderHostStatus,
  parseHostStatus,
  nextHostStatus,
  HOST_PHASES,
  PROVISIONING_STEPS,
  HISTORY_LIMIT,
  type HostStatus,
  type HostPhase,
  type ProvisioningStep,
  type HostStatusError,
  type HostTransition,
  type HostUpdate,
} from './host-status.ts';
export { renderSiteStatus, parseSiteStatus, type SiteStatus, type RejectedRevision } from './site-status.ts';
export { StatusPushError } from './status-push-error.ts';
export { StatusParseError } from './status-parse-error.ts';
export { InvalidStatusPathError } from './invalid-status-path-error.ts';
export { syncAndHealth, syncHealthInput, siteSyncHealth, SYNC_STATES, HEALTH_STATES, type SyncState, type HealthState, type SyncHealth, type SiteSyncHealth, type SyncHealthInput } from './sync-health.ts';
export { ACTIVITY_LIMIT, RECONCILE_STAGES, type ReconcileRecord, type ReconcileStage, type HostAction, type ActionOutcome } from './activity.ts';
