// Red-team finding 4: lastFiring scanned back minute by minute (up to 8 days per schedule per reconcile pass), and
// 1,500 never-firing schedules kept the agent's event loop busy. lastFiring and nextFiring now step by the coarsest
// field that does not fire. They are compared here with the minute-by-minute scan they replace, over random
// expressions and instants, in local time zones with whole-hour and half-hour daylight saving changes.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cronMatches, lastFiring, nextFiring, parseCron, type Cron, type CronMeter } from '../src/core/cron.ts';
import { formatProblem, loadLab } from '../src/model/load.ts';
import type { Site } from '../src/model/types.ts';
import { reconcile } from '../src/plan/reconcile.ts';
import { FiringCache, inMaintenanceWindow, nextTickDelay, scheduledPowerSince } from '../src/plan/schedules.ts';
import { mulberry32 } from './fixtures/prng.ts';

const MINUTE = 60_000;

/** The scan lastFiring was: every minute back from now. */
function bruteLast(cron: Cron, now: number, lookbackMinutes: number): number | null {
  const start = Math.floor(now / MINUTE) * MINUTE;
  for (let i = 0; i <= lookbackMinutes; i++) if (cronMatches(cron, new Date(start - i * MINUTE))) return start - i * MINUTE;
  return null;
}

/** The scan nextFiring was, over `horizonMinutes` only (the real one looks five years ahead). */
function bruteNext(cron: Cron, after: number, horizonMinutes: number): number | null {
  const seconds = [...cron.seconds].sort((a, b) => a - b);
  const start = Math.floor(after / MINUTE) * MINUTE;
  for (let i = 0; i <= horizonMinutes; i++) {
    const minute = start + i * MINUTE;
    if (!cronMatches(cron, new Date(minute))) continue;
    for (const s of seconds) if (minute + s * 1000 > after) return minute + s * 1000;
  }
  return null;
}

function randomField(rand: () => number, min: number, max: number, rare: number[]): string {
  const n = (): number => min + Math.floor(rand() * (max - min + 1));
  const r = rand();
  if (r < 0.3) return '*';
  if (r < 0.45) return String(n());
  if (r < 0.55) return String(rare[Math.floor(rand() * rare.length)] ?? min);
  if (r < 0.7) {
    const a = n();
    return `${a}-${a + Math.floor(rand() * (max - a + 1))}`;
  }
  if (r < 0.85) return `*/${1 + Math.floor(rand() * Math.min(20, max))}`;
  return [n(), n(), n()].join(',');
}

function randomExpression(rand: () => number, seconds: boolean): string {
  const fields = [
    randomField(rand, 0, 59, [0, 59]),
    randomField(rand, 0, 23, [0, 2, 3, 23]),
    randomField(rand, 1, 31, [29, 30, 31]),
    randomField(rand, 1, 12, [2, 3, 10]),
    randomField(rand, 0, 7, [0, 7]),
  ];
  return seconds ? `${randomField(rand, 0, 59, [0, 30])} ${fields.join(' ')}` : fields.join(' ');
}

/** Instants from 2020 to 2035, a third of them in the months clocks change (March, April, October, November). */
function randomInstant(rand: () => number): number {
  const year = 2020 + Math.floor(rand() * 15);
  if (rand() < 0.35) {
    const month = [2, 3, 9, 10][Math.floor(rand() * 4)] ?? 2;
    return Date.UTC(year, month, 1) + Math.floor(rand() * 31 * 24 * 60) * MINUTE + Math.floor(rand() * MINUTE);
  }
  return Date.UTC(year, 0, 1) + Math.floor(rand() * 365 * 24 * 60) * MINUTE + Math.floor(rand() * MINUTE);
}

const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata'];
const savedTz = process.env['TZ'];
after(() => {
  if (savedTz === undefined) delete process.env['TZ'];
  else process.env['TZ'] = savedTz;
});

describe('lastFiring and nextFiring agree with the minute-by-minute scan', () => {
  for (const zone of zones) {
    it(`in ${zone}: 400 random expressions and instants`, () => {
      process.env['TZ'] = zone;
      const rand = mulberry32(zone.length * 7919);
      for (let i = 0; i < 400; i++) {
        const withSeconds = rand() < 0.2;
        const expression = randomExpression(rand, withSeconds);
        const cron = parseCron(expression, { seconds: withSeconds });
        const now = randomInstant(rand);
        const lookback = [0, 1, 59, 61, 1440, 3 * 1440, 8 * 1440][Math.floor(rand() * 7)] ?? 60;
        const context = `${zone} "${expression}" at ${new Date(now).toISOString()}`;
        assert.equal(lastFiring(cron, now, lookback), bruteLast(cron, now, lookback), `lastFiring ${context} lookback ${lookback}`);
        const horizon = 40 * 1440;
        const expected = bruteNext(cron, now, horizon);
        const got = nextFiring(cron, now);
        if (expected !== null) assert.equal(got, expected, `nextFiring ${context}`);
        else assert.ok(got === null || got >= Math.floor(now / MINUTE) * MINUTE + horizon * MINUTE, `nextFiring ${context}: none within the horizon, got ${got}`);
      }
    });
  }

  // Berlin skips 02:00-02:59 in March and repeats it in October; Lord Howe skips 02:00-02:29 and repeats 01:30-01:59.
  const changes: Array<[string, number[]]> = [
    ['Europe/Berlin', [Date.UTC(2026, 2, 29, 1), Date.UTC(2026, 9, 25, 1)]],
    ['Australia/Lord_Howe', [Date.UTC(2026, 9, 3, 15, 30), Date.UTC(2026, 3, 4, 15)]],
  ];
  for (const [zone, instants] of changes) {
    it(`around the hours ${zone} skips and repeats, every 3 minutes`, () => {
      process.env['TZ'] = zone;
      const crons = ['30 2 * * *', '* 2 * * *', '59 1 * * *', '0,30 1-3 * * *', '10,40 1-2 * * *', '45 1 * * *', '15 * * * *', '0 0 * * *', '*/7 1,2 * * *'].map((e) => parseCron(e));
      for (const change of instants) {
        for (let t = change - 3 * 60 * MINUTE; t <= change + 3 * 60 * MINUTE; t += 3 * MINUTE) {
          for (const cron of crons) {
            assert.equal(lastFiring(cron, t, 600), bruteLast(cron, t, 600), `lastFiring "${cron.expression}" at ${new Date(t).toISOString()}`);
            assert.equal(nextFiring(cron, t), bruteNext(cron, t, 2 * 1440), `nextFiring "${cron.expression}" at ${new Date(t).toISOString()}`);
          }
        }
      }
    });
  }
});

describe('the work is bounded by the fields, not the minutes', () => {
  it('a never-firing expression: a few dozen steps back over 8 days and forward over 5 years', () => {
    process.env['TZ'] = 'Europe/Berlin';
    const meter: CronMeter = { steps: 0 };
    assert.equal(lastFiring(parseCron('0 0 30 2 *'), Date.UTC(2026, 11, 7), 8 * 1440, meter), null);
    assert.ok(meter.steps <= 20, `${meter.steps} steps back`);
    meter.steps = 0;
    assert.equal(nextFiring(parseCron('0 0 31 2 *'), Date.UTC(2026, 11, 7), meter), null);
    assert.ok(meter.steps <= 400, `${meter.steps} steps forward over five years`);
  });

  it('100 never-firing schedules and 100 windows: each distinct expression evaluated once per pass, in bounded steps', () => {
    process.env['TZ'] = 'UTC';
    const schedules = Array.from({ length: 100 }, (_, i) => ({ name: `s${i}`, selector: { hosts: ['hand'] }, powerOff: `${i % 60} ${i % 24} 30 2 *`, powerOn: `${i % 60} ${i % 24} 31 2 *` }));
    const windows = Array.from({ length: 100 }, (_, i) => ({ cron: `${i % 60} 0 30 2 *`, durationMinutes: 10_080 }));
    const now = Date.UTC(2026, 11, 7, 12);
    const meter: CronMeter = { steps: 0 };
    const cache = new FiringCache(meter);
    for (const s of schedules) assert.equal(scheduledPowerSince(s, now, cache), undefined);
    assert.equal(inMaintenanceWindow(windows, now, cache), false);
    const distinct = new Set([...schedules.flatMap((s) => [s.powerOff, s.powerOn]), ...windows.map((w) => w.cron)]).size;
    // The minute scan took 11,521 steps for each schedule's expression and 10,081 for each window's.
    assert.ok(meter.steps <= distinct * 20, `${meter.steps} steps for ${distinct} distinct expressions`);
    const once = meter.steps;
    for (const s of schedules) scheduledPowerSince(s, now, cache);
    inMaintenanceWindow(windows, now, cache);
    assert.equal(meter.steps, once, 'the same pass asks again: nothing is evaluated twice');

    const site = { schedules, maintenance: { windows }, policies: { provisionTimeoutSeconds: 1800, stepTimeoutSeconds: 300 }, rollout: { groups: [] } } as unknown as Site;
    const passMeter: CronMeter = { steps: 0 };
    reconcile(site, [], now + MINUTE, new FiringCache(passMeter));
    assert.ok(passMeter.steps > 0 && passMeter.steps <= distinct * 20, `a reconcile pass: ${passMeter.steps} steps`);
  });
});

describe('a lab declares at most 100 schedules and 100 windows', () => {
  it('101 of each are a problem at the list', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'forseti-cron-cap-'));
    try {
      cpSync(join(import.meta.dirname, 'fixtures/labs/minimal'), dir, { recursive: true });
      const many = (n: number): string =>
        `schedules:\n${Array.from({ length: n }, (_, i) => `  - {name: s${i}, selector: {roles: [worker]}, powerOff: '0 0 30 2 *', powerOn: '0 0 31 2 *'}\n`).join('')}` +
        `maintenance:\n  windows:\n${Array.from({ length: n }, () => "    - {cron: '0 0 30 2 *', durationMinutes: 60}\n").join('')}`;
      const site = readFileSync(join(dir, 'site.yaml'), 'utf8');
      writeFileSync(join(dir, 'site.yaml'), site + many(100));
      assert.deepEqual((await loadLab(dir)).problems.map(formatProblem), []);
      writeFileSync(join(dir, 'site.yaml'), site + many(101));
      const problems = (await loadLab(dir)).problems.map(formatProblem);
      assert.equal(problems.length, 2, problems.join('\n'));
      assert.match(problems.join('\n'), /site\.yaml:\d+:\d+: schedules: .*100/);
      assert.match(problems.join('\n'), /site\.yaml:\d+:\d+: maintenance\.windows: .*100/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the reconcile timer leaves the event loop free', () => {
  it('the next pass waits at least as long as the last one took', () => {
    assert.equal(nextTickDelay(1000, 5), 1000);
    assert.equal(nextTickDelay(1000, 4000), 4000);
    assert.equal(nextTickDelay(100, 100), 100);
  });
});
