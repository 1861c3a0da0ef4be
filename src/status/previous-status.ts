// What a restarted agent takes over from the status branch it wrote before: the site's last reconciles and, per
// host file, the host's status and last actions. Lenient throughout: a damaged file, or one an older agent wrote
// without these fields, gives an empty history, never an error.
import { parse } from 'yaml';
import { parseActions, parseReconciles, type HostAction, type ReconcileRecord } from '../observe/activity.ts';
import { parseHostStatus, type HostStatus } from './host-status.ts';

export interface PreviousHost {
  /** The whole file, or null when it cannot be read as a host status (damaged, or not this host's). */
  status: HostStatus | null;
  actions: HostAction[];
}

export interface PreviousStatus {
  /** Oldest first, as site.yaml listed them. */
  reconciles: ReconcileRecord[];
  /** Every `hosts/<name>.yaml` there was, readable or not: a host that left the lab loses its file either way. */
  hosts: Map<string, PreviousHost>;
}

const HOST_FILE = /^hosts\/([^/]+)\.yaml$/;

/** From status files by path (`site.yaml`, `hosts/<name>.yaml`; others are ignored). */
export function parsePreviousStatus(files: ReadonlyMap<string, string>): PreviousStatus {
  const site = files.get('site.yaml');
  const reconciles = site === undefined ? [] : (parseReconciles(field(site, 'reconciles')) ?? []);
  const hosts = new Map<string, PreviousHost>();
  for (const [path, text] of files) {
    const name = HOST_FILE.exec(path)?.[1];
    if (name === undefined) continue;
    const status = hostStatus(text);
    // A file that names another host is not trusted for this one's history; one that fails the strict parse
    // (a phase a newer agent wrote, say) still gives its actions.
    if (status) hosts.set(name, status.host === name ? { status, actions: status.actions ?? [] } : { status: null, actions: [] });
    else hosts.set(name, { status: null, actions: field(text, 'host') === name ? (parseActions(field(text, 'actions')) ?? []) : [] });
  }
  return { reconciles, hosts };
}

function field(text: string, key: string): unknown {
  try {
    const doc: unknown = parse(text);
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>)[key] : undefined;
  } catch {
    return undefined;
  }
}

function hostStatus(text: string): HostStatus | null {
  try {
    return parseHostStatus(text);
  } catch {
    return null;
  }
}
