// Which http(s) addresses the agent fetches images from. An image URL is written by whoever gets a commit merged,
// and the agent reaches networks they do not (its own loopback services, the BMC network): without a limit every
// image is a GET the committer aims, and the rejection on the status branch tells them what answered.
//
// The operator's allow-list (agent config `images.httpAllow`) names URL prefixes (`https://mirror.lan/images/`),
// host names (`mirror.lan`) and addresses or networks (`10.0.5.0/24`, `192.0.2.7`). Without one, any address is
// fetched but loopback, link-local, unspecified, multicast and the agent's own; with one, only what it names. An
// address in one of those ranges is fetched only where an address entry names it, never through a name: a name is
// resolved, every address it has is checked, and the connection goes to the checked addresses (no second lookup a
// rebinding DNS server could answer differently). Each redirect is checked the same way.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/** All a refused target is told: nothing of why, so a refusal says nothing about what is there. */
export const NOT_ALLOWED = 'not allowed (images.httpAllow of the agent config)';

/** Addresses never fetched through a name, nor without an address entry naming them. */
const GUARDED: ReadonlyArray<[string, number, 'ipv4' | 'ipv6']> = [
  ['0.0.0.0', 8, 'ipv4'],
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'],
  ['255.255.255.255', 32, 'ipv4'],
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['fe80::', 10, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
];

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/** A connection the allow-list refused (thrown from the pinned lookup, recognised in the cause chain). */
export class AddressNotAllowedError extends Error {
  override readonly name = 'AddressNotAllowedError';
  readonly code = 'ENOTALLOWED';
}

const family = (address: string): 'ipv4' | 'ipv6' => (isIP(address) === 6 ? 'ipv6' : 'ipv4');

/** Why an `images.httpAllow` entry is not one, or null. */
export function httpAllowProblem(entry: string): string | null {
  if (/^https?:\/\//i.test(entry)) {
    try {
      new URL(entry);
      return null;
    } catch {
      return `"${entry}" is not a valid URL prefix`;
    }
  }
  const [address = '', bits, extra] = entry.split('/');
  if (isIP(address)) {
    const max = isIP(address) === 6 ? 128 : 32;
    if (extra !== undefined || (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max))) return `"${entry}" is not an address or a network (${address}/0-${max})`;
    return null;
  }
  return bits === undefined && HOST_NAME.test(entry) ? null : `"${entry}" is not a URL prefix (http:// or https://), a host name, an address or a network`;
}

export class HttpAllowList {
  private readonly prefixes: string[] = [];
  private readonly names = new Set<string>();
  private readonly networks = new BlockList();
  private readonly guarded = new BlockList();
  private readonly listed: boolean;

  /** `entries`: checked by httpAllowProblem; `ownAddresses`: the agent's (default: its interfaces' now). */
  constructor(entries: readonly string[] = [], ownAddresses: readonly string[] = interfaceAddresses()) {
    this.listed = entries.length > 0;
    for (const entry of entries) {
      if (/^https?:\/\//i.test(entry)) this.prefixes.push(new URL(entry).href);
      else if (isIP(entry.split('/')[0] ?? '')) {
        const [address = '', bits] = entry.split('/');
        this.networks.addSubnet(address, bits === undefined ? (isIP(address) === 6 ? 128 : 32) : Number(bits), family(address));
      } else this.names.add(entry.toLowerCase().replace(/\.$/, ''));
    }
    for (const [address, bits, type] of GUARDED) this.guarded.addSubnet(address, bits, type);
    for (const address of ownAddresses) if (isIP(address)) this.guarded.addAddress(address, family(address));
  }

  /** Whether a prefix or host name entry names this URL (its addresses are still checked). */
  namesUrl(url: URL): boolean {
    return this.prefixes.some((p) => url.href.startsWith(p)) || this.names.has(url.hostname.toLowerCase().replace(/\.$/, ''));
  }

  /** Whether the agent may connect to `address` for a URL that the list does (`named`) or does not name. */
  allows(address: string, named: boolean): boolean {
    if (this.networks.check(address, family(address))) return true;
    if (this.listed && !named) return false;
    return !this.guarded.check(address, family(address));
  }

  /**
   * A `lookup` for net/tls.connect that resolves the name once, checks every address, and hands the connection only
   * those: the addresses checked are the addresses connected to.
   */
  pinnedLookup(named: boolean): (hostname: string, options: { all?: boolean }, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => void {
    return (hostname, options, callback) => {
      dnsLookup(hostname, { all: true }, (err, addresses) => {
        if (err) return callback(err, '');
        if (addresses.length === 0 || addresses.some((a) => !this.allows(a.address, named))) return callback(new AddressNotAllowedError(`${hostname}: ${NOT_ALLOWED}`), '');
        const [first] = addresses as [LookupAddress];
        if (options.all) callback(null, addresses);
        else callback(null, first.address, first.family);
      });
    };
  }
}

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/** Whether `err` or one of its causes is the allow-list's refusal. */
export function isNotAllowed(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) if (e instanceof AddressNotAllowedError) return true;
  return false;
}
