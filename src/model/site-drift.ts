// The `drift:` section of site.yaml and the host-level `drift:` override: what forseti does when the lab no
// longer matches Git. SITE_DRIFT_SCHEMA is schemas/site.schema.json's property `drift` and HOST_DRIFT_SCHEMA
// schemas/host.schema.json's (test/model-schemas.test.ts holds them equal); parseDriftPolicy then applies defaults
// and the checks a schema cannot express. How a host's policy is resolved is src/observe/drift-policy.ts.

import { cronProblem } from '../core/cron.ts';

export const DRIFT_MODES = ['detect', 'heal', 'paused'] as const;
/** detect: alert only; heal: alert and converge back; paused: still report, never act. */
export type DriftMode = (typeof DRIFT_MODES)[number];

export interface SiteDriftPolicy {
  policy: DriftMode;
  /** Cron expression for the BMC scan (5 fields, or 6 with seconds first; src/core/cron.ts). */
  scanCron: string;
  /** A host not seen (DHCP renewal, phone-home) for this long is reported as silent; 0 disables. */
  silentAfterSeconds: number;
  /** A provisioning host whose one-time PXE override is gone for this long before its first DHCP is drift. */
  bootOverrideGraceSeconds: number;
  /** `label=value` -> mode, for every host carrying that label. */
  groups: Array<{ label: string; value: string; policy: DriftMode }>;
}

/** The drift scan's schedule may name seconds. */
export const SCAN_CRON = { seconds: true } as const;

export const DEFAULT_DRIFT_POLICY: SiteDriftPolicy = {
  policy: 'detect',
  scanCron: '*/5 * * * *',
  silentAfterSeconds: 0,
  bootOverrideGraceSeconds: 90,
  groups: [],
};

const MODE_SCHEMA = { enum: [...DRIFT_MODES], description: 'detect: alert only; heal: alert and converge back (power on, boot override, reprovision); paused: report, never act.' };

/** JSON Schema (draft-07) of site.yaml's `drift` property. */
export const SITE_DRIFT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'Drift: differences between what Git declares and what the lab does (a blade powered off by hand, a lost boot override, a host that reports another role or disappears).',
  properties: {
    policy: { ...MODE_SCHEMA, default: 'detect' },
    scanCron: { type: 'string', minLength: 1, default: '*/5 * * * *', description: 'When the BMCs are read (cron; 6 fields = with seconds first).' },
    silentAfterSeconds: { type: 'integer', minimum: 0, default: 0, description: 'Report a host not seen on DHCP or phone-home for this long; 0: never.' },
    bootOverrideGraceSeconds: { type: 'integer', minimum: 0, default: 90, description: 'How long a provisioning host may be without its one-time PXE override before its first DHCP.' },
    groups: {
      type: 'object',
      description: 'Policy per host label: `label=value: heal`.',
      propertyNames: { pattern: '^[A-Za-z0-9._/-]+=[^=]*$' },
      additionalProperties: MODE_SCHEMA,
    },
  },
} as const;

/** JSON Schema of a host's `drift` property (overrides site and group policy). */
export const HOST_DRIFT_SCHEMA = MODE_SCHEMA;

/** A problem in the drift section, at a dotted path under site.yaml (`drift.scanCron`), for the model's refs. */
export interface DriftPolicyProblem {
  path: string;
  code: 'drift-policy';
  message: string;
}

/**
 * site.yaml's `drift` value (schema-valid or not: shapes are checked again so that this also stands alone)
 * with defaults applied, and every problem found.
 */
export function parseDriftPolicy(raw: unknown): { policy: SiteDriftPolicy; problems: DriftPolicyProblem[] } {
  const problems: DriftPolicyProblem[] = [];
  const policy: SiteDriftPolicy = { ...DEFAULT_DRIFT_POLICY, groups: [] };
  if (raw === undefined || raw === null) return { policy, problems };
  const bad = (path: string, message: string): void => void problems.push({ path, code: 'drift-policy', message });
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    bad('drift', 'drift must be a mapping');
    return { policy, problems };
  }
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!['policy', 'scanCron', 'silentAfterSeconds', 'bootOverrideGraceSeconds', 'groups'].includes(key)) bad(`drift.${key}`, `unknown drift setting ${key}`);
  }
  if (o['policy'] !== undefined) {
    if (isMode(o['policy'])) policy.policy = o['policy'];
    else bad('drift.policy', `drift policy must be one of ${DRIFT_MODES.join(', ')}`);
  }
  if (o['scanCron'] !== undefined) {
    if (typeof o['scanCron'] === 'string' && cronProblem(o['scanCron'], SCAN_CRON) === null) policy.scanCron = o['scanCron'];
    else bad('drift.scanCron', `scanCron ${JSON.stringify(o['scanCron'])} is not a valid cron expression (e.g. '*/5 * * * *')`);
  }
  for (const key of ['silentAfterSeconds', 'bootOverrideGraceSeconds'] as const) {
    const v = o[key];
    if (v === undefined) continue;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) policy[key] = v;
    else bad(`drift.${key}`, `${key} must be a whole number of seconds >= 0`);
  }
  const groups = o['groups'];
  if (groups !== undefined) {
    if (typeof groups !== 'object' || groups === null || Array.isArray(groups)) bad('drift.groups', 'drift.groups must be a mapping of label=value to a policy');
    else {
      for (const [key, mode] of Object.entries(groups as Record<string, unknown>)) {
        const eq = key.indexOf('=');
        if (eq <= 0) bad(`drift.groups.${key}`, `group ${key} must be written label=value, e.g. rack=a`);
        else if (!isMode(mode)) bad(`drift.groups.${key}`, `policy of group ${key} must be one of ${DRIFT_MODES.join(', ')}`);
        else policy.groups.push({ label: key.slice(0, eq), value: key.slice(eq + 1), policy: mode });
      }
    }
  }
  return { policy, problems };
}

/** A host's `drift` value: a mode, or absent. */
export function parseHostDrift(raw: unknown): { mode?: DriftMode; problems: DriftPolicyProblem[] } {
  if (raw === undefined || raw === null) return { problems: [] };
  if (isMode(raw)) return { mode: raw, problems: [] };
  return { problems: [{ path: 'drift', code: 'drift-policy', message: `drift must be one of ${DRIFT_MODES.join(', ')}` }] };
}

function isMode(v: unknown): v is DriftMode {
  return typeof v === 'string' && (DRIFT_MODES as readonly string[]).includes(v);
}
