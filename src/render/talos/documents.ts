// A Talos machine configuration as documents. "The file might contain one or more configuration documents
// separated by `---` ... the v1alpha1 document ... is the only mandatory document" (talos.dev/v1.10/reference/
// configuration). The v1alpha1 document has the legacy shape (`version: v1alpha1`, no apiVersion/kind); every other
// document has `apiVersion` and `kind`, and `name` when its kind is named (Talos 1.5+ multi-document config).
import { Document, parseAllDocuments } from 'yaml';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonMap = { [key: string]: Json };

export interface ConfigDocument {
  /** `v1alpha1` for the main document, else `<apiVersion>/<kind>` and `/<name>` for a named kind. */
  key: string;
  body: JsonMap;
}

export const MAIN_DOCUMENT = 'v1alpha1';
/** Talos configs use no anchors; a few are tolerated, an alias bomb is not. */
const MAX_ALIASES = 50;

export function isMap(v: Json | undefined): v is JsonMap {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The identity Talos merges documents by: (apiVersion, kind, name), the v1alpha1 document by its version. */
export function documentKey(body: JsonMap): string | undefined {
  if (body['kind'] === undefined && body['apiVersion'] === undefined) return body['version'] === 'v1alpha1' ? MAIN_DOCUMENT : undefined;
  const { apiVersion, kind, name } = body;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return undefined;
  return typeof name === 'string' ? `${apiVersion}/${kind}/${name}` : `${apiVersion}/${kind}`;
}

/**
 * Parses multi-document YAML; throws Error naming the document and the line of the first problem. `patch`: a
 * strategic merge patch, whose v1alpha1 part may leave out `version` ("Strategic merge patches look like incomplete
 * machine configuration files": `machine: {network: {hostname: worker1}}`, talos.dev/v1.10/talos-guides/
 * configuration/patching).
 */
export function parseConfigDocuments(text: string, options: { patch?: boolean } = {}): ConfigDocument[] {
  const out: ConfigDocument[] = [];
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  if (!Array.isArray(docs)) return out; // an empty stream
  docs.forEach((doc, i) => {
    const err = doc.errors[0];
    if (err !== undefined) throw new Error(`document ${i + 1}: ${err.message.split('\n')[0]}`);
    if (doc.contents === null) return; // an empty document (a trailing ---)
    const body = doc.toJS({ maxAliasCount: MAX_ALIASES }) as Json;
    if (!isMap(body)) throw new Error(`document ${i + 1} is not a mapping`);
    const key = documentKey(body) ?? (options.patch && body['apiVersion'] === undefined && body['kind'] === undefined && body['version'] === undefined ? MAIN_DOCUMENT : undefined);
    if (key === undefined) throw new Error(`document ${i + 1} is neither the v1alpha1 document (version: v1alpha1) nor one with apiVersion and kind`);
    out.push({ key, body });
  });
  return out;
}

/** Multi-document YAML, the v1alpha1 document first as Talos writes it. */
export function serializeConfigDocuments(docs: readonly ConfigDocument[]): string {
  const ordered = [...docs.filter((d) => d.key === MAIN_DOCUMENT), ...docs.filter((d) => d.key !== MAIN_DOCUMENT)];
  return ordered.map((d) => new Document(d.body).toString({ lineWidth: 0 })).join('---\n');
}

/** The value at a dotted path of a mapping (`machine.network.hostname`), or undefined. */
export function valueAt(body: JsonMap, path: string): Json | undefined {
  let v: Json | undefined = body;
  for (const part of path.split('.')) v = isMap(v) ? v[part] : undefined;
  return v;
}
