// The status file of one host on the status branch, e.g. `hosts/bld-003.yaml`: the published view of its state
// (src/core/host-state.ts ObservedHost) with the role, sync and health, history and actions around it.
import { parse, stringify } from 'yaml';
import { fastParseYaml } from '../core/fast-yaml.ts';
import { StatusParseError } from './status-parse-error.ts';
import { asRecord, nullableStr, oneOf, optStr, str } from './yaml-fields.ts';
import { actionForYaml, parseActions, type HostAction } from '../observe/activity.ts';
import { isHealthState, isSyncState, type HealthState, type SyncState } from '../observe/sync-health.ts';

import { PHASES, PROVISION_STEPS, type ObservedHost, type ObservedInventory, type Phase, type ProvisionStep } from '../core/host-state.ts';
import { errorMessage } from '../core/errors.ts';
import { isRecord, stripUndefined } from '../core/objects.ts';


export const HISTORY_LIMIT = 5;

export interface HostStatusError {
  message: string;
  /** The step that failed: a provisioning step, or the BMC operation (`boot-override`, `power-cycle`, ...). */
  step?: string;
  /** Where in the lab repository the cause is declared, `file:line:col`. */
  ref?: string;
}

export interface HostStatusBmc {
  /** false: the BMC takes a one-time boot override but keeps it for every boot. */
  bootOnce?: false;
  /** The override forseti left on it for every boot. */
  holds?: 'pxe' | 'disk';
}

export interface HostTransition {
  phase: Phase;
  step?: ProvisionStep;
  /** ISO time */
  at: string;
  revision?: string;
  message?: string;
}

export interface HostStatus {
  host: string;
  /** Desired role (profile name) at the attempted revision. */
  role: string;
  phase: Phase;
  /** Last provisioning step reached, while Provisioning (or where a Failed host stopped). */
  step?: ProvisionStep;
  /** Revision the host is known to run (last converged), null before the first convergence. */
  revision: string | null;
  /** Revision the agent is (or was last) driving the host toward. */
  attemptedRevision: string | null;
  lastError: HostStatusError | null;
  /** ISO time of the last phase change. */
  since: string;
  /** ISO time this file was last rendered. */
  updated: string;
  /** What the BMC reported at enrolment (model, memory, ...), as the host's state holds it. */
  inventory?: ObservedInventory;
  /** What the BMC turned out to do and the boot override forseti left on it (src/core/host-state.ts ObservedBmc). */
  bmc?: HostStatusBmc;
  /** The wipe token of the last wipe that completed. */
  wipedToken?: string;
  /** Last transitions, oldest first, at most HISTORY_LIMIT. */
  history?: HostTransition[];
  /** As the agent decided them with the drift it measured (src/observe/sync-health.ts). */
  sync?: SyncState;
  health?: HealthState;
  /** Last actions with their timings, oldest first. */
  actions?: HostAction[];
}


export function renderHostStatus(status: HostStatus): string {
  // Fixed key order keeps diffs on the status branch small and readable.
  const doc = stripUndefined({
    host: status.host,
    role: status.role,
    phase: status.phase,
    step: status.step,
    sync: status.sync,
    health: status.health,
    revision: status.revision,
    attemptedRevision: status.attemptedRevision,
    lastError: status.lastError ? stripUndefined({ message: status.lastError.message, step: status.lastError.step, ref: status.lastError.ref }) : null,
    since: status.since,
    updated: status.updated,
    inventory: status.inventory,
    bmc: status.bmc ? stripUndefined({ bootOnce: status.bmc.bootOnce, holds: status.bmc.holds }) : undefined,
    wipedToken: status.wipedToken,
    history: status.history?.slice(-HISTORY_LIMIT).map((t) => stripUndefined({ phase: t.phase, step: t.step, at: t.at, revision: t.revision, message: t.message })),
    actions: status.actions?.map(actionForYaml),
  });
  return stringify(doc, { lineWidth: 0 });
}

export function parseHostStatus(text: string): HostStatus {
  let raw: unknown;
  try {
    // The plain subset the agent writes takes microseconds (a restart reads every host's file); `yaml` the rest.
    raw = fastParseYaml(text, 'host', Infinity, false)?.value ?? parse(text);
  } catch (err) {
    throw new StatusParseError('host', errorMessage(err));
  }
  const obj = asRecord('host', raw, 'document');
  const phase = oneOf('host', str('host', obj, 'phase'), PHASES, 'phase') as Phase;
  let lastError: HostStatusError | null = null;
  if (obj.lastError !== undefined && obj.lastError !== null) {
    const e = asRecord('host', obj.lastError, 'lastError');
    lastError = stripUndefined({ message: str('host', e, 'message'), step: optStr('host', e, 'step'), ref: optStr('host', e, 'ref') });
  }
  let history: HostTransition[] | undefined;
  if (obj.history !== undefined && obj.history !== null) {
    if (!Array.isArray(obj.history)) throw new StatusParseError('host', 'history must be a list');
    history = obj.history.map((item: unknown, i) => {
      const t = asRecord('host', item, `history[${i}]`);
      return stripUndefined({
        phase: oneOf('host', str('host', t, 'phase'), PHASES, `history[${i}].phase`) as Phase,
        step: oneOf('host', optStr('host', t, 'step'), PROVISION_STEPS, `history[${i}].step`),
        at: str('host', t, 'at'),
        revision: optStr('host', t, 'revision'),
        message: optStr('host', t, 'message'),
      });
    });
  }
  return stripUndefined({
    host: str('host', obj, 'host'),
    role: str('host', obj, 'role'),
    phase,
    step: oneOf('host', optStr('host', obj, 'step'), PROVISION_STEPS, 'step'),
    revision: nullableStr('host', obj, 'revision'),
    attemptedRevision: nullableStr('host', obj, 'attemptedRevision'),
    lastError,
    since: str('host', obj, 'since'),
    updated: str('host', obj, 'updated'),
    inventory: parseInventory(obj.inventory),
    bmc: parseBmc(obj.bmc),
    wipedToken: optStr('host', obj, 'wipedToken'),
    history,
    // Written by newer agents only; read leniently so one odd entry does not hide the host.
    sync: isSyncState(obj.sync) ? obj.sync : undefined,
    health: isHealthState(obj.health) ? obj.health : undefined,
    actions: parseActions(obj.actions),
  });
}

/** Read leniently: an unknown value is left out, never guessed. */
function parseBmc(value: unknown): HostStatusBmc | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const raw = value as Record<string, unknown>;
  const bmc: HostStatusBmc = {};
  if (raw['bootOnce'] === false) bmc.bootOnce = false;
  if (raw['holds'] === 'pxe' || raw['holds'] === 'disk') bmc.holds = raw['holds'];
  return Object.keys(bmc).length > 0 ? bmc : undefined;
}

const INVENTORY_TEXT: ReadonlySet<string> = new Set(['manufacturer', 'model', 'serialNumber', 'bmcFirmware', 'cpuModel', 'macs', 'managementAddress'] satisfies Array<keyof ObservedInventory>);
const INVENTORY_COUNTS: ReadonlySet<string> = new Set(['cpus', 'memoryGiB', 'disks', 'diskGB'] satisfies Array<keyof ObservedInventory>);

/**
 * A status file's `inventory:` as the host state holds it (src/core/host-state.ts ObservedInventory), in the file's
 * order. Read leniently: an unknown field or one of the wrong type is left out, never guessed; `disks` written as a
 * list counts its entries.
 */
export function parseInventory(value: unknown): ObservedInventory | undefined {
  if (!isRecord(value)) return undefined;
  const inventory: Record<string, string | number> = {};
  for (const [key, v] of Object.entries(value)) {
    if (INVENTORY_TEXT.has(key) && typeof v === 'string') inventory[key] = v;
    else if (INVENTORY_COUNTS.has(key) && isCount(v)) inventory[key] = v;
    else if (key === 'disks' && Array.isArray(v)) inventory[key] = v.length;
  }
  return Object.keys(inventory).length > 0 ? (inventory as ObservedInventory) : undefined;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

export interface HostUpdate {
  role: string;
  phase: Phase;
  step?: ProvisionStep;
  revision?: string | null;
  attemptedRevision?: string | null;
  lastError?: HostStatusError | null;
  inventory?: ObservedInventory;
  /** null: nothing is known of the BMC any more (a new commit's driver, say); undefined: keep the previous. */
  bmc?: HostStatusBmc | null;
  wipedToken?: string;
  message?: string;
  sync?: SyncState;
  health?: HealthState;
  actions?: HostAction[];
}

/** The update a host's state makes to its status file: the file is a view of the state (secrets and nonces stay out). */
export function statusUpdate(state: ObservedHost, role: string, condition: { sync: SyncState; health: HealthState }, actions: HostAction[]): HostUpdate {
  const bmc = state.bmc;
  return {
    role,
    phase: state.phase,
    revision: state.appliedRevision ?? null,
    attemptedRevision: state.attemptRevision ?? null,
    lastError: state.lastError ? { message: state.lastError.message, ...(state.lastError.step ? { step: state.lastError.step } : {}) } : null,
    ...(state.step ? { step: state.step } : {}),
    ...(state.inventory ? { inventory: { ...state.inventory } } : {}),
    bmc: bmc && (bmc.bootOnce === false || bmc.holds) ? { ...(bmc.bootOnce === false ? { bootOnce: false } : {}), ...(bmc.holds ? { holds: bmc.holds } : {}) } : null,
    ...(state.wipedToken !== undefined ? { wipedToken: state.wipedToken } : {}),
    message: state.lastError?.message ?? `${state.phase}${state.step ? ` (${state.step})` : ''}`,
    sync: condition.sync,
    health: condition.health,
    ...(actions.length > 0 ? { actions } : {}),
  };
}

/**
 * The next status of a host: `since` moves and a history entry is added only when the phase or step changes;
 * fields not given in `update` keep their previous values.
 */
export function nextHostStatus(host: string, previous: HostStatus | null, update: HostUpdate, now: Date = new Date()): HostStatus {
  const at = now.toISOString();
  const moved = !previous || previous.phase !== update.phase || previous.step !== update.step;
  const revision = update.revision !== undefined ? update.revision : (previous?.revision ?? null);
  const attemptedRevision = update.attemptedRevision !== undefined ? update.attemptedRevision : (previous?.attemptedRevision ?? null);
  const history = previous?.history ?? [];
  return stripUndefined({
    host,
    role: update.role,
    phase: update.phase,
    step: update.step,
    revision,
    attemptedRevision,
    lastError: update.lastError !== undefined ? update.lastError : (previous?.lastError ?? null),
    since: moved ? at : (previous?.since ?? at),
    updated: at,
    inventory: update.inventory ?? previous?.inventory,
    bmc: update.bmc === null ? undefined : (update.bmc ?? previous?.bmc),
    wipedToken: update.wipedToken ?? previous?.wipedToken,
    sync: update.sync ?? previous?.sync,
    health: update.health ?? previous?.health,
    actions: update.actions ?? previous?.actions,
    history: moved
      ? [...history, stripUndefined({ phase: update.phase, step: update.step, at, revision: attemptedRevision ?? undefined, message: update.message })].slice(-HISTORY_LIMIT)
      : history,
  });
}
