// Five-field cron expressions (minute hour day-of-month month day-of-week), evaluated purely so that the
// reconcile decision can ask "is a maintenance window open at t?" and "which power schedule fired last?".
// node-cron runs the timers; this answers questions about any instant, which node-cron cannot.

export class CronSyntaxError extends Error {
  constructor(readonly expression: string, reason: string) {
    super(`cron expression "${expression}": ${reason}`);
    this.name = 'CronSyntaxError';
  }
}

interface Field {
  min: number;
  max: number;
  names?: string[];
}

const FIELDS: Field[] = [
  { min: 0, max: 59 },
  { min: 0, max: 23 },
  { min: 1, max: 31 },
  { min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] },
  { min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
];

export interface Cron {
  expression: string;
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  /** Standard cron: when both day fields are restricted, either one matching is enough. */
  dayOr: boolean;
}

export function parseCron(expression: string): Cron {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 5) throw new CronSyntaxError(expression, `needs 5 fields (minute hour day month weekday), has ${parts.length}`);
  const sets = parts.map((part, i) => parseField(expression, part, FIELDS[i] as Field));
  const [minutes, hours, days, months, weekdays] = sets as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
  if (weekdays.has(7)) weekdays.add(0);
  return { expression, minutes, hours, days, months, weekdays, dayOr: parts[2] !== '*' && parts[4] !== '*' };
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

/** Whether the cron fires in the minute that contains `at` (local time of the agent). */
export function cronMatches(cron: Cron, at: Date): boolean {
  if (!cron.minutes.has(at.getMinutes()) || !cron.hours.has(at.getHours()) || !cron.months.has(at.getMonth() + 1)) return false;
  const dom = cron.days.has(at.getDate());
  const dow = cron.weekdays.has(at.getDay());
  return cron.dayOr ? dom || dow : dom && dow;
}

const MINUTE = 60_000;

/** The most recent firing at or before `now`, looking back at most `lookbackMinutes`; null if none. */
export function lastFiring(cron: Cron, now: number, lookbackMinutes: number): number | null {
  const start = Math.floor(now / MINUTE) * MINUTE;
  for (let i = 0; i <= lookbackMinutes; i++) {
    const t = start - i * MINUTE;
    if (cronMatches(cron, new Date(t))) return t;
  }
  return null;
}
