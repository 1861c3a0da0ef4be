// `site.yaml` on the status branch: which lab revision the agent runs, and the last one it refused.
import { parse, stringify } from 'yaml';
import { StatusParseError } from './status-parse-error.ts';
import { asRecord, nullableStr, str } from './yaml-fields.ts';

export interface RejectedRevision {
  revision: string;
  /** `file:line:col: message` */
  errors: string[];
}

export interface SiteStatus {
  /** Last good revision (loaded and applied), null before the first one. */
  revision: string | null;
  /** The newest revision that failed validation, while it is newer than `revision`. */
  rejected: RejectedRevision | null;
  /** ISO time */
  updated: string;
}

export function renderSiteStatus(status: SiteStatus): string {
  return stringify(
    {
      revision: status.revision,
      rejected: status.rejected ? { revision: status.rejected.revision, errors: [...status.rejected.errors] } : null,
      updated: status.updated,
    },
    { lineWidth: 0 },
  );
}

export function parseSiteStatus(text: string): SiteStatus {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new StatusParseError('site', err instanceof Error ? err.message : String(err));
  }
  const obj = asRecord('site', raw, 'document');
  let rejected: RejectedRevision | null = null;
  if (obj.rejected !== undefined && obj.rejected !== null) {
    const r = asRecord('site', obj.rejected, 'rejected');
    if (!Array.isArray(r.errors) || !r.errors.every((e): e is string => typeof e === 'string')) {
      throw new StatusParseError('site', 'rejected.errors must be a list of strings');
    }
    rejected = { revision: str('site', r, 'revision'), errors: r.errors };
  }
  return { revision: nullableStr('site', obj, 'revision'), rejected, updated: str('site', obj, 'updated') };
}
