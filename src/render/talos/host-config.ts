// One host's complete Talos machine config: the role's base (as `talosctl gen config --with-secrets` writes it,
// kept SOPS-encrypted in the lab repository) with the host's own values merged in as a strategic merge patch
// (strategic-merge.ts). Written for Talos v1.10 (the seed lab's) and the HostnameConfig document of v1.12+:
//   - hostname: `machine.network.hostname` (v1alpha1_types.go); when the base has a HostnameConfig document
//     (pkg/machinery/config/types/network/hostname.go, "feat: implement HostConfig multi-doc"), it goes there
//     with `auto: off`, because Talos refuses a HostnameConfig next to a v1alpha1 static hostname;
//   - install disk: `machine.install.disk`;
//   - addresses: an interface entry selected by `deviceSelector.hardwareAddr` with `addresses` and a default
//     route, and `machine.network.nameservers` (machine.network, v1alpha1);
//   - the event sink: an `EventSinkConfig` document (`endpoint: host:port`, IPv6 as `[addr]:port`;
//     pkg/machinery/config/types/runtime/event_sink.go). Kernel arguments do not survive the install, this does.
// `talos.halt_if_installed=1` is a kernel argument of the PXE line, not config.
import { isIP } from 'node:net';
import { MAIN_DOCUMENT, isMap, parseConfigDocuments, serializeConfigDocuments, valueAt, type ConfigDocument, type Json, type JsonMap } from './documents.ts';
import { TalosConfigError } from './errors.ts';
import { PatchError, canonical, mergeConfigDocuments } from './strategic-merge.ts';

export interface TalosHostNetwork {
  /** The NIC, by MAC (deviceSelector.hardwareAddr). */
  mac: string;
  /** CIDR addresses, e.g. 10.77.0.11/24. */
  addresses: string[];
  gateway?: string;
  nameservers?: string[];
}

export interface TalosHostValues {
  /** forseti's name of the host, for errors. */
  host: string;
  hostname: string;
  installDisk?: string;
  network?: TalosHostNetwork;
  /** The agent's event sink, `host:port`. */
  eventSink?: string;
}

export interface RenderedTalosConfig {
  documents: ConfigDocument[];
  /** The multi-document YAML served to the host. */
  text: string;
}

export const EVENT_SINK_KIND = 'v1alpha1/EventSinkConfig';
export const HOSTNAME_KIND = 'v1alpha1/HostnameConfig';

/** The host's complete config from the role's base; throws TalosConfigError when it cannot be made. */
export function renderTalosHostConfig(baseText: string, values: TalosHostValues): RenderedTalosConfig {
  let base: ConfigDocument[];
  try {
    base = parseConfigDocuments(baseText);
  } catch (err) {
    throw new TalosConfigError(values.host, `the base config does not parse: ${(err as Error).message}`);
  }
  if (!base.some((d) => d.key === MAIN_DOCUMENT)) throw new TalosConfigError(values.host, 'the base config has no v1alpha1 document (version: v1alpha1)');
  let documents: ConfigDocument[];
  try {
    documents = mergeConfigDocuments(base, hostPatch(base, values));
  } catch (err) {
    if (err instanceof PatchError) throw new TalosConfigError(values.host, err.message);
    throw err;
  }
  return { documents, text: serializeConfigDocuments(documents) };
}

/** The host's values as a strategic merge patch of the base (multi-document). */
export function hostPatch(base: readonly ConfigDocument[], values: TalosHostValues): ConfigDocument[] {
  checkValues(values);
  const main = base.find((d) => d.key === MAIN_DOCUMENT)?.body ?? {};
  const hasHostnameDoc = base.some((d) => d.key === HOSTNAME_KIND);
  const machine: JsonMap = {};
  const network: JsonMap = {};
  if (!hasHostnameDoc) network['hostname'] = values.hostname;
  if (values.network) Object.assign(network, networkPatch(main, values.network));
  if (Object.keys(network).length > 0) machine['network'] = network;
  if (values.installDisk !== undefined) machine['install'] = { disk: values.installDisk };
  const patch: ConfigDocument[] = [{ key: MAIN_DOCUMENT, body: { version: 'v1alpha1', ...(Object.keys(machine).length > 0 ? { machine } : {}) } }];
  if (hasHostnameDoc) patch.push({ key: HOSTNAME_KIND, body: { apiVersion: 'v1alpha1', kind: 'HostnameConfig', hostname: values.hostname, auto: 'off' } });
  if (values.eventSink !== undefined) patch.push({ key: EVENT_SINK_KIND, body: { apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: values.eventSink } });
  return patch;
}

/**
 * Lists are appended by the merge rules: the patch carries only what the base does not hold yet, so a base that
 * already names the host's nameserver or route does not get it twice.
 */
function networkPatch(main: JsonMap, net: TalosHostNetwork): JsonMap {
  const selector = { hardwareAddr: net.mac };
  const baseInterfaces = valueAt(main, 'machine.network.interfaces');
  const existing = Array.isArray(baseInterfaces) ? baseInterfaces.find((i) => isMap(i) && canonical(i['deviceSelector']) === canonical(selector)) : undefined;
  const has = (field: string, v: Json): boolean => isMap(existing) && Array.isArray(existing[field]) && existing[field].some((x) => canonical(x) === canonical(v));
  const route: JsonMap | undefined = net.gateway === undefined ? undefined : { network: '0.0.0.0/0', gateway: net.gateway };
  const iface: JsonMap = { deviceSelector: selector, addresses: net.addresses.filter((a) => !has('addresses', a)) };
  if (route !== undefined && !has('routes', route)) iface['routes'] = [route];
  const out: JsonMap = { interfaces: [iface] };
  const baseNameservers = valueAt(main, 'machine.network.nameservers');
  const nameservers = (net.nameservers ?? []).filter((n) => !(Array.isArray(baseNameservers) && baseNameservers.includes(n)));
  if (nameservers.length > 0) out['nameservers'] = nameservers;
  return out;
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

function checkValues(v: TalosHostValues): void {
  const bad = (what: string): never => {
    throw new TalosConfigError(v.host, what);
  };
  if (!HOSTNAME.test(v.hostname)) bad(`hostname ${JSON.stringify(v.hostname)} is not a DNS name`);
  if (v.installDisk !== undefined && !/^\/dev\/[A-Za-z0-9/_.:-]+$/.test(v.installDisk)) bad(`install disk ${JSON.stringify(v.installDisk)} is not a /dev path`);
  if (v.network) {
    if (!MAC.test(v.network.mac)) bad(`MAC ${JSON.stringify(v.network.mac)} is not a MAC address`);
    for (const a of v.network.addresses) if (!isCidr(a)) bad(`address ${JSON.stringify(a)} is not an address with a prefix (10.0.0.5/24)`);
    if (v.network.addresses.length === 0) bad('the interface has no address');
    if (v.network.gateway !== undefined && isIP(v.network.gateway) === 0) bad(`gateway ${JSON.stringify(v.network.gateway)} is not an IP address`);
    for (const n of v.network.nameservers ?? []) if (isIP(n) === 0) bad(`nameserver ${JSON.stringify(n)} is not an IP address`);
  }
  if (v.eventSink !== undefined && !isEndpoint(v.eventSink)) bad(`event sink ${JSON.stringify(v.eventSink)} is not host:port (an IPv6 address in brackets)`);
}

export function isCidr(text: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  const family = m ? isIP(m[1] ?? '') : 0;
  return family !== 0 && Number(m?.[2]) <= (family === 4 ? 32 : 128);
}

/** `host:port` as Go's net.SplitHostPort takes it: an IPv6 address must be in brackets. */
export function isEndpoint(text: string): boolean {
  const m = /^(\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return false;
  const port = Number(m[4]);
  if (port < 1 || port > 65535) return false;
  if (m[2] !== undefined) return isIP(m[2]) === 6;
  return isIP(m[3] ?? '') === 4 || HOSTNAME.test(m[3] ?? '');
}
