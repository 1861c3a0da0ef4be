// What a Redfish service shows of itself, read only: the service root without credentials; with them, how the login
// went and the first system's reset types, boot override settings, ETag and HPE POST state. Every finding is a fact
// the service answered, for `forseti bmc probe` to print.
import type { RedfishClient } from './client.ts';
import { field, str, strings } from './resources.ts';
import { bootOf, findSystem, postStateOf, powerStateOf, resetAction } from './system.ts';

export interface RedfishFindings {
  redfishVersion?: string;
  /** Root Vendor/Product, else the root's first Oem key. */
  vendor?: string;
  product?: string;
  /** The root names a session collection (Links.Sessions or SessionService). */
  sessionsOffered: boolean;
  login?: { kind: 'session' | 'basic'; tried: string[] };
  system?: {
    path: string;
    manufacturer?: string;
    model?: string;
    powerState?: string;
    resetTypes?: string[];
    resetTypesVia: 'inline' | 'actioninfo' | 'unsaid';
    bootTargets?: string[];
    /** `BootSourceOverrideSupported` (iLO 4) rather than @Redfish.AllowableValues. */
    bootTargetsOem: boolean;
    bootEnabled?: string[];
    bootMode?: string;
    bootModes?: string[];
    etag: boolean;
    postState?: string;
  };
}

/** The service root only (no credentials); null when the address answers but not as a Redfish service. */
export async function probeServiceRoot(client: RedfishClient): Promise<RedfishFindings | null> {
  const root = await client.serviceRoot();
  if (root === undefined || (str(root, 'RedfishVersion') === undefined && field(root, 'Systems') === undefined)) return null;
  const oem = field(root, 'Oem');
  const oemKey = oem && typeof oem === 'object' ? Object.keys(oem)[0] : undefined;
  const findings: RedfishFindings = { sessionsOffered: field(root, 'Links', 'Sessions') !== undefined || field(root, 'SessionService') !== undefined };
  const version = str(root, 'RedfishVersion');
  const vendor = str(root, 'Vendor') ?? oemKey;
  const product = str(root, 'Product');
  if (version) findings.redfishVersion = version;
  if (vendor) findings.vendor = vendor;
  if (product) findings.product = product;
  return findings;
}

/** Logs in (as the client does: a session, else Basic) and reads the first system. */
export async function probeSystem(client: RedfishClient, findings: RedfishFindings): Promise<RedfishFindings> {
  const system = await findSystem(client);
  const login = await client.loginMethod();
  const boot = bootOf(system.doc);
  const action = field(system.doc, 'Actions', '#ComputerSystem.Reset');
  const via = strings(field(action, 'ResetType@Redfish.AllowableValues')) ? 'inline' : str(action, '@Redfish.ActionInfo') ? 'actioninfo' : 'unsaid';
  const reset = await resetAction(client, system);
  const out: NonNullable<RedfishFindings['system']> = {
    path: system.path,
    resetTypesVia: via,
    bootTargetsOem: strings(field(system.doc, 'Boot', 'BootSourceOverrideTarget@Redfish.AllowableValues')) === undefined && boot.allowedTargets !== undefined,
    etag: system.etag !== undefined,
  };
  const manufacturer = str(system.doc, 'Manufacturer');
  const model = str(system.doc, 'Model');
  const power = powerStateOf(system.doc);
  const post = postStateOf(system.doc);
  if (manufacturer) out.manufacturer = manufacturer;
  if (model) out.model = model;
  if (power) out.powerState = power;
  if (reset.allowed) out.resetTypes = reset.allowed;
  if (boot.allowedTargets) out.bootTargets = boot.allowedTargets;
  if (boot.allowedEnabled) out.bootEnabled = boot.allowedEnabled;
  if (boot.mode) out.bootMode = boot.mode;
  if (boot.allowedModes) out.bootModes = boot.allowedModes;
  if (post) out.postState = post;
  return { ...findings, ...(login ? { login } : {}), system: out };
}
