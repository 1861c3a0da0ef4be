// The one cron grammar of site.yaml: five fields (minute hour day-of-month month day-of-week), or six with seconds
// first where a schedule allows it (the drift scan). Evaluated purely, so the reconcile decision can ask "is a
// maintenance window open at t?" and "which power schedule fired last?", and the drift scan can ask "when next?".
// Local time of the agent throughout.

export class CronSyntaxError extends Error {
  override readonly name = 'CronSyntaxError';
  constructor(readonly expression: string, reason: string) {
    super(`cron expression "${expression}": ${reason}`);
  }
}

interface Field {
  min: number;
  max: number;
  names?: readonly string[];
}

const SECONDS: Field = { min: 0, max: 59 };
const FIELDS: readonly Field[] = [
  { min: 0, max: 59 },
  { min: 0, max: 23 },
  { min: 1, max: 31 },
  { min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] },
  { min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
];

export interface Cron {
  readonly expression: string;
  /** {0} for a five-field expression. */
  readonly seconds: ReadonlySet<number>;
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly days: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  readonly weekdays: ReadonlySet<number>;
  /** Standard cron: when both day fields are restricted, either one matching is enough. */
  readonly dayOr: boolean;
}

export interface CronOptions {
  /** A sixth field, seconds, may come first. Default false: five fields only. */
  seconds?: boolean;
}

export function parseCron(expression: string, options: CronOptions = {}): Cron {
  const parts = expression.trim().split(/\s+/);
  const withSeconds = options.seconds === true && parts.length === 6;
  if (parts.length !== 5 && !withSeconds) {
    const wanted = options.seconds ? '5 fields (minute hour day month weekday), or 6 with seconds first' : '5 fields (minute hour day month weekday)';
    throw new CronSyntaxError(expression, `needs ${wanted}, has ${parts.length}`);
  }
  const seconds = withSeconds ? parseField(expression, parts.shift() as string, SECONDS) : new Set([0]);
  const sets = parts.map((part, i) => parseField(expression, part, FIELDS[i] as Field));
  const [minutes, hours, days, months, weekdays] = sets as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
  if (weekdays.has(7)) weekdays.add(0);
  return { expression, seconds, minutes, hours, days, months, weekdays, dayOr: parts[2] !== '*' && parts[4] !== '*' };
}

/** null when the expression parses, else why not. */
export function cronProblem(expression: string, options: CronOptions = {}): string | null {
  try {
    parseCron(expression, options);
    return null;
  } catch (err) {
    if (err instanceof CronSyntaxError) return err.message;
    throw err;
  }
}

function parseField(expression: string, text: string, field: Field): Set<number> {
  const values = new Set<number>();
  for (const item of text.split(',')) {
    const [range = '', stepText] = item.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new CronSyntaxError(expression, `bad step in "${item}"`);
    let lo = field.min;
    let hi = field.max;
    if (range !== '*') {
      const [a = '', b] = range.split('-');
      lo = value(expression, a, field);
      hi = b === undefined ? (stepText === undefined ? lo : field.max) : value(expression, b, field);
      if (hi < lo) throw new CronSyntaxError(expression, `range "${range}" runs backwards`);
    }
    for (let v = lo; v <= hi; v += step) values.add(v);
  }
  return values;
}

function value(expression: string, text: string, field: Field): number {
  const named = field.names?.indexOf(text.toLowerCase()) ?? -1;
  const n = named >= 0 ? named + (field.min === 1 ? 1 : 0) : Number(text);
  if (!Number.isInteger(n) || n < field.min || n > field.max) throw new CronSyntaxError(expression, `"${text}" is not in ${field.min}-${field.max}`);
  return n;
}

/** Whether the cron fires in the minute that contains `at`. */
export function cronMatches(cron: Cron, at: Date): boolean {
  if (!cron.minutes.has(at.getMinutes()) || !cron.hours.has(at.getHours()) || !cron.months.has(at.getMonth() + 1)) return false;
  const dom = cron.days.has(at.getDate());
  const dow = cron.weekdays.has(at.getDay());
  return cron.dayOr ? dom || dow : dom && dow;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;

/** Counts the steps a search takes (tests bound the work, not the time). */
export interface CronMeter {
  steps: number;
}

/** Whether the day of the month and the day of the week of these local fields fire (either, where both are restricted). */
function dayFires(cron: Cron, date: number, weekday: number): boolean {
  const dom = cron.days.has(date);
  const dow = cron.weekdays.has(weekday);
  return cron.dayOr ? dom || dow : dom && dow;
}

/** Local wall-clock minutes of an instant read as UTC: calendar arithmetic on it knows no daylight saving. */
function wallOf(t: number): number {
  const d = new Date(t);
  return Date.UTC(d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes());
}

/**
 * Whether every instant in (from, to] reads the wall clock advanced by the same amount: then no local time was
 * skipped or repeated between them, and a jump by minutes within one hour lands where the fields say.
 */
function sameOffset(from: number, to: number): boolean {
  return wallOf(to) - wallOf(from) === to - from;
}

/**
 * The most recent firing minute at or before `now`, looking back at most `lookbackMinutes`; null if none. Each step
 * goes back past the whole of the coarsest field that does not fire (a month, a day, an hour, or to the previous
 * minute that fires), so the work grows with the fields, not with the minutes looked back over.
 */
export function lastFiring(cron: Cron, now: number, lookbackMinutes: number, meter?: CronMeter): number | null {
  const start = Math.floor(now / MINUTE) * MINUTE;
  const stop = start - lookbackMinutes * MINUTE;
  const minutes = [...cron.minutes].sort((a, b) => b - a);
  let t = start;
  while (t >= stop) {
    if (meter) meter.steps++;
    const d = new Date(t);
    const [year, month, date, hour, minute] = [d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes()];
    // A month, day or hour that does not fire is left by its start as the local clock reads it (for a repeated hour,
    // its first instance): everything skipped reads the same failing field.
    let back: number;
    if (!cron.months.has(month + 1)) back = new Date(year, month, 1).getTime() - MINUTE;
    else if (!dayFires(cron, date, d.getDay())) back = new Date(year, month, date).getTime() - MINUTE;
    else if (!cron.hours.has(hour)) back = new Date(year, month, date, hour).getTime() - MINUTE;
    else if (cron.minutes.has(minute)) return t;
    else {
      // Within the hour by arithmetic (a repeated hour has two instants for one wall time); one minute where the clock changed.
      const jump = t - (minute - (minutes.find((m) => m < minute) ?? -1)) * MINUTE;
      back = sameOffset(jump, t) ? jump : t - MINUTE;
    }
    t = Math.min(back, t - MINUTE);
  }
  return null;
}

/** Five years of minutes: an expression that fires on no day in that time (`0 0 31 2 *`) never fires. */
const SEARCH_MINUTES = 5 * 366 * 24 * 60;

/** The first firing (to the second) strictly after `after`; null if it never fires. Steps as `lastFiring` does. */
export function nextFiring(cron: Cron, after: number, meter?: CronMeter): number | null {
  const seconds = [...cron.seconds].sort((a, b) => a - b);
  const minutes = [...cron.minutes].sort((a, b) => a - b);
  const minuteStart = Math.floor(after / MINUTE) * MINUTE;
  const stop = minuteStart + SEARCH_MINUTES * MINUTE;
  let t = minuteStart;
  while (t <= stop) {
    if (meter) meter.steps++;
    const d = new Date(t);
    const [year, month, date, hour, minute] = [d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes()];
    let forward: number;
    if (!cron.months.has(month + 1)) forward = new Date(year, month + 1, 1).getTime();
    else if (!dayFires(cron, date, d.getDay())) forward = new Date(year, month, date + 1).getTime();
    else if (!cron.hours.has(hour)) forward = new Date(year, month, date, hour + 1).getTime();
    else if (cron.minutes.has(minute)) {
      const second = seconds.find((s) => t + s * SECOND > after);
      if (second !== undefined) return t + second * SECOND;
      forward = t + MINUTE;
    } else {
      const jump = t + ((minutes.find((m) => m > minute) ?? 60) - minute) * MINUTE;
      forward = sameOffset(t, jump) ? jump : t + MINUTE;
    }
    t = Math.max(forward, t + MINUTE);
  }
  return null;
}

/** The longest delay a Node timer takes (about 24.8 days); a later firing is reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs `run` at every firing of `cron` until stopped. A run that is still going when the next firing comes is the
 * caller's to handle; the timer keeps no process alive on its own (unref).
 */
export function scheduleCron(cron: Cron, run: () => void, clock: () => number = Date.now): { stop(): void } {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const arm = (from: number): void => {
    const next = nextFiring(cron, from);
    if (next === null || stopped) return;
    const wait = next - clock();
    timer = setTimeout(() => {
      if (wait > MAX_TIMER_MS) return arm(from);
      run();
      arm(next);
    }, Math.max(0, Math.min(wait, MAX_TIMER_MS)));
    timer.unref();
  };
  arm(clock());
  return {
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
