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

/** The most recent firing minute at or before `now`, looking back at most `lookbackMinutes`; null if none. */
export function lastFiring(cron: Cron, now: number, lookbackMinutes: number): number | null {
  const start = Math.floor(now / MINUTE) * MINUTE;
  for (let i = 0; i <= lookbackMinutes; i++) {
    const t = start - i * MINUTE;
    if (cronMatches(cron, new Date(t))) return t;
  }
  return null;
}

/** Five years of minutes: an expression that fires on no day in that time (`0 0 31 2 *`) never fires. */
const SEARCH_MINUTES = 5 * 366 * 24 * 60;

/** The first firing (to the second) strictly after `after`; null if it never fires. */
export function nextFiring(cron: Cron, after: number): number | null {
  const seconds = [...cron.seconds].sort((a, b) => a - b);
  const minuteStart = Math.floor(after / MINUTE) * MINUTE;
  for (let i = 0; i <= SEARCH_MINUTES; i++) {
    const minute = minuteStart + i * MINUTE;
    if (!cronMatches(cron, new Date(minute))) continue;
    for (const s of seconds) {
      const t = minute + s * SECOND;
      if (t > after) return t;
    }
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
