export { StatusWriter, type StatusWriterOptions } from './status-writer.ts';
export {
  renderHostStatus,
  parseHostStatus,
  nextHostStatus,
  statusUpdate,
  HISTORY_LIMIT,
  type HostStatus,
  type HostStatusError,
  type HostTransition,
  type HostUpdate,
} from './host-status.ts';
export { renderSiteStatus, parseSiteStatus, type SiteStatus, type RejectedRevision } from './site-status.ts';
export { StatusPushError } from './status-push-error.ts';
export { StatusParseError } from './status-parse-error.ts';
export { InvalidStatusPathError } from './invalid-status-path-error.ts';
