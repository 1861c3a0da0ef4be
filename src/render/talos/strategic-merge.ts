// Talos' strategic merge patches, the rules `talosctl gen config --config-patch` and `talosctl machineconfig
// patch` follow (talos.dev/v1.10/talos-guides/configuration/patching; the v1.9 text is siderolabs/talos
// website/content/v1.9/talos-guides/configuration/patching.md @392c479):
//   - a patch is a partial config; "patch values override machine configuration values";
//   - "if the field value is a list, the patch value is appended to the list", except:
//       cluster.network.podSubnets and cluster.network.serviceSubnets are overwritten;
//       machine.network.interfaces entries merge when `interface:` or `deviceSelector:` match;
//       vlans of an interface merge when `vlanId:` matches;
//       cluster.apiServer.auditPolicy is replaced as a whole;
//       ExtensionServiceConfig configFiles merge when `mountPath:` matches;
//   - `$patch: delete` on a list item removes the matching item; on a document (apiVersion, kind[, name]) removes
//     the document; the v1alpha1 document cannot be deleted;
//   - multi-document patches: "Documents with matching tuples (apiVersion, kind, name) are merged ... If the
//     document on the right doesn't exist on the left, it is appended" (configpatcher.StrategicMerge, pkg.go.dev).
import { MAIN_DOCUMENT, isMap, type ConfigDocument, type Json, type JsonMap } from './documents.ts';

const DELETE = '$patch';

/** Lists replaced as a whole, by path from the document root (v1alpha1). */
const REPLACED: ReadonlySet<string> = new Set(['cluster.network.podSubnets', 'cluster.network.serviceSubnets', 'cluster.apiServer.auditPolicy']);

/** Lists whose items merge by identity, by path (`*` = every item of a list); the identity of an item, or undefined. */
const KEYED: Array<{ path: RegExp; identity: (item: JsonMap) => string | undefined }> = [
  {
    path: /^v1alpha1:machine\.network\.interfaces$/,
    identity: (i) => (typeof i['interface'] === 'string' ? `interface=${i['interface']}` : isMap(i['deviceSelector']) ? `deviceSelector=${canonical(i['deviceSelector'])}` : undefined),
  },
  { path: /^v1alpha1:machine\.network\.interfaces\.\*\.vlans$/, identity: (i) => (typeof i['vlanId'] === 'number' ? `vlanId=${i['vlanId']}` : undefined) },
  { path: /^[^:]*\/ExtensionServiceConfig(\/[^:]*)?:configFiles$/, identity: (i) => (typeof i['mountPath'] === 'string' ? `mountPath=${i['mountPath']}` : undefined) },
];

export class PatchError extends Error {
  override readonly name = 'PatchError';
}

/** Applies a multi-document strategic merge patch to a config; the inputs are not changed. */
export function mergeConfigDocuments(base: readonly ConfigDocument[], patch: readonly ConfigDocument[]): ConfigDocument[] {
  const out = base.map((d) => ({ key: d.key, body: structuredClone(d.body) }));
  for (const p of patch) {
    const i = out.findIndex((d) => d.key === p.key);
    if (p.body[DELETE] === 'delete') {
      if (p.key === MAIN_DOCUMENT) throw new PatchError('the v1alpha1 document cannot be deleted');
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i < 0) out.push({ key: p.key, body: stripDirectives(structuredClone(p.body)) as JsonMap });
    else out[i] = { key: p.key, body: mergeMap(out[i]?.body ?? {}, p.body, `${p.key}:`) };
  }
  return out;
}

function mergeMap(base: JsonMap, patch: JsonMap, path: string): JsonMap {
  const out: JsonMap = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (k === DELETE) continue;
    out[k] = mergeValue(out[k], v, path.endsWith(':') ? `${path}${k}` : `${path}.${k}`);
  }
  return out;
}

function mergeValue(base: Json | undefined, patch: Json, path: string): Json {
  const fieldPath = path.slice(path.indexOf(':') + 1);
  if (path.startsWith(`${MAIN_DOCUMENT}:`) && REPLACED.has(fieldPath)) return stripDirectives(structuredClone(patch));
  if (isMap(base) && isMap(patch)) return mergeMap(base, patch, path);
  if (Array.isArray(base) && Array.isArray(patch)) return mergeList(base, patch, path);
  return stripDirectives(structuredClone(patch));
}

function mergeList(base: Json[], patch: Json[], path: string): Json[] {
  const keyed = KEYED.find((k) => k.path.test(path));
  const out = [...base];
  for (const item of patch) {
    const identity = keyed !== undefined && isMap(item) ? keyed.identity(item) : undefined;
    const at = identity === undefined ? -1 : out.findIndex((b) => isMap(b) && keyed?.identity(b) === identity);
    if (isMap(item) && item[DELETE] === 'delete') {
      if (at >= 0) out.splice(at, 1);
      else if (identity === undefined) {
        const same = out.findIndex((b) => canonical(b) === canonical(withoutDirective(item)));
        if (same >= 0) out.splice(same, 1);
      }
      continue;
    }
    if (at >= 0) out[at] = mergeMap(out[at] as JsonMap, item as JsonMap, `${path}.*`);
    else out.push(stripDirectives(structuredClone(item)));
  }
  return out;
}

function withoutDirective(item: JsonMap): JsonMap {
  const { [DELETE]: _d, ...rest } = item;
  return rest;
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.filter((x) => !(isMap(x) && x[DELETE] === 'delete')).map(stripDirectives);
  if (isMap(v)) return Object.fromEntries(Object.entries(v).filter(([k]) => k !== DELETE).map(([k, x]) => [k, stripDirectives(x)]));
  return v;
}

/** A value as text with map keys sorted, for comparing items (deviceSelector equality). */
export function canonical(v: Json | undefined): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isMap(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v ?? null);
}
