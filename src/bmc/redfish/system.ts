// The ComputerSystem: finding it, its power state, its reset action and what it allows, its boot override.
import type { RedfishClient } from './client.ts';
import { RedfishServiceError } from './errors.ts';
import { field, isResource, lastSegment, links, str, strings } from './resources.ts';
import type { Resource } from './resources.ts';

export const SYSTEMS_PATH = '/redfish/v1/Systems';

/** One read of the system resource. */
export interface SystemRead {
  path: string;
  doc: Resource;
  etag?: string;
}

/** The system with the given Id, else the collection's first member. */
export async function findSystem(client: RedfishClient, systemId?: string): Promise<SystemRead> {
  const collection = await client.get(SYSTEMS_PATH);
  const members = links(field(collection.body, 'Members'));
  const path = systemId === undefined ? members[0] : members.find((m) => lastSegment(m) === systemId || m === systemId);
  if (path === undefined) {
    const what = systemId === undefined ? 'no members' : `no system "${systemId}" (members: ${members.map(lastSegment).join(', ') || 'none'})`;
    throw new RedfishServiceError(client.bmc, `GET ${SYSTEMS_PATH}`, what);
  }
  return readSystem(client, path);
}

export async function readSystem(client: RedfishClient, path: string): Promise<SystemRead> {
  const response = await client.get(path);
  if (!isResource(response.body)) throw new RedfishServiceError(client.bmc, `GET ${path}`, 'the system resource is not a JSON object');
  return { path, doc: response.body, ...(response.etag ? { etag: response.etag } : {}) };
}

/** PowerState as Redfish says it: On, Off, PoweringOn, PoweringOff, Paused; undefined when absent. */
export function powerStateOf(system: Resource): string | undefined {
  return str(system, 'PowerState');
}

export interface ResetAction {
  target: string;
  /** undefined: the BMC does not say (neither AllowableValues nor ActionInfo). */
  allowed: string[] | undefined;
}

/** The #ComputerSystem.Reset action: inline ResetType@Redfish.AllowableValues, or the @Redfish.ActionInfo resource. */
export async function resetAction(client: RedfishClient, system: SystemRead): Promise<ResetAction> {
  const action = field(system.doc, 'Actions', '#ComputerSystem.Reset');
  if (!isResource(action)) throw new RedfishServiceError(client.bmc, `GET ${system.path}`, 'the system has no #ComputerSystem.Reset action');
  const target = str(action, 'target') ?? `${system.path}/Actions/ComputerSystem.Reset`;
  const inline = strings(action['ResetType@Redfish.AllowableValues']);
  if (inline !== undefined) return { target, allowed: inline };
  const infoPath = str(action, '@Redfish.ActionInfo');
  if (infoPath === undefined) return { target, allowed: undefined };
  const info = await client.get(infoPath);
  const parameters = field(info.body, 'Parameters');
  const resetType = Array.isArray(parameters) ? parameters.find((p) => str(p, 'Name') === 'ResetType') : undefined;
  return { target, allowed: strings(field(resetType, 'AllowableValues')) };
}

export async function reset(client: RedfishClient, action: ResetAction, resetType: string): Promise<void> {
  await client.post(action.target, { ResetType: resetType });
}

/** The Boot object's override settings and what the BMC says it allows. */
export interface BootSettings {
  enabled?: string;
  target?: string;
  mode?: string;
  allowedTargets?: string[];
  allowedEnabled?: string[];
  allowedModes?: string[];
}

export function bootOf(system: Resource): BootSettings {
  const boot = field(system, 'Boot');
  const out: BootSettings = {};
  const enabled = str(boot, 'BootSourceOverrideEnabled');
  const target = str(boot, 'BootSourceOverrideTarget');
  const mode = str(boot, 'BootSourceOverrideMode');
  // iLO 4 lists the targets in its own BootSourceOverrideSupported (HPE iLO 4 RESTful API reference; openstack/proliantutils'
  // iLO 4 samples); Redfish services annotate them with @Redfish.AllowableValues.
  const allowedTargets = strings(field(boot, 'BootSourceOverrideTarget@Redfish.AllowableValues')) ?? strings(field(boot, 'BootSourceOverrideSupported'));
  const allowedEnabled = strings(field(boot, 'BootSourceOverrideEnabled@Redfish.AllowableValues'));
  const allowedModes = strings(field(boot, 'BootSourceOverrideMode@Redfish.AllowableValues'));
  if (enabled) out.enabled = enabled;
  if (target) out.target = target;
  if (mode) out.mode = mode;
  if (allowedTargets) out.allowedTargets = allowedTargets;
  if (allowedEnabled) out.allowedEnabled = allowedEnabled;
  if (allowedModes) out.allowedModes = allowedModes;
  return out;
}

/** What forseti writes into Boot. */
export interface BootPatch {
  BootSourceOverrideEnabled: string;
  BootSourceOverrideTarget?: string;
  BootSourceOverrideMode?: string;
}

/** `ifMatch` replaces the system's ETag (`*` for a service that demands If-Match but gives no ETag). */
export async function patchBoot(client: RedfishClient, system: SystemRead, patch: BootPatch, ifMatch?: string): Promise<void> {
  await client.patch(system.path, { Boot: patch }, ifMatch ?? system.etag);
}

/**
 * HPE's POST state (Oem.Hpe.PostState from iLO 5 on, Oem.Hp.PostState on iLO 4: "Unknown, Reset, PowerOff, InPost,
 * InPostDiscoveryComplete, FinishedPost", HPE iLO 4 API reference); undefined on other services.
 */
export function postStateOf(system: Resource): string | undefined {
  return str(system, 'Oem', 'Hpe', 'PostState') ?? str(system, 'Oem', 'Hp', 'PostState');
}

/**
 * The system is in POST, where HPE iLOs refuse boot changes ("iLO.x.UnableToModifyDuringSystemPOST ... retry after the
 * computer system is either fully booted or powered off", iLO message registry; HPE blog "Master the Redfish Server
 * States": the boot order can only be modified in the Off or FinishedPost states).
 */
export function inPost(system: Resource): boolean {
  const state = postStateOf(system);
  return state === 'InPost' || state === 'InPostDiscoveryStart' || state === 'InPostDiscoveryComplete' || state === 'Reset';
}
