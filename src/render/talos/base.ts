// A role's Talos base (`boot.config.talosBase`): the v1alpha1 document `talosctl gen config --with-secrets` writes,
// committed SOPS-encrypted for the agent's age key. The agent decrypts it (src/secrets/sops.ts) before it renders;
// without a key (`forseti plan` in CI, `render` on a laptop) the base is its skeleton: SOPS keeps keys in plain text,
// so the structure is known and every encrypted value shows as the placeholder.
//
// The served config is, in this order (each step a strategic merge patch by Talos' rules, strategic-merge.ts;
// talos.dev/v1.10/talos-guides/configuration/patching: "patches are applied in order"):
//   base (decrypted) ← the profile's config (the lab's plain patch: cluster-wide settings, extra documents)
//                    ← the host's own values (host-config.ts: hostname, install disk, interface, nameservers, sink).
import { createHash } from 'node:crypto';
import { parse } from 'yaml';
import type { SourceRef } from '../../core/source-ref.ts';
import { decryptSopsYaml, SopsError, type SopsValue } from '../../secrets/sops.ts';
import type { Lab } from '../../model/types.ts';
import { checkTalosConfig } from './check.ts';
import { MAIN_DOCUMENT, documentKey, isMap, parseConfigDocuments, serializeConfigDocuments, type Json, type JsonMap } from './documents.ts';
import { TalosConfigError } from './errors.ts';
import { renderTalosHostConfig, type TalosHostValues } from './host-config.ts';
import { redactTalosConfig, TALOS_REDACTED } from './redact.ts';
import { mergeConfigDocuments } from './strategic-merge.ts';
import { errorMessage } from '../../core/errors.ts';

/** A base ready to render from: decrypted, or its skeleton (encrypted values as placeholders); or why not. */
export type TalosBase =
  | {
      ok: true;
      text: string;
      decrypted: boolean;
      /** A skeleton's: the committed file's sha256, so that a plan sees a base that changed only in its encrypted values. */
      committed?: string;
    }
  | { ok: false; ref: SourceRef; message: string };

const ENCRYPTED = /^ENC\[AES256_GCM,/;

/** The base's skeleton: its structure with every encrypted value replaced by the placeholder. Pure, needs no key. */
export function talosBaseSkeleton(file: string, text: string): TalosBase {
  let value: unknown;
  try {
    value = parse(text, { maxAliasCount: 50 });
  } catch (err) {
    return { ok: false, ref: { file, line: 1, col: 1 }, message: `the Talos base does not parse: ${(err as Error).message.split('\n')[0]}` };
  }
  if (!isMap(value as Json)) return { ok: false, ref: { file, line: 1, col: 1 }, message: 'the Talos base is not a mapping' };
  const { sops: _metadata, ...body } = value as JsonMap;
  const skeleton = placeholders(body) as JsonMap;
  // `version` is encrypted like every value; the v1alpha1 document is the only one a base may be (the model checks
  // its fields, the agent what it decrypts to).
  if (skeleton['version'] === TALOS_REDACTED) skeleton['version'] = 'v1alpha1';
  const base = asBase(file, skeleton, false);
  return base.ok ? { ...base, committed: createHash('sha256').update(text).digest('hex') } : base;
}

/** The base decrypted with `identities`; a file that does not decrypt and verify whole is refused. */
export async function decryptTalosBase(file: string, text: string, identities: readonly string[]): Promise<TalosBase> {
  const unauthenticated: string[] = [];
  let tree: Record<string, SopsValue>;
  try {
    tree = await decryptSopsYaml(text, [...identities], file, { unauthenticated: (path) => unauthenticated.push(path.join('.')) });
  } catch (err) {
    if (!(err instanceof SopsError)) throw err;
    return { ok: false, ref: sopsRef(file, text), message: `the Talos base cannot be decrypted: ${err.message.slice(file.length + 2)}` };
  }
  // A value the MAC does not cover could have been added by anyone who can commit: a base is authenticated whole.
  if (unauthenticated.length > 0) return { ok: false, ref: sopsRef(file, text), message: `the Talos base has values its SOPS MAC does not cover (${unauthenticated.slice(0, 3).join(', ')}); encrypt it without --mac-only-encrypted` };
  const body = jsonOf(tree);
  if (body === undefined) return { ok: false, ref: sopsRef(file, text), message: 'the Talos base holds binary values, which a Talos config does not' };
  return asBase(file, body, true);
}

function asBase(file: string, body: JsonMap, decrypted: boolean): TalosBase {
  if (documentKey(body) !== MAIN_DOCUMENT) return { ok: false, ref: { file, line: 1, col: 1 }, message: 'the Talos base is not the v1alpha1 document (version: v1alpha1)' };
  return { ok: true, text: serializeConfigDocuments([{ key: MAIN_DOCUMENT, body }]), decrypted };
}

/**
 * Resolves every base the lab's profiles name, decrypting with `identities` when given. Owned by its caller (the
 * agent keeps one across commits): a base whose committed text did not change is not decrypted again.
 */
export class TalosBaseResolver {
  private cache = new Map<string, TalosBase>();

  async resolve(lab: Lab, identities: readonly string[] | undefined): Promise<Map<string, TalosBase>> {
    const out = new Map<string, TalosBase>();
    const next = new Map<string, TalosBase>();
    for (const profile of lab.profiles.values()) {
      const base = profile.boot.kind === 'image' ? profile.boot.config?.talosBase : undefined;
      if (base === undefined || out.has(base.file)) continue;
      const key = `${identities ? 'key' : 'skeleton'}\0${base.file}\0${base.text}`;
      const resolved = this.cache.get(key) ?? (identities ? await decryptTalosBase(base.file, base.text, identities) : talosBaseSkeleton(base.file, base.text));
      next.set(key, resolved);
      out.set(base.file, resolved);
    }
    this.cache = next;
    return out;
  }
}

export interface RenderedTalosRoleConfig {
  /** What the host is served. */
  text: string;
  /** What output may show: `text` with every secret replaced. */
  redacted: string;
}

/** The host's config from the role's base, the profile's patch and the host's values; throws TalosConfigError. */
export function renderFromTalosBase(base: TalosBase, patchText: string, values: TalosHostValues): RenderedTalosRoleConfig {
  if (!base.ok) throw new TalosConfigError(values.host, base.message, base.ref);
  let merged: string;
  try {
    merged = serializeConfigDocuments(mergeConfigDocuments(parseConfigDocuments(base.text), parseConfigDocuments(patchText, { patch: true })));
  } catch (err) {
    // PatchError (a rule broken) or the patch's YAML
    throw new TalosConfigError(values.host, `the profile's config does not patch the Talos base: ${errorMessage(err)}`);
  }
  const { text } = renderTalosHostConfig(merged, values);
  if (base.decrypted) {
    const problems = checkTalosConfig(text, values);
    if (problems.length > 0) throw new TalosConfigError(values.host, `a Talos node would refuse it: ${problems.map((p) => `${p.where}: ${p.message}`).join('; ')}`);
    return { text, redacted: redactTalosConfig(text) };
  }
  // Without the key only the structure shows: the committed file's digest tells a plan that the values changed.
  const note = `# encrypted values not shown; the base as committed: sha256:${base.committed ?? '?'}\n`;
  return { text: `${note}${text}`, redacted: `${note}${redactTalosConfig(text)}` };
}

function placeholders(v: Json): Json {
  if (Array.isArray(v)) return v.map(placeholders);
  if (isMap(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, placeholders(x)]));
  return typeof v === 'string' && ENCRYPTED.test(v) ? TALOS_REDACTED : v;
}

function jsonOf(v: SopsValue): JsonMap | undefined {
  const walk = (x: SopsValue): Json | undefined => {
    if (Buffer.isBuffer(x)) return undefined;
    if (Array.isArray(x)) {
      const items = x.map(walk);
      return items.some((i) => i === undefined) ? undefined : (items as Json[]);
    }
    if (x !== null && typeof x === 'object') {
      const out: JsonMap = {};
      for (const [k, y] of Object.entries(x)) {
        const j = walk(y);
        if (j === undefined) return undefined;
        out[k] = j;
      }
      return out;
    }
    return x;
  };
  const out = walk(v);
  return out !== undefined && isMap(out) ? out : undefined;
}

/** Where a decryption problem is reported: the file's sops metadata (its MAC and recipients). */
function sopsRef(file: string, text: string): SourceRef {
  const at = /^sops:/m.exec(text)?.index;
  return { file, line: at === undefined ? 1 : text.slice(0, at).split('\n').length, col: 1 };
}
