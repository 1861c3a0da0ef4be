import { lastFiring, parseCron } from '../core/cron.ts';

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

/** Power a schedule wants at `now`: whichever of its two expressions fired last wins; undefined if neither did. */
export function scheduledPower(schedule: PowerSchedule, now: number): 'on' | 'off' | undefined {
  return scheduledPowerSince(schedule, now)?.power;
}

/** The power a schedule wants at `now` and since when (epoch ms of the firing that decided it). */
export function scheduledPowerSince(schedule: PowerSchedule, now: number): { power: 'on' | 'off'; since: number } | undefined {
  const off = lastFiring(parseCron(schedule.powerOff), now, WEEK_MINUTES);
  const on = lastFiring(parseCron(schedule.powerOn), now, WEEK_MINUTES);
  if (off !== null && (on === null || off > on)) return { power: 'off', since: off };
  return on === null ? undefined : { power: 'on', since: on };
}

/** True when no windows are declared, or one of them opened within its duration before `now`. */
export function inMaintenanceWindow(windows: MaintenanceWindow[], now: number): boolean {
  if (windows.length === 0) return true;
  return windows.some((w) => {
    const opened = lastFiring(parseCron(w.cron), now, w.durationMinutes);
    return opened !== null && now < opened + w.durationMinutes * 60_000;
  });
}
