// Reading Redfish resources defensively: every field may be missing or of another type on some BMC.

export type Resource = Record<string, unknown>;

export function isResource(v: unknown): v is Resource {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function field(r: unknown, ...path: string[]): unknown {
  let cur: unknown = r;
  for (const key of path) {
    if (!isResource(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

export function str(r: unknown, ...path: string[]): string | undefined {
  const v = field(r, ...path);
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
}

export function num(r: unknown, ...path: string[]): number | undefined {
  const v = field(r, ...path);
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
}

/** `{"@odata.id": "/redfish/v1/..."}` → the path. */
export function link(v: unknown): string | undefined {
  return str(v, '@odata.id');
}

/**
 * Links followed from one array at most: each is one more request to the BMC, and one answer within the size cap can
 * name a hundred thousand. No system has this many chassis, drives or NICs.
 */
export const MAX_LINKS = 256;

/** The paths of an array of links (a collection's Members, Links.Chassis, a Storage's Drives), the first MAX_LINKS. */
export function links(v: unknown): string[] {
  return Array.isArray(v) ? v.slice(0, MAX_LINKS).map(link).filter((p): p is string => p !== undefined) : [];
}

/** The last segment of a resource path: its Id. */
export function lastSegment(path: string): string {
  const parts = path.replace(/\/+$/, '').split('/');
  return parts[parts.length - 1] ?? '';
}
