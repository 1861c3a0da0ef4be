import type { StatusEvent } from '../../status/status-view.ts';

/** The shape of a lifecycle event (`HostEvent` in src/core/host-lifecycle.ts), read loosely so new kinds still show. */
export type EventLike = { kind: string } & Record<string, unknown>;

const short = (rev: unknown): string => (typeof rev === 'string' ? rev.slice(0, 7) : '');

/** One line for a lifecycle event, for the dashboard's event list. */
export function describeHostEvent(event: EventLike): string {
  const text = (key: string): string => (typeof event[key] === 'string' ? (event[key] as string) : '');
  switch (event.kind) {
    case 'provision-started':
      return `provisioning role ${text('role')} (${short(event['revision'])})`;
    case 'step':
      return `reached ${text('step')}`;
    case 'phone-home':
      return `phoned home as ${text('role')}`;
    case 'failed':
      return `failed${text('step') ? ` at ${text('step')}` : ''}: ${text('message')}`;
    case 'enroll-failed':
      return `enrolment failed: ${text('message')}`;
    case 'powered-off':
      return 'powered off';
    case 'rerendered':
      return `artifacts re-rendered (${short(event['revision'])}), served at the next boot`;
    case 'enrolled':
      return 'enrolled: BMC inventory read';
    case 'wipe-started':
      return `wiping disks (${short(event['revision'])})`;
    default:
      return event.kind;
  }
}

/**
 * The last events per host and for the site, for the status document's `events` fields. Bounded: a host
 * keeps `perHost` events, the site `site`.
 */
export class RecentEvents {
  private readonly hosts = new Map<string, StatusEvent[]>();
  private readonly siteEvents: StatusEvent[] = [];

  constructor(private readonly limits: { perHost: number; site: number } = { perHost: 10, site: 20 }) {}

  host(host: string, event: EventLike, at: number = Date.now()): void {
    const list = this.hosts.get(host) ?? [];
    list.push({ at, host, kind: event.kind, message: describeHostEvent(event) });
    this.hosts.set(host, list.slice(-this.limits.perHost));
  }

  /** `commit-applied`, `commit-rejected`, ... */
  site(kind: string, message: string, at: number = Date.now()): void {
    this.siteEvents.push({ at, kind, message });
    this.siteEvents.splice(0, Math.max(0, this.siteEvents.length - this.limits.site));
  }

  forHost(host: string): StatusEvent[] {
    return [...(this.hosts.get(host) ?? [])];
  }

  forSite(): StatusEvent[] {
    return [...this.siteEvents];
  }

  /** Hosts no longer declared. */
  retain(names: Set<string>): void {
    for (const name of [...this.hosts.keys()]) if (!names.has(name)) this.hosts.delete(name);
  }
}
