// The dynamic pool (RFC 2131 4.3.1): addresses for machines nobody reserved, remembered per MAC so a
// machine keeps its address across lease expiry and server restarts while nobody else needs it.
// Pure bookkeeping over a clock; persistence is the caller's `onChange` (see lease-store.ts).
import { DhcpConfigError } from './errors.ts';
import { intToIp, ipToInt, isIpv4 } from './ipv4.ts';

export interface Lease {
  ip: string;
  /** Lower-case colon-separated hardware address; for a declined address, the client that declined it. */
  mac: string;
  /** offered: held between OFFER and REQUEST; bound: ACKed; declined: found in use, not handed out until it expires. */
  state: 'offered' | 'bound' | 'declined';
  /** Milliseconds since the epoch. An expired offer or lease still remembers its MAC until the address is reused. */
  expires: number;
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
  /** Called after every change with every lease: the hook a store persists from. */
  onChange?: (leases: Lease[]) => void;
}

export class LeasePool {
  private readonly byIp = new Map<string, Lease>();
  private start = 0;
  private end = -1;
  private leaseMs = 0;
  private readonly offerHoldMs: number;
  private readonly declineHoldMs: number;
  private readonly now: () => number;
  private readonly onChange: (leases: Lease[]) => void;

  constructor(options: LeasePoolOptions) {
    this.offerHoldMs = (options.offerHoldSeconds ?? 60) * 1000;
    this.declineHoldMs = (options.declineHoldSeconds ?? 600) * 1000;
    this.now = options.now ?? Date.now;
    this.onChange = options.onChange ?? (() => {});
    for (const lease of options.leases ?? []) if (isIpv4(lease.ip)) this.byIp.set(lease.ip, { ...lease });
    this.configure(options.range, options.leaseSeconds);
  }

  /** A new range or lease time (a new commit); leases outside the range are forgotten. */
  configure(range: LeasePoolRange, leaseSeconds: number): void {
    if (!isIpv4(range.start) || !isIpv4(range.end) || ipToInt(range.start) > ipToInt(range.end)) {
      throw new DhcpConfigError(`DHCP pool ${range.start}-${range.end} is not an IPv4 range`);
    }
    if (!Number.isInteger(leaseSeconds) || leaseSeconds <= 0) throw new DhcpConfigError(`lease time must be a positive integer, got ${leaseSeconds}`);
    this.start = ipToInt(range.start);
    this.end = ipToInt(range.end);
    this.leaseMs = leaseSeconds * 1000;
    let dropped = false;
    for (const ip of [...this.byIp.keys()]) if (!this.inRange(ip)) { this.byIp.delete(ip); dropped = true; }
    if (dropped) this.changed();
  }

  /** DISCOVER: the client's own address if it still has one, else the one it asks for, else a free one; null when exhausted. */
  offer(mac: string, requestedIp: string | undefined, excluded: Excluded): string | null {
    const ip = this.choose(mac, requestedIp, excluded);
    if (ip === null) return null;
    const current = this.byIp.get(ip);
    const now = this.now();
    // Re-offering a live binding keeps it bound; anything else is held briefly for the REQUEST.
    if (current?.mac === mac && current.state === 'bound' && current.expires > now) return ip;
    this.assign({ ip, mac, state: 'offered', expires: now + this.offerHoldMs });
    return ip;
  }

  /**
   * REQUEST for `wanted`: bound when it is this client's, or free and in the pool. Otherwise the address
   * the client would be offered (so the server NAKs and the client starts over), or null when the pool
   * has nothing for it (the server stays silent).
   */
  request(mac: string, wanted: string, excluded: Excluded): PoolGrant | null {
    if (this.available(wanted, mac, excluded)) {
      this.assign({ ip: wanted, mac, state: 'bound', expires: this.now() + this.leaseMs });
      return { ip: wanted, granted: true };
    }
    const ip = this.choose(mac, undefined, excluded);
    return ip === null ? null : { ip, granted: false };
  }

  /** RELEASE: the address is free again (still remembered for this MAC, should it come back first). */
  release(mac: string, ip: string): boolean {
    const lease = this.byIp.get(ip);
    if (lease?.mac !== mac || lease.state === 'declined') return false;
    lease.expires = Math.min(lease.expires, this.now());
    this.changed();
    return true;
  }

  /** DECLINE: someone else answers on this address; keep it out of use for a while. */
  decline(mac: string, ip: string): boolean {
    const lease = this.byIp.get(ip);
    if (lease?.mac !== mac || lease.state === 'declined') return false;
    this.byIp.set(ip, { ip, mac, state: 'declined', expires: this.now() + this.declineHoldMs });
    this.changed();
    return true;
  }

  leaseOf(mac: string): Lease | undefined {
    for (const lease of this.byIp.values()) if (lease.mac === mac && lease.state !== 'declined') return { ...lease };
    return undefined;
  }

  leases(): Lease[] {
    return [...this.byIp.values()].map((l) => ({ ...l }));
  }

  get size(): number {
    return this.end - this.start + 1;
  }

  private choose(mac: string, requestedIp: string | undefined, excluded: Excluded): string | null {
    const own = this.leaseOf(mac);
    if (own && this.available(own.ip, mac, excluded)) return own.ip;
    if (requestedIp !== undefined && this.available(requestedIp, mac, excluded)) return requestedIp;
    // Never-used addresses first, then the one whose previous owner has been gone longest.
    let oldest: Lease | undefined;
    for (let n = this.start; n <= this.end; n += 1) {
      const ip = intToIp(n);
      if (excluded(ip)) continue;
      const lease = this.byIp.get(ip);
      if (lease === undefined) return ip;
      if (lease.expires <= this.now() && (oldest === undefined || lease.expires < oldest.expires)) oldest = lease;
    }
    return oldest?.ip ?? null;
  }

  private available(ip: string, mac: string, excluded: Excluded): boolean {
    if (!isIpv4(ip) || !this.inRange(ip) || excluded(ip)) return false;
    const lease = this.byIp.get(ip);
    if (lease === undefined || lease.expires <= this.now()) return true;
    return lease.mac === mac && lease.state !== 'declined';
  }

  private assign(lease: Lease): void {
    for (const [ip, other] of this.byIp) {
      if (ip !== lease.ip && other.mac === lease.mac && other.state !== 'declined') this.byIp.delete(ip);
    }
    this.byIp.set(lease.ip, lease);
    this.changed();
  }

  private inRange(ip: string): boolean {
    const n = ipToInt(ip);
    return n >= this.start && n <= this.end;
  }

  private changed(): void {
    this.onChange(this.leases());
  }
}
