// `site.yaml` on the status branch: which lab revision the agent runs, and the last one it refused.
import { parse, stringify } from 'yaml';
import { StatusParseError } from './status-parse-error.ts';
import { asRecord, nullableStr, str } from './yaml-fields.ts';
import { parseReconciles, reconcileForYaml, type ReconcileRecord } from '../observe/activity.ts';
import { isHealthState, isSyncState, type HealthState, type SyncState } from '../observe/sync-health.ts';
import { errorMessage } from '../core/errors.ts';

export interface RejectedRevision {
  revision: string;
  /** `file:line:col: message` */
  errors: string[];
  /** The step of applying the commit that failed (src/agent/commit-steps.ts): `load` for an invalid lab. */
  step?: string;
}

export interface SiteStatus {
  /** Last good revision (loaded and applied), null before the first one. */
  revision: string | null;
  /** The newest revision that failed validation, while it is newer than `revision`. */
  rejected: RejectedRevision | null;
  /** ISO time */
  updated: string;
  /** The site from its hosts and the rejection (src/observe/sync-health.ts siteSyncHealth). */
  sync?: SyncState;
  health?: HealthState;
  /** The last commit applies, oldest first, with their timings. */
  reconciles?: ReconcileRecord[];
}

export function renderSiteStatus(status: SiteStatus): string {
  const doc: Record<string, unknown> = {
    revision: status.revision,
    rejected: status.rejected ? { revision: status.rejected.revision, errors: [...status.rejected.errors], ...(status.rejected.step ? { step: status.rejected.step } : {}) } : null,
    updated: status.updated,
  };
  if (status.sync) doc.sync = status.sync;
  if (status.health) doc.health = status.health;
  if (status.reconciles) doc.reconciles = status.reconciles.map(reconcileForYaml);
  return stringify(doc, { lineWidth: 0 });
}

export function parseSiteStatus(text: string): SiteStatus {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new StatusParseError('site', errorMessage(err));
  }
  const obj = asRecord('site', raw, 'document');
  let rejected: RejectedRevision | null = null;
  if (obj.rejected !== undefined && obj.rejected !== null) {
    const r = asRecord('site', obj.rejected, 'rejected');
    if (!Array.isArray(r.errors) || !r.errors.every((e): e is string => typeof e === 'string')) {
      throw new StatusParseError('site', 'rejected.errors must be a list of strings');
    }
    const step = typeof r.step === 'string' ? r.step : undefined;
    rejected = { revision: str('site', r, 'revision'), errors: r.errors, ...(step ? { step } : {}) };
  }
  const site: SiteStatus = { revision: nullableStr('site', obj, 'revision'), rejected, updated: str('site', obj, 'updated') };
  const reconciles = parseReconciles(obj.reconciles);
  if (isSyncState(obj.sync)) site.sync = obj.sync;
  if (isHealthState(obj.health)) site.health = obj.health;
  if (reconciles) site.reconciles = reconciles;
  return site;
}
