// A structural check of a rendered Talos machine config: it parses as a multi-document config, carries what a node
// needs to join its cluster, and holds the host's own values. The rules are Talos' own where it has them
// (pkg/machinery/config/types/v1alpha1/v1alpha1_validation.go @00270f1: version v1alpha1, machine and cluster
// present, machine.type, the issuing CA, a control plane's CA key and a worker's lack of one, etcd only on control
// planes, the CNI name, discovery needing cluster.id and cluster.secret, persist; hostname.go: no HostnameConfig next
// to a static v1alpha1 hostname or stableHostname; documents of an unnamed kind at most once) and, beyond them, the
// fields a node needs to join (machine.token, cluster.token, cluster.ca.crt, cluster.clusterName,
// cluster.network, and on control planes the aggregator CA, service account key, etcd CA and encryption secret).
import { MAIN_DOCUMENT, isMap, parseConfigDocuments, valueAt, type ConfigDocument, type Json, type JsonMap } from './documents.ts';
import { EVENT_SINK_KIND, HOSTNAME_KIND, isEndpoint, type TalosHostValues } from './host-config.ts';
import { canonical } from './strategic-merge.ts';

export interface TalosConfigProblem {
  /** The document (`v1alpha1`, `v1alpha1/EventSinkConfig`) and field concerned. */
  where: string;
  message: string;
}

/** Every problem of a config (none: it is one a Talos node accepts as far as forseti can tell). */
export function checkTalosConfig(text: string, expect?: TalosHostValues): TalosConfigProblem[] {
  let docs: ConfigDocument[];
  try {
    docs = parseConfigDocuments(text);
  } catch (err) {
    return [{ where: 'config', message: `does not parse: ${(err as Error).message}` }];
  }
  const problems: TalosConfigProblem[] = [];
  const problem = (where: string, message: string): void => void problems.push({ where, message });
  const seen = new Set<string>();
  for (const d of docs) {
    if (seen.has(d.key)) problem(d.key, d.key === MAIN_DOCUMENT ? 'there is more than one v1alpha1 document' : 'this document appears twice (an unnamed kind may appear once, a named one once per name)');
    seen.add(d.key);
  }
  const main = docs.find((d) => d.key === MAIN_DOCUMENT)?.body;
  if (main === undefined) problem(MAIN_DOCUMENT, 'the v1alpha1 document is missing (it is the only mandatory one)');
  else checkMain(main, (field, message) => problem(`${MAIN_DOCUMENT} ${field}`, message));
  const hostnameDoc = docs.find((d) => d.key === HOSTNAME_KIND)?.body;
  if (hostnameDoc !== undefined && main !== undefined) {
    if (valueAt(main, 'machine.network.hostname') !== undefined) problem(HOSTNAME_KIND, 'static hostname is already set in v1alpha1 config (machine.network.hostname)');
    if (valueAt(main, 'machine.features.stableHostname') === true) problem(HOSTNAME_KIND, 'v1alpha1 sets machine.features.stableHostname, which a HostnameConfig replaces');
    if (typeof hostnameDoc['hostname'] === 'string' && hostnameDoc['auto'] !== undefined && hostnameDoc['auto'] !== 'off') problem(HOSTNAME_KIND, 'hostname and auto (other than off) are set together');
  }
  const sink = docs.find((d) => d.key === EVENT_SINK_KIND)?.body;
  if (sink !== undefined && (typeof sink['endpoint'] !== 'string' || !isEndpoint(sink['endpoint']))) problem(`${EVENT_SINK_KIND} endpoint`, 'is not host:port');
  if (expect !== undefined && main !== undefined) checkHostValues(main, hostnameDoc, sink, expect, problem);
  return problems;
}

function checkMain(main: JsonMap, problem: (field: string, message: string) => void): void {
  const str = (path: string): string | undefined => {
    const v = valueAt(main, path);
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const need = (path: string, why = 'is required'): void => {
    if (str(path) === undefined) problem(path, why);
  };
  if (main['version'] !== 'v1alpha1') problem('version', 'must be v1alpha1');
  if (!isMap(main['machine'])) return problem('machine', 'machine instructions are required');
  if (!isMap(main['cluster'])) return problem('cluster', 'cluster instructions are required');
  if (main['persist'] === false) problem('persist', 'persist: false is not supported');
  const type = str('machine.type');
  if (type !== 'controlplane' && type !== 'worker' && type !== 'init') problem('machine.type', `unknown machine type ${JSON.stringify(valueAt(main, 'machine.type'))}`);
  const control = type === 'controlplane' || type === 'init';
  const accepted = valueAt(main, 'machine.acceptedCAs');
  if (str('machine.ca.crt') === undefined && !(Array.isArray(accepted) && accepted.length > 0)) problem('machine.ca', 'issuing CA or some accepted CAs are required (.machine.ca, machine.acceptedCAs)');
  need('machine.token');
  need('cluster.token');
  need('cluster.ca.crt');
  need('cluster.clusterName');
  if (!isMap(valueAt(main, 'cluster.network'))) problem('cluster.network', 'is required');
  const endpoint = str('cluster.controlPlane.endpoint');
  if (endpoint === undefined) problem('cluster.controlPlane.endpoint', 'is required');
  else if (!/^https:\/\/[^\s/]+(:\d+)?\/?$/.test(endpoint)) problem('cluster.controlPlane.endpoint', `${JSON.stringify(endpoint)} is not a URL like https://10.0.0.10:6443`);
  if (control) {
    need('machine.ca.key', 'is required on a control plane');
    need('cluster.ca.key', 'is required on a control plane');
    need('cluster.aggregatorCA.crt', 'is required on a control plane');
    need('cluster.aggregatorCA.key', 'is required on a control plane');
    need('cluster.serviceAccount.key', 'is required on a control plane');
    need('cluster.etcd.ca.crt', 'is required on a control plane');
    need('cluster.etcd.ca.key', 'is required on a control plane');
    if (str('cluster.secretboxEncryptionSecret') === undefined && str('cluster.aescbcEncryptionSecret') === undefined) problem('cluster.secretboxEncryptionSecret', 'an encryption secret (secretbox or aescbc) is required on a control plane');
  } else {
    if (str('machine.ca.key') !== undefined) problem('machine.ca.key', 'must not be on a worker');
    if (str('cluster.ca.key') !== undefined) problem('cluster.ca.key', 'must not be on a worker');
    if (isMap(valueAt(main, 'cluster.etcd'))) problem('cluster.etcd', 'etcd config is only allowed on control plane machines');
  }
  const cni = valueAt(main, 'cluster.network.cni.name');
  if (cni !== undefined && cni !== 'flannel' && cni !== 'custom' && cni !== 'none') problem('cluster.network.cni.name', `CNI ${JSON.stringify(cni)} is not flannel, custom or none`);
  if (valueAt(main, 'cluster.discovery.enabled') === true) {
    need('cluster.id', 'is required when discovery is enabled');
    need('cluster.secret', 'is required when discovery is enabled');
  }
}

function checkHostValues(main: JsonMap, hostnameDoc: JsonMap | undefined, sink: JsonMap | undefined, v: TalosHostValues, problem: (where: string, message: string) => void): void {
  const hostname = hostnameDoc !== undefined ? hostnameDoc['hostname'] : valueAt(main, 'machine.network.hostname');
  if (hostname !== v.hostname) problem(hostnameDoc ? `${HOSTNAME_KIND} hostname` : 'v1alpha1 machine.network.hostname', `is ${JSON.stringify(hostname)}, not ${JSON.stringify(v.hostname)}`);
  if (v.installDisk !== undefined) {
    const disk = valueAt(main, 'machine.install.disk');
    if (disk !== v.installDisk) problem('v1alpha1 machine.install.disk', `is ${JSON.stringify(disk)}, not ${JSON.stringify(v.installDisk)}`);
    if (valueAt(main, 'machine.install.diskSelector') !== undefined) problem('v1alpha1 machine.install.diskSelector', 'is set next to the host\'s install disk: remove it from the base');
  }
  if (v.network !== undefined) {
    const interfaces = valueAt(main, 'machine.network.interfaces');
    const selector = canonical({ hardwareAddr: v.network.mac });
    const matches = (Array.isArray(interfaces) ? interfaces : []).filter((i): i is JsonMap => isMap(i) && canonical(i['deviceSelector']) === selector);
    if (matches.length !== 1) problem('v1alpha1 machine.network.interfaces', `has ${matches.length} entries for hardwareAddr ${v.network.mac}, not 1`);
    const addresses = matches[0]?.['addresses'];
    if (canonical(sorted(addresses)) !== canonical(sorted(v.network.addresses))) {
      problem('v1alpha1 machine.network.interfaces', `the interface of ${v.network.mac} has addresses ${JSON.stringify(addresses ?? [])}, not the host's ${JSON.stringify(v.network.addresses)}`);
    }
  }
  if (v.eventSink !== undefined && sink?.['endpoint'] !== v.eventSink) problem(EVENT_SINK_KIND, `endpoint is ${JSON.stringify(sink?.['endpoint'])}, not the agent's ${v.eventSink}`);
}

function sorted(v: Json | undefined): Json {
  return Array.isArray(v) ? [...v].map((x) => canonical(x)).sort() : v ?? [];
}
