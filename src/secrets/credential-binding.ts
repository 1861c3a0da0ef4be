// What a credential may be used for and where it may be sent: declared by the operator next to the secret (the
// secrets file, FORSETI_CREDENTIAL_<NAME>_USE/_ADDRESSES/_URLS/_ALLOW_INSECURE_TLS, or under the verified MAC of
// the lab's SOPS file), never by the commit that names the credential. A commit names a credential *and* a
// destination (a BMC address, an alert sink URL); the agent checks the destination against the binding before
// anything is sent, so a committer cannot point the Git token or a BMC password at a server of their own.
import { isIPv4, isIPv6 } from 'node:net';

export const CREDENTIAL_USES = ['git', 'webhook', 'bmc', 'alerts', 'forge', 'omni'] as const;
export type CredentialUse = (typeof CREDENTIAL_USES)[number];

/** An address a BMC credential may be sent to: an IP network (a single address is a /32 or /128) or a host name, on one port or any. */
export type AddressRule =
  | { kind: 'v4'; network: bigint; prefix: number; port?: number; text: string }
  | { kind: 'v6'; network: bigint; prefix: number; port?: number; text: string }
  | { kind: 'name'; name: string; port?: number; text: string };

/** A URL prefix an alerts or forge credential may be sent to: scheme, host and port exactly, the path by whole segments. */
export interface UrlPrefix {
  protocol: string;
  hostname: string;
  port: string;
  path: string;
  text: string;
}

export interface CredentialBinding {
  use: ReadonlySet<CredentialUse>;
  /** bmc: where the credential may go; empty: nowhere. */
  addresses: readonly AddressRule[];
  /** alerts, forge, omni (the SideroLink API a join token is for): where the credential may go; empty: nowhere. */
  urls: readonly UrlPrefix[];
  /** bmc: the commit may decide how the BMC's certificate is trusted (`bmc.tls.ca`, `fingerprint`, `insecure`). */
  allowInsecureTls: boolean;
}

/** A binding the operator wrote that forseti cannot use; names the setting, never a secret. */
export class CredentialBindingError extends Error {
  override readonly name = 'CredentialBindingError';
  constructor(readonly credential: string, message: string) {
    super(`credential "${credential}": ${message}`);
  }
}

/** The keys of a credential entry that bind it (besides username and password). */
export const BINDING_KEYS = ['use', 'addresses', 'urls', 'allowInsecureTls'] as const;

/** The binding of one entry (`{username, password, use, addresses, urls, allowInsecureTls}`); undefined when it has no `use`. */
export function parseBinding(name: string, entry: Record<string, unknown>): CredentialBinding | undefined {
  const list = (key: string): string[] => {
    const v = entry[key];
    if (v === undefined) return [];
    const items = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(items) || items.some((i) => typeof i !== 'string' || i.trim() === '')) throw new CredentialBindingError(name, `${key} must be a list of strings`);
    return (items as string[]).map((i) => i.trim());
  };
  if (entry['use'] === undefined) {
    for (const key of BINDING_KEYS) if (entry[key] !== undefined) throw new CredentialBindingError(name, `${key} without use: say what the credential is for (use: ${CREDENTIAL_USES.join(', ')})`);
    return undefined;
  }
  const use = new Set<CredentialUse>();
  for (const u of list('use')) {
    if (!(CREDENTIAL_USES as readonly string[]).includes(u)) throw new CredentialBindingError(name, `use "${u}" is not one of ${CREDENTIAL_USES.join(', ')}`);
    use.add(u as CredentialUse);
  }
  if (use.size === 0) throw new CredentialBindingError(name, `use must name at least one of ${CREDENTIAL_USES.join(', ')}`);
  const insecure = entry['allowInsecureTls'] ?? false;
  if (typeof insecure !== 'boolean') throw new CredentialBindingError(name, 'allowInsecureTls must be true or false');
  const binding: CredentialBinding = {
    use,
    addresses: list('addresses').map((a) => parseAddressRule(name, a)),
    urls: list('urls').map((u) => parseUrlPrefix(name, u)),
    allowInsecureTls: insecure,
  };
  if (use.has('bmc') && binding.addresses.length === 0) throw new CredentialBindingError(name, 'use bmc needs addresses: the BMC networks or addresses it may be sent to (e.g. [10.77.1.0/24])');
  const urlUse = (['alerts', 'forge', 'omni'] as const).find((u) => use.has(u));
  if (urlUse !== undefined && binding.urls.length === 0) throw new CredentialBindingError(name, `use ${urlUse} needs urls: the URL prefixes it may be sent to (e.g. [${urlUse === 'omni' ? 'https://acme.siderolink.omni.siderolabs.io' : 'https://gitea.lab/api/v1'}])`);
  if (binding.addresses.length > 0 && !use.has('bmc')) throw new CredentialBindingError(name, 'addresses apply to use bmc only');
  if (binding.urls.length > 0 && urlUse === undefined) throw new CredentialBindingError(name, 'urls apply to use alerts, forge and omni only');
  return binding;
}

/** FORSETI_CREDENTIAL_<KEY>_USE, _ADDRESSES, _URLS (comma- or space-separated) and _ALLOW_INSECURE_TLS (true/false). */
export function envBindingEntry(env: NodeJS.ProcessEnv, key: string): Record<string, unknown> {
  const entry: Record<string, unknown> = {};
  const split = (v: string): string[] => v.split(/[\s,]+/).filter((s) => s !== '');
  const get = (suffix: string): string | undefined => env[`FORSETI_CREDENTIAL_${key}_${suffix}`];
  const use = get('USE');
  const addresses = get('ADDRESSES');
  const urls = get('URLS');
  const insecure = get('ALLOW_INSECURE_TLS');
  if (use !== undefined) entry['use'] = split(use);
  if (addresses !== undefined) entry['addresses'] = split(addresses);
  if (urls !== undefined) entry['urls'] = split(urls);
  if (insecure !== undefined) entry['allowInsecureTls'] = insecure === 'true' ? true : insecure === 'false' ? false : insecure;
  return entry;
}

function parsePort(name: string, text: string, port: string): number {
  const n = Number(port);
  if (!/^\d{1,5}$/.test(port) || n < 1 || n > 65535) throw new CredentialBindingError(name, `address "${text}": the port must be 1-65535`);
  return n;
}

/** `10.77.1.0/24`, `10.77.1.7`, `10.77.1.7:623`, `fd00::/64`, `[fd00::7]:443`, `[fd00::/64]:443`, `oa1.lab`, `oa1.lab:22`. */
export function parseAddressRule(name: string, text: string): AddressRule {
  let host = text;
  let port: number | undefined;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracket) {
    host = bracket[1] ?? '';
    if (bracket[2] !== undefined) port = parsePort(name, text, bracket[2]);
  } else if ((text.match(/:/g) ?? []).length === 1) {
    const colon = text.indexOf(':');
    host = text.slice(0, colon);
    port = parsePort(name, text, text.slice(colon + 1));
  }
  const withPort = port !== undefined ? { port } : {};
  const slash = host.indexOf('/');
  const ip = slash < 0 ? host : host.slice(0, slash);
  if (isIPv4(ip) || isIPv6(ip)) {
    const v6 = isIPv6(ip);
    const bits = v6 ? 128 : 32;
    const prefix = slash < 0 ? bits : Number(host.slice(slash + 1));
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits || !/^\d+$/.test(slash < 0 ? String(bits) : host.slice(slash + 1))) {
      throw new CredentialBindingError(name, `address "${text}": the prefix length must be 0-${bits}`);
    }
    const value = v6 ? ipv6ToBigInt(ip) : ipv4ToBigInt(ip);
    if (value === undefined) throw new CredentialBindingError(name, `address "${text}" is not an IP address forseti can match (no zone ids)`);
    return { kind: v6 ? 'v6' : 'v4', network: value & mask(prefix, bits), prefix, text, ...withPort };
  }
  if (slash >= 0 || !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    throw new CredentialBindingError(name, `address "${text}" is neither an IP network (10.77.1.0/24, fd00::/64) nor a host name`);
  }
  return { kind: 'name', name: host.toLowerCase(), text, ...withPort };
}

/** An http(s) URL without user, query or fragment; its path is matched by whole segments (a trailing `/` is one). */
export function parseUrlPrefix(name: string, text: string): UrlPrefix {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CredentialBindingError(name, `url "${text}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new CredentialBindingError(name, `url "${text}": http or https only`);
  if (url.username || url.password || url.search || url.hash) throw new CredentialBindingError(name, `url "${text}": no user, query or fragment in a URL prefix`);
  return { protocol: url.protocol, hostname: url.hostname, port: effectivePort(url), path: url.pathname, text };
}

function effectivePort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

/** Encoded `/`, `\` or `.` in a path: a server may decode them into a path of its choosing. */
const ENCODED_SEPARATOR = /%(2f|5c|2e)/i;

/** Whether `target` (the URL the agent would send to) lies under one of `prefixes`. */
export function urlAllowed(prefixes: readonly UrlPrefix[], target: string): boolean {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return false;
  }
  if (url.username || url.password || ENCODED_SEPARATOR.test(url.pathname)) return false;
  return prefixes.some((p) => {
    if (p.protocol !== url.protocol || p.hostname !== url.hostname || p.port !== effectivePort(url)) return false;
    if (p.path === '/' || p.path === url.pathname) return true;
    return url.pathname.startsWith(p.path.endsWith('/') ? p.path : `${p.path}/`);
  });
}

/**
 * Whether a BMC at `address` (as the lab writes it: an IPv4 address or a host name) on `port` lies within `rules`.
 * Only canonical IP literals match networks (`127.1`, `0x7f.1` are names, and match only a rule naming them).
 */
export function addressAllowed(rules: readonly AddressRule[], address: string, port: number): boolean {
  const v4 = isIPv4(address) ? ipv4ToBigInt(address) : undefined;
  const v6 = v4 === undefined && isIPv6(address) ? ipv6ToBigInt(address) : undefined;
  const name = address.toLowerCase();
  return rules.some((rule) => {
    if (rule.port !== undefined && rule.port !== port) return false;
    if (rule.kind === 'name') return v4 === undefined && v6 === undefined && rule.name === name;
    const value = rule.kind === 'v4' ? v4 : v6;
    if (value === undefined) return false;
    return (value & mask(rule.prefix, rule.kind === 'v4' ? 32 : 128)) === rule.network;
  });
}

function mask(prefix: number, bits: number): bigint {
  const all = (1n << BigInt(bits)) - 1n;
  return prefix === 0 ? 0n : (all >> BigInt(bits - prefix)) << BigInt(bits - prefix);
}

function ipv4ToBigInt(text: string): bigint | undefined {
  if (!isIPv4(text)) return undefined;
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function ipv6ToBigInt(text: string): bigint | undefined {
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let s = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = ipv4ToBigInt(v4[1] ?? '');
    if (n === undefined) return undefined;
    s = `${s.slice(0, v4.index)}${((n >> 16n) & 0xffffn).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  if (all.length !== 8) return undefined;
  return all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}
