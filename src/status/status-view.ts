// The agent's status document, as served at GET /v1/status and pushed on /v1/events: what the CLI and the
// dashboard read. Everything beyond revision/generation/hosts{role, phase} is optional, so older agents and
// partial backends still produce a valid document.
import { parseActions, parseReconciles, type HostAction, type ReconcileRecord } from '../observe/activity.ts';
import { isHealthState, isSyncState, siteSyncHealth, syncAndHealth, syncHealthInput, type HealthState, type SiteSyncHealth, type SyncState } from '../observe/sync-health.ts';
import type { Drift } from '../observe/drift.ts';
import type { ConvergeStepRecord, DesiredHost, ObservedHost } from '../core/host-state.ts';
import type { Host } from '../model/types.ts';
import type { RejectedRevision } from './site-status.ts';
import { isRecord } from '../core/objects.ts';

export interface StatusEvent {
  /** Epoch ms or ISO time. */
  at: number | string;
  /** Missing for site events (commit applied, commit rejected). */
  host?: string;
  /** Short machine-readable kind: `provision-started`, `step`, `phone-home`, `failed`, `commit-rejected`, ... */
  kind: string;
  message: string;
}

/**
 * One host in the status document: a view of its state (src/core/host-state.ts ObservedHost, made by hostView) with
 * the role, sync and health, drift, events and actions around it. Read leniently: `phase` and `step` may be names a
 * newer agent knows.
 */
export interface HostView {
  role: string;
  phase: string;
  step?: string;
  appliedRole?: string;
  appliedRevision?: string;
  attemptRevision?: string;
  /** Epoch ms (agent) or ISO time (status branch) of the last phase change. */
  since?: number | string;
  lastError?: { message: string; step?: string };
  enclosure?: { name: string; bay: number };
  labels?: Record<string, string>;
  sync?: SyncState;
  health?: HealthState;
  /** What differs between the machine and the commit, one line each; empty or absent: no drift known. */
  drift?: string[];
  /** This host's recent events, oldest first. */
  events?: StatusEvent[];
  /** This host's last actions with their timings, oldest first. */
  actions?: HostAction[];
  /** The steps its role's converge signals reported in the attempt under way (or the last); the last is where it is. */
  convergeSteps?: ConvergeStepRecord[];
}

/** What a host's view is made of: the one host state, what the commit wants of the host, and what happened around it. */
export interface HostViewInput {
  desired: DesiredHost;
  state: ObservedHost;
  host?: Pick<Host, 'enclosure' | 'labels'>;
  /** The drift measured now: one line each, and it decides sync and health with the phase. */
  drifts: readonly Pick<Drift, 'kind' | 'message'>[];
  events: StatusEvent[];
  actions: HostAction[];
}

/** The view of one host (the attempt's nonce stays inside the agent). */
export function hostView(input: HostViewInput): HostView {
  const { desired, state, host, drifts, actions } = input;
  return {
    ...syncAndHealth(syncHealthInput(desired, state, drifts)),
    role: desired.role,
    phase: state.phase,
    ...(state.step ? { step: state.step } : {}),
    ...(state.appliedRole ? { appliedRole: state.appliedRole } : {}),
    ...(state.appliedRevision ? { appliedRevision: state.appliedRevision } : {}),
    ...(state.attemptRevision ? { attemptRevision: state.attemptRevision } : {}),
    since: state.since,
    ...(state.lastError ? { lastError: state.lastError } : {}),
    ...(host?.enclosure ? { enclosure: host.enclosure } : {}),
    labels: host?.labels ?? {},
    drift: drifts.map((d) => d.message),
    events: input.events,
    ...(actions.length > 0 ? { actions } : {}),
    ...(state.convergeSteps && state.convergeSteps.length > 0 ? { convergeSteps: state.convergeSteps } : {}),
  };
}

export interface SiteView {
  revision: string | null;
  rejected: RejectedRevision | null;
  /** Aggregated from the hosts (src/observe/sync-health.ts siteSyncHealth). */
  sync?: SyncState;
  health?: HealthState;
  counts?: SiteSyncHealth['counts'];
  /** The last commit applies, oldest first. */
  reconciles?: ReconcileRecord[];
}

export interface StatusView {
  revision: string | null;
  generation: string | null;
  site?: SiteView;
  hosts: Record<string, HostView>;
  /** Site-level recent events (commits applied or rejected), oldest first. */
  events?: StatusEvent[];
}

export class StatusViewError extends Error {
  override readonly name = 'StatusViewError';
  constructor(where: string, reason: string) {
    super(`invalid status document from ${where}: ${reason}`);
  }
}

const optString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const timeValue = (v: unknown): number | string | undefined => (typeof v === 'number' || typeof v === 'string' ? v : undefined);

function events(v: unknown): StatusEvent[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.filter(isRecord).flatMap((e) => {
    const at = timeValue(e.at);
    const kind = optString(e.kind);
    if (at === undefined || kind === undefined) return [];
    const host = optString(e.host);
    return [{ at, kind, message: optString(e.message) ?? '', ...(host ? { host } : {}) }];
  });
}

function parseHostView(name: string, where: string, raw: unknown): HostView {
  if (!isRecord(raw)) throw new StatusViewError(where, `hosts.${name} must be an object`);
  const role = optString(raw.role) ?? '';
  const phase = optString(raw.phase);
  if (phase === undefined) throw new StatusViewError(where, `hosts.${name}.phase must be a string`);
  const view: HostView = { role, phase };
  for (const key of ['step', 'appliedRole', 'appliedRevision', 'attemptRevision'] as const) {
    const value = optString(raw[key]);
    if (value !== undefined) view[key] = value;
  }
  const since = timeValue(raw.since);
  if (since !== undefined) view.since = since;
  if (isRecord(raw.lastError) && typeof raw.lastError.message === 'string') {
    const step = optString(raw.lastError.step);
    view.lastError = { message: raw.lastError.message, ...(step ? { step } : {}) };
  }
  if (isRecord(raw.enclosure) && typeof raw.enclosure.name === 'string' && typeof raw.enclosure.bay === 'number') {
    view.enclosure = { name: raw.enclosure.name, bay: raw.enclosure.bay };
  }
  if (isRecord(raw.labels)) view.labels = Object.fromEntries(Object.entries(raw.labels).filter((e): e is [string, string] => typeof e[1] === 'string'));
  if (isSyncState(raw.sync)) view.sync = raw.sync;
  if (isHealthState(raw.health)) view.health = raw.health;
  if (Array.isArray(raw.drift)) view.drift = raw.drift.filter((d): d is string => typeof d === 'string');
  const hostEvents = events(raw.events);
  if (hostEvents) view.events = hostEvents;
  const actions = parseActions(raw.actions);
  if (actions) view.actions = actions;
  return view;
}

/**
 * Reads a status document leniently: unknown fields are dropped, malformed optional fields ignored; only a
 * missing `hosts` map or a host without a phase is an error. `where` names the source in the error.
 */
export function parseStatusView(raw: unknown, where: string): StatusView {
  if (!isRecord(raw)) throw new StatusViewError(where, 'not a JSON object');
  if (!isRecord(raw.hosts)) throw new StatusViewError(where, '"hosts" must be an object');
  const hosts: Record<string, HostView> = {};
  for (const [name, host] of Object.entries(raw.hosts)) hosts[name] = parseHostView(name, where, host);
  const view: StatusView = { revision: optString(raw.revision) ?? null, generation: optString(raw.generation) ?? null, hosts };
  if (isRecord(raw.site)) {
    const r = raw.site.rejected;
    const step = isRecord(r) ? optString(r.step) : undefined;
    const rejected = isRecord(r) && typeof r.revision === 'string' ? { revision: r.revision, errors: Array.isArray(r.errors) ? r.errors.filter((e): e is string => typeof e === 'string') : [], ...(step ? { step } : {}) } : null;
    view.site = { revision: optString(raw.site.revision) ?? null, rejected };
    if (isSyncState(raw.site.sync)) view.site.sync = raw.site.sync;
    if (isHealthState(raw.site.health)) view.site.health = raw.site.health;
    const counts = raw.site.counts;
    if (isRecord(counts) && isRecord(counts.sync) && isRecord(counts.health)) view.site.counts = counts as unknown as SiteSyncHealth['counts'];
    const reconciles = parseReconciles(raw.site.reconciles);
    if (reconciles) view.site.reconciles = reconciles;
  }
  const siteEvents = events(raw.events);
  if (siteEvents) view.events = siteEvents;
  return view;
}

/**
 * Fills sync and health where the source did not say, with the one function that decides them: per host from
 * its phase and drift, for the site from its hosts. What the source said (the agent knows more) is kept.
 */
export function withSyncHealth(view: StatusView): StatusView {
  const hosts: Record<string, HostView> = {};
  for (const [name, host] of Object.entries(view.hosts)) {
    // Drift lines alone do not say their kind (a silent host is Missing, a powered-off one Degraded): the agent,
    // which knows, sends sync and health itself; other sources get what the phase says.
    const computed = syncAndHealth(host);
    hosts[name] = { ...host, sync: host.sync ?? computed.sync, health: host.health ?? computed.health };
  }
  const site = view.site ?? { revision: view.revision, rejected: null };
  const aggregate = siteSyncHealth(
    Object.values(hosts).map((h) => ({ sync: h.sync ?? 'Unknown', health: h.health ?? 'Missing' })),
    { revision: site.revision ?? view.revision, rejected: site.rejected !== null },
  );
  return { ...view, hosts, site: { ...site, sync: site.sync ?? aggregate.sync, health: site.health ?? aggregate.health, counts: site.counts ?? aggregate.counts } };
}
