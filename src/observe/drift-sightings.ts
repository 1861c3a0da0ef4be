import type { HostSighting } from './drift.ts';

/**
 * When each host was last heard of outside its BMC (DHCP packets, phone-homes), for the `host-silent` and
 * `role-mismatch` drifts. In memory: after a restart, silence is measured from the agent's start.
 */
export class HostSightings {
  private readonly seen = new Map<string, HostSighting>();
  private readonly started: number;

  constructor(private readonly clock: () => number = Date.now) {
    this.started = clock();
  }

  /** A DHCP packet (discover, request, renewal) from the host's MAC. */
  dhcp(host: string): void {
    this.seen.set(host, { ...this.seen.get(host), lastSeen: this.clock() });
  }

  /** A phone-home with the host's token, whatever role it reported, in whatever phase the host was. */
  phoneHome(host: string, role: string): void {
    const now = this.clock();
    this.seen.set(host, { lastSeen: now, lastPhoneHome: { at: now, role } });
  }

  get(host: string): HostSighting {
    return this.seen.get(host) ?? { lastSeen: this.started };
  }

  retain(names: ReadonlySet<string>): void {
    for (const name of [...this.seen.keys()]) if (!names.has(name)) this.seen.delete(name);
  }
}
