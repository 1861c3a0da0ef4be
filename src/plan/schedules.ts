import { lastFiring, parseCron, type Cron, type CronMeter } from '../core/cron.ts';

/** Which hosts a rollout group, power schedule or window applies to: all given criteria must hold. */
export interface HostSelector {
  roles?: string[];
  hosts?: string[];
  labels?: Record<string, string>;
}

export interface SelectableHost {
  name: string;
  role: string;
  labels: Record<string, string>;
}

export function selects(selector: HostSelector, host: SelectableHost): boolean {
  if (selector.roles && !selector.roles.includes(host.role)) return false;
  if (selector.hosts && !selector.hosts.includes(host.name)) return false;
  for (const [key, value] of Object.entries(selector.labels ?? {})) if (host.labels[key] !== value) return false;
  return true;
}

export interface PowerSchedule {
  name: string;
  selector: HostSelector;
  /** Cron expressions: from `powerOff` firing until `powerOn` fires, the selected hosts are kept off. */
  powerOff: string;
  powerOn: string;
}

export interface MaintenanceWindow {
  cron: string;
  durationMinutes: number;
}

const WEEK_MINUTES = 8 * 24 * 60;
/** Parsed expressions kept across passes; past this many (commits replaced them all) the cache starts over. */
const MAX_PARSED = 4096;

/**
 * The firings one reconcile pass asks about: each distinct expression is parsed once and evaluated once per `now`,
 * however many schedules and windows name it. The owner (the agent) keeps one and hands it to every pass.
 */
export class FiringCache {
  private readonly parsed = new Map<string, Cron>();
  private firings = new Map<string, number | null>();
  private at = Number.NaN;

  constructor(private readonly meter?: CronMeter) {}

  lastFiring(expression: string, now: number, lookbackMinutes: number): number | null {
    if (now !== this.at) {
      this.firings = new Map();
      this.at = now;
    }
    const key = `${lookbackMinutes} ${expression}`;
    const known = this.firings.get(key);
    if (known !== undefined) return known;
    const firing = lastFiring(this.cron(expression), now, lookbackMinutes, this.meter);
    this.firings.set(key, firing);
    return firing;
  }

  private cron(expression: string): Cron {
    let cron = this.parsed.get(expression);
    if (!cron) {
      if (this.parsed.size >= MAX_PARSED) this.parsed.clear();
      cron = parseCron(expression);
      this.parsed.set(expression, cron);
    }
    return cron;
  }
}

/** Power a schedule wants at `now`: whichever of its two expressions fired last wins; undefined if neither did. */
export function scheduledPower(schedule: PowerSchedule, now: number, cache = new FiringCache()): 'on' | 'off' | undefined {
  return scheduledPowerSince(schedule, now, cache)?.power;
}

/** The power a schedule wants at `now` and since when (epoch ms of the firing that decided it). */
export function scheduledPowerSince(schedule: PowerSchedule, now: number, cache = new FiringCache()): { power: 'on' | 'off'; since: number } | undefined {
  const off = cache.lastFiring(schedule.powerOff, now, WEEK_MINUTES);
  const on = cache.lastFiring(schedule.powerOn, now, WEEK_MINUTES);
  if (off !== null && (on === null || off > on)) return { power: 'off', since: off };
  return on === null ? undefined : { power: 'on', since: on };
}

/** True when no windows are declared, or one of them opened within its duration before `now`. */
export function inMaintenanceWindow(windows: MaintenanceWindow[], now: number, cache = new FiringCache()): boolean {
  if (windows.length === 0) return true;
  return windows.some((w) => {
    const opened = cache.lastFiring(w.cron, now, w.durationMinutes);
    return opened !== null && now < opened + w.durationMinutes * 60_000;
  });
}

/**
 * How long after a reconcile pass the next one starts: the interval, or as long as the pass took if that was longer,
 * so passes never take more than half of the event loop and fetches, HTTP, DHCP and TFTP keep their turn.
 */
export function nextTickDelay(intervalMs: number, passMs: number): number {
  return Math.max(intervalMs, Math.ceil(passMs));
}
