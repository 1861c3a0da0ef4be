// The dynamic pool (RFC 2131 4.3.1): addresses for machines nobody reserved, remembered per client so a
// machine keeps its address across lease expiry and server restarts while nobody else needs it.
// A client is its client identifier (option 61) when it sends one, else its hardware address (RFC 2131
// 4.2); see `leaseKey` in client-info.ts. Pure bookkeeping over a clock; persistence is the caller's
// `onChange` (see lease-store.ts). Lookups by address and by client are map lookups; a new client takes
// the next never-used address from a cursor; once the cursor has passed the end, the leases ordered by
// expiry and the free addresses behind the cursor give the next candidate without walking the pool.
import { DhcpConfigError } from './errors.ts';
import { intToIp, ipToInt, parseIpv4 } from './ipv4.ts';
import { IndexedMinHeap } from './min-heap.ts';

export interface Lease {
  ip: string;
  /** Who holds it: the client's lease key (its MAC, or `id:` and the hex of its option 61). */
  client: string;
  /** Lower-case colon-separated hardware address the client last used; for a declined address, the client that declined it. */
  mac: string;
  /** offered: held between OFFER and REQUEST; bound: ACKed; declined: found in use, not handed out until it expires. */
  state: 'offered' | 'bound' | 'declined';
  /** Milliseconds since the epoch. An expired offer or lease still remembers its client until the address is reused. */
  expires: number;
  /**
   * From a v1 lease file, which keyed every lease by MAC (`client` is that MAC): the lease is the MAC's
   * whatever client identifier it sends now, and is re-keyed to that client's lease key when it next
   * takes an address. Saved, so a restart before then still knows.
   */
  legacy?: true;
}

/** Who asks: `ClientInfo` is one. */
export interface LeaseClient {
  leaseKey: string;
  mac: string;
}

export interface LeasePoolRange {
  start: string;
  end: string;
}

/** `granted`: the client's wanted address is now bound to it. Otherwise `ip` is what it would be offered (NAK). */
export interface PoolGrant {
  ip: string;
  granted: boolean;
}

/** Addresses the pool must never hand out right now: reservations, the agent, the gateway. */
export type Excluded = (ip: string) => boolean;

export interface LeasePoolOptions {
  range: LeasePoolRange;
  leaseSeconds: number;
  /** How long an OFFER holds its address for the client's REQUEST. Default 60 s. */
  offerHoldSeconds?: number;
  /** How long a DECLINEd address stays out of use. Default 600 s. */
  declineHoldSeconds?: number;
  leases?: readonly Lease[];
  now?: () => number;
  /**
   * Called after every change with every lease. The array is the pool's own live list (no copy per
   * change): read or serialise it, do not keep it as a snapshot or change it.
   */
  onChange?: (leases: readonly Lease[]) => void;
}

export class LeasePool {
  private readonly byIp = new Map<string, Lease>();
  /** The client's current (offered or bound) lease; declined addresses are not anybody's. */
  private readonly byClient = new Map<string, Lease>();
  /** Every lease, soonest expiry first (then lowest address): the reuse order. Its array is what onChange hands out. */
  private readonly byExpiry = new IndexedMinHeap<Lease>(expiresBefore);
  private start = 0;
  private end = -1;
  /** Every address below it has been handed out at least once (or is excluded): new clients start here. */
  private cursor = 0;
  /** The addresses below the cursor that nobody holds (skipped while excluded, or left by a client that moved). */
  private readonly freeBehindCursor = new IndexedMinHeap<number>((a, b) => a < b);
  private leaseMs = 0;
  private readonly offerHoldMs: number;
  private readonly declineHoldMs: number;
  private readonly now: () => number;
  private readonly onChange: (leases: readonly Lease[]) => void;

  constructor(options: LeasePoolOptions) {
    this.offerHoldMs = (options.offerHoldSeconds ?? 60) * 1000;
    this.declineHoldMs = (options.declineHoldSeconds ?? 600) * 1000;
    this.now = options.now ?? Date.now;
    this.onChange = options.onChange ?? (() => {});
    for (const lease of options.leases ?? []) if (parseIpv4(lease.ip) !== -1) this.put({ ...lease });
    this.configure(options.range, options.leaseSeconds);
  }

  /** A new range or lease time (a new commit); leases outside the range are forgotten. */
  configure(range: LeasePoolRange, leaseSeconds: number): void {
    const start = parseIpv4(range.start);
    const end = parseIpv4(range.end);
    if (start === -1 || end === -1 || start > end) throw new DhcpConfigError(`DHCP pool ${range.start}-${range.end} is not an IPv4 range`);
    if (!Number.isInteger(leaseSeconds) || leaseSeconds <= 0) throw new DhcpConfigError(`lease time must be a positive integer, got ${leaseSeconds}`);
    this.start = start;
    this.end = end;
    this.cursor = start;
    this.freeBehindCursor.clear();
    this.leaseMs = leaseSeconds * 1000;
    let dropped = false;
    for (const lease of [...this.byExpiry.items]) if (!this.inRange(lease.ip)) { this.remove(lease); dropped = true; }
    if (dropped) this.changed();
  }

  /** DISCOVER: the client's own address if it still has one, else the one it asks for, else a free one; null when exhausted. */
  offer(client: LeaseClient, requestedIp: string | undefined, excluded: Excluded): string | null {
    const ip = this.choose(client, requestedIp, excluded);
    if (ip === null) return null;
    const current = this.byIp.get(ip);
    const now = this.now();
    // Re-offering a live binding keeps it bound; anything else is held briefly for the REQUEST.
    if (current !== undefined && isOwn(current, client) && current.state === 'bound' && current.expires > now) {
      if (current.client !== client.leaseKey || current.legacy) this.assign({ ip, client: client.leaseKey, mac: client.mac, state: 'bound', expires: current.expires });
      else if (current.mac !== client.mac) {
        current.mac = client.mac;
        this.changed();
      }
      return ip;
    }
    this.assign({ ip, client: client.leaseKey, mac: client.mac, state: 'offered', expires: now + this.offerHoldMs });
    return ip;
  }

  /**
   * REQUEST for `wanted`: bound when it is this client's, or free and in the pool. Otherwise the address
   * the client would be offered (so the server NAKs and the client starts over), or null when the pool
   * has nothing for it (the server stays silent).
   */
  request(client: LeaseClient, wanted: string, excluded: Excluded): PoolGrant | null {
    if (this.available(wanted, client, excluded)) {
      this.assign({ ip: wanted, client: client.leaseKey, mac: client.mac, state: 'bound', expires: this.now() + this.leaseMs });
      return { ip: wanted, granted: true };
    }
    const ip = this.choose(client, undefined, excluded);
    return ip === null ? null : { ip, granted: false };
  }

  /** RELEASE: the address is free again (still remembered for this client, should it come back first). */
  release(client: LeaseClient, ip: string): boolean {
    const lease = this.byIp.get(ip);
    if (lease === undefined || !isOwn(lease, client) || lease.state === 'declined') return false;
    this.assign({ ip, client: client.leaseKey, mac: client.mac, state: lease.state, expires: Math.min(lease.expires, this.now()) });
    return true;
  }

  /** DECLINE: someone else answers on this address; keep it out of use for a while. */
  decline(client: LeaseClient, ip: string): boolean {
    const lease = this.byIp.get(ip);
    if (lease === undefined || !isOwn(lease, client) || lease.state === 'declined') return false;
    this.remove(lease);
    this.put({ ip, client: client.leaseKey, mac: client.mac, state: 'declined', expires: this.now() + this.declineHoldMs });
    this.changed();
    return true;
  }

  /** The client's offered or bound lease (live or expired), by its lease key. */
  leaseOf(leaseKey: string): Lease | undefined {
    const lease = this.byClient.get(leaseKey);
    return lease === undefined ? undefined : { ...lease };
  }

  leases(): Lease[] {
    return this.byExpiry.items.map((l) => ({ ...l }));
  }

  get size(): number {
    return this.end - this.start + 1;
  }

  private choose(client: LeaseClient, requestedIp: string | undefined, excluded: Excluded): string | null {
    const own = this.byClient.get(client.leaseKey);
    if (own && this.available(own.ip, client, excluded)) return own.ip;
    const legacy = this.legacyOf(client.mac);
    if (legacy && this.available(legacy.ip, client, excluded)) return legacy.ip;
    if (requestedIp !== undefined && this.available(requestedIp, client, excluded)) return requestedIp;
    // Never-used addresses first, then the one whose previous holder has been gone longest (expired
    // offers, leases and declines alike; on a tie the lowest address).
    for (; this.cursor <= this.end; this.cursor++) {
      const ip = intToIp(this.cursor);
      if (this.byIp.has(ip)) continue;
      if (!excluded(ip)) return ip;
      this.freeBehindCursor.add(this.cursor);
    }
    const now = this.now();
    const oldest = this.byExpiry.find((l) => (l.expires > now ? 'stop' : excluded(l.ip) ? 'skip' : 'take'));
    if (oldest !== undefined) return oldest.ip;
    // Then free addresses behind the cursor, lowest first: skipped while excluded (a reservation since
    // removed), or left by a client that took another address.
    const free = this.freeBehindCursor.find((n) => (excluded(intToIp(n)) ? 'skip' : 'take'));
    return free === undefined ? null : intToIp(free);
  }

  private available(ip: string, client: LeaseClient, excluded: Excluded): boolean {
    if (!this.inRange(ip) || excluded(ip)) return false;
    const lease = this.byIp.get(ip);
    if (lease === undefined || lease.expires <= this.now()) return true;
    return isOwn(lease, client) && lease.state !== 'declined';
  }

  /** The v1 lease of this MAC, still keyed by it: the own lease of any client on that MAC. */
  private legacyOf(mac: string): Lease | undefined {
    const lease = this.byClient.get(mac);
    return lease?.legacy ? lease : undefined;
  }

  /** The client now holds `lease.ip` and nothing else (its MAC's v1 lease included, wherever that was). */
  private assign(lease: Lease): void {
    const before = this.byClient.get(lease.client);
    if (before !== undefined) this.remove(before);
    const legacy = this.legacyOf(lease.mac);
    if (legacy !== undefined) this.remove(legacy);
    const other = this.byIp.get(lease.ip);
    if (other !== undefined) this.remove(other);
    this.put(lease);
    this.changed();
  }

  private put(lease: Lease): void {
    const other = this.byIp.get(lease.ip);
    if (other !== undefined) this.remove(other);
    this.byIp.set(lease.ip, lease);
    this.freeBehindCursor.delete(parseIpv4(lease.ip));
    if (lease.state !== 'declined') {
      const previous = this.byClient.get(lease.client);
      if (previous !== undefined && previous !== lease) this.remove(previous);
      this.byClient.set(lease.client, lease);
    }
    this.byExpiry.add(lease);
  }

  private remove(lease: Lease): void {
    if (!this.byExpiry.delete(lease)) return;
    if (this.byClient.get(lease.client) === lease) this.byClient.delete(lease.client);
    if (this.byIp.get(lease.ip) !== lease) return;
    this.byIp.delete(lease.ip);
    const n = parseIpv4(lease.ip);
    if (n >= this.start && n < this.cursor) this.freeBehindCursor.add(n);
  }

  private inRange(ip: string): boolean {
    const n = parseIpv4(ip);
    return n !== -1 && n >= this.start && n <= this.end;
  }

  private changed(): void {
    this.onChange(this.byExpiry.items);
  }
}

/** Reuse order: the lease that expired first; on a tie the lower address. */
function expiresBefore(a: Lease, b: Lease): boolean {
  return a.expires !== b.expires ? a.expires < b.expires : parseIpv4(a.ip) < parseIpv4(b.ip);
}

/** The lease is this client's: by its lease key, or a v1 lease of its MAC (see `Lease.legacy`). */
function isOwn(lease: Lease, client: LeaseClient): boolean {
  return lease.client === client.leaseKey || (lease.legacy === true && lease.client === client.mac);
}
