import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import type { BootOverride, PowerState } from '../src/core/power.ts';
import { BmcUnreachableError } from '../src/bmc/driver.ts';
import { createLogger } from '../src/log.ts';
import { DriftScanner, InvalidScanCronError, type CronScheduler, type DriftTarget } from '../src/observe/drift-scanner.ts';
import type { Drift, DriftDesired, DriftObserved } from '../src/observe/drift.ts';

const log = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const NOW = 5_000_000;

function desired(name: string, mode: 'detect' | 'heal' | 'paused' = 'heal'): DriftDesired {
  return { name, role: 'slurm-compute', boot: 'image', power: 'on', afterInstall: 'disk', digest: 'd1', revision: 'c0ffee00', drift: { mode, source: 'site', silentAfterMs: 0, bootOverrideGraceMs: 0 } };
}
const converged: DriftObserved = { phase: 'Converged', appliedRole: 'slurm-compute', appliedDigest: 'd1', since: 0 };

/** A fake lab: power per host, calls recorded, and a scheduler whose tick the test fires by hand. */
function lab() {
  const power = new Map<string, PowerState | Error>();
  const overrides = new Map<string, BootOverride | null>();
  const calls: string[] = [];
  let tick: (() => void) | null = null;
  let stopped = false;
  const scheduler: CronScheduler = (cron, run) => {
    assert.equal(cron.expression, '*/5 * * * *');
    tick = run;
    return { stop: () => void (stopped = true) };
  };
  return {
    power, overrides, calls, scheduler,
    fire: () => tick?.(),
    get stopped() { return stopped; },
    readPower: async (h: string): Promise<PowerState> => {
      calls.push(`power ${h}`);
      const p = power.get(h) ?? 'on';
      if (p instanceof Error) throw p;
      return p;
    },
    readBootOverride: async (h: string): Promise<BootOverride | null> => {
      calls.push(`override ${h}`);
      return overrides.get(h) ?? null;
    },
  };
}

test('DriftScanner: detects once, repeats while present, clears when healed', async () => {
  const l = lab();
  const targets: DriftTarget[] = [
    { desired: desired('bld-001'), observed: converged },
    { desired: desired('bld-002', 'paused'), observed: converged },
  ];
  const scanner = new DriftScanner({ cron: '*/5 * * * *', targets: () => targets, readPower: l.readPower, readBootOverride: l.readBootOverride, log, clock: () => NOW, scheduler: l.scheduler });
  const events: string[] = [];
  scanner.on('drift', (d: Drift, first: boolean) => events.push(`${first ? 'new' : 'still'} ${d.host} ${d.kind} act=${d.act}`));
  scanner.on('cleared', (d: Drift) => events.push(`cleared ${d.host} ${d.kind}`));

  l.power.set('bld-001', 'off');
  l.power.set('bld-002', 'off');
  let result = await scanner.scan();
  assert.deepEqual(result.detected.map((d) => d.host), ['bld-001', 'bld-002']);
  result = await scanner.scan();
  assert.deepEqual(result.detected, []);
  l.power.set('bld-001', 'on');
  result = await scanner.scan();
  assert.deepEqual(result.cleared.map((d) => d.host), ['bld-001']);
  assert.deepEqual(events, [
    'new bld-001 powered-off act=true', 'new bld-002 powered-off act=false',
    'still bld-001 powered-off act=true', 'still bld-002 powered-off act=false',
    'still bld-002 powered-off act=false', 'cleared bld-001 powered-off',
  ]);
});

test('DriftScanner: reads only what matters per phase; an unreachable BMC is drift; busy hosts keep their drift unread', async () => {
  const l = lab();
  l.power.set('bld-003', new BmcUnreachableError('bld-003', '10.77.1.13:623', 'no answer after 3 tries'));
  l.power.set('bld-004', 'off');
  const targets: DriftTarget[] = [
    { desired: desired('bld-001'), observed: { phase: 'Provisioning', step: 'power-cycled', attemptDigest: 'd1', since: 0, stepSince: 0 } },
    { desired: desired('bld-002'), observed: { phase: 'Provisioning', step: 'kernel', attemptDigest: 'd1', since: 0 } },
    { desired: desired('bld-003'), observed: converged },
    { desired: desired('bld-004'), observed: converged },
    { desired: desired('bld-005'), observed: { phase: 'Failed', since: 0 } },
    { desired: { ...desired('wol-001'), enrollable: false }, observed: converged },
  ];
  const scanner = new DriftScanner({ cron: '*/5 * * * *', targets: () => targets, readPower: l.readPower, readBootOverride: l.readBootOverride, log, clock: () => NOW, scheduler: l.scheduler, concurrency: 1 });
  const first = await scanner.scan();
  assert.deepEqual(l.calls, ['override bld-001', 'power bld-003', 'power bld-004']);
  assert.deepEqual(first.drifts.map((d) => `${d.host} ${d.kind}`), ['bld-001 boot-override-lost', 'bld-003 bmc-unreachable', 'bld-004 powered-off']);
  assert.match(first.drifts[1]?.message ?? '', /BMC 10\.77\.1\.13:623/);

  // bld-004 is being powered on by the executor: not read, its drift neither repeated as new nor cleared.
  (targets[3] as DriftTarget).busy = true;
  l.calls.length = 0;
  const second = await scanner.scan();
  assert.deepEqual(l.calls, ['override bld-001', 'power bld-003']);
  assert.deepEqual(second.detected, []);
  assert.deepEqual(second.cleared, []);
  assert.ok(second.drifts.some((d) => d.host === 'bld-004'));

  // A host removed from Git is forgotten, not reported healed.
  targets.splice(3, 1);
  const third = await scanner.scan();
  assert.deepEqual(third.cleared, []);
  assert.ok(!third.drifts.some((d) => d.host === 'bld-004'));
});

test('DriftScanner: scheduled runs, no overlap, stop waits for the scan under way', async () => {
  const l = lab();
  let release: () => void = () => undefined;
  let reads = 0;
  const scanner = new DriftScanner({
    cron: '*/5 * * * *', log, clock: () => NOW, scheduler: l.scheduler,
    targets: () => [{ desired: desired('bld-001'), observed: converged }],
    readPower: () => { reads += 1; return new Promise<PowerState>((resolve) => (release = () => resolve('on'))); },
    readBootOverride: l.readBootOverride,
  });
  const scanned = new Promise((resolve) => scanner.once('scanned', resolve));
  scanner.start();
  l.fire();
  l.fire();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(reads, 1, 'the second tick while a scan runs is skipped');
  const stopping = scanner.stop();
  release();
  await stopping;
  await scanned;
  assert.ok(l.stopped);
});

test('DriftScanner: an invalid cron expression is refused at construction', () => {
  const l = lab();
  assert.throws(() => new DriftScanner({ cron: 'every five minutes', targets: () => [], readPower: l.readPower, readBootOverride: l.readBootOverride, log }), InvalidScanCronError);
});

test('DriftScanner: runs on its cron schedule, seconds included (every second)', async () => {
  const l = lab();
  l.power.set('bld-001', 'off');
  const scanner = new DriftScanner({ cron: '* * * * * *', targets: () => [{ desired: desired('bld-001'), observed: converged }], readPower: l.readPower, readBootOverride: l.readBootOverride, log });
  const found = new Promise<Drift>((resolve) => scanner.once('drift', (d: Drift) => resolve(d)));
  scanner.start();
  try {
    const timeout = setTimeout(() => assert.fail('no scan within 5 s'), 5000);
    const drift = await found;
    clearTimeout(timeout);
    assert.equal(drift.kind, 'powered-off');
  } finally {
    await scanner.stop();
  }
});
