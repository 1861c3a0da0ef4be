// A Talos machine config with every secret replaced by a placeholder, for `forseti render --what config` and plan
// output; and the secret values themselves, for the log redactor. The fields are those Talos' own
// (*Config).Redact replaces (pkg/machinery/config/types/v1alpha1/v1alpha1_provider.go): machine.token,
// machine.ca.key, cluster.secret, cluster.token, cluster.aescbcEncryptionSecret,
// cluster.secretboxEncryptionSecret, cluster.serviceAccount.key, cluster.ca.key, cluster.aggregatorCA.key,
// cluster.etcd.ca.key; and, because they authenticate too:
//   - cluster.id (with cluster.secret it talks to the discovery service);
//   - every private key, password and token wherever it sits: registry `auth` (password, auth, identityToken) and
//     TLS client keys, WireGuard `privateKey`, any field named key, token, secret or password;
//   - the SideroLink join token in any URL (`jointoken=`), and a password inside a URL;
//   - inline manifests that hold a Kubernetes Secret.
import { urlCredentials } from '../../model/url-credentials.ts';
import { REDACTED } from '../../redact/redactor.ts';
import { isMap, parseConfigDocuments, serializeConfigDocuments, type Json, type JsonMap } from './documents.ts';

/** Fields named like this hold a secret when their value is a non-empty string. */
const SECRET_FIELD = /^(key|token|secret|password|privateKey|identityToken|auth|bootstraptoken|aescbcEncryptionSecret|secretboxEncryptionSecret|encryptionSecret)$/i;
/** Exactly these paths of the v1alpha1 document, whatever their field names. */
const SECRET_PATHS: ReadonlySet<string> = new Set(['cluster.id', 'cluster.secret', 'cluster.token', 'machine.token']);
const JOIN_TOKEN = /([?&]jointoken=)[^&#\s]+/gi;
/** An inline manifest holding a Kubernetes Secret (`[ \t]*`, not `\s*`, after `^`: that rescanned every blank line). */
const SECRET_MANIFEST = /^[ \t]*kind:\s*Secret\b/m;

export const TALOS_REDACTED = REDACTED;

/** The config text with its secrets replaced; it still parses as the same documents. */
export function redactTalosConfig(text: string): string {
  const docs = parseConfigDocuments(text).map((d) => ({ key: d.key, body: walk(d.body, '', () => {}) as JsonMap }));
  return serializeConfigDocuments(docs);
}

/** Every secret value of a config (to hand to the log redactor before the config is served). */
export function talosConfigSecrets(text: string): string[] {
  const found = new Set<string>();
  for (const d of parseConfigDocuments(text)) walk(d.body, '', (s) => found.add(s));
  return [...found];
}

function walk(v: Json, path: string, seen: (secret: string) => void): Json {
  if (Array.isArray(v)) return v.map((x) => walk(x, `${path}[]`, seen));
  if (isMap(v)) {
    const out: JsonMap = {};
    for (const [k, x] of Object.entries(v)) {
      const p = path === '' ? k : `${path}.${k}`;
      out[k] = isSecret(k, p, x) ? hide(x as string, seen) : k === 'contents' && typeof x === 'string' && SECRET_MANIFEST.test(x) ? hide(x, seen) : walk(x, p, seen);
    }
    return out;
  }
  if (typeof v === 'string') return scrubString(v, seen);
  return v;
}

function isSecret(field: string, path: string, v: Json): boolean {
  return typeof v === 'string' && v !== '' && (SECRET_PATHS.has(path) || SECRET_FIELD.test(field));
}

function hide(secret: string, seen: (s: string) => void): string {
  seen(secret);
  return TALOS_REDACTED;
}

function scrubString(v: string, seen: (s: string) => void): string {
  const joined = v.replace(JOIN_TOKEN, (_m, prefix: string) => {
    const token = _m.slice(prefix.length);
    seen(token);
    return `${prefix}${TALOS_REDACTED}`;
  });
  const parts: string[] = [];
  let start = 0;
  for (const url of urlCredentials(joined)) {
    seen(joined.slice(url.password, url.at));
    parts.push(joined.slice(start, url.password), TALOS_REDACTED);
    start = url.at;
  }
  parts.push(joined.slice(start));
  return parts.join('');
}
