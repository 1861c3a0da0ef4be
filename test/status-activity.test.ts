// "The last five reconciles with timings": per site the commit applies with their stages, per host the actions
// from decision to the event that ends them; recorded with a fake clock, published to the status branch files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatusPublisher } from '../src/status/status-publisher.ts';
import { HostActions } from '../src/observe/host-actions.ts';
import { Metrics } from '../src/observe/metrics.ts';
import { ReconcileLog, type ActivityClock } from '../src/observe/reconcile-log.ts';
import type { ObservedHost } from '../src/core/host-state.ts';
import type { Generation } from '../src/render/generation.ts';
import { parseActions, parseReconciles } from '../src/observe/activity.ts';
import { parseHostStatus, parseSiteStatus, type StatusWriter } from '../src/status/index.ts';

const T0 = Date.parse('2026-11-22T10:00:00Z');
const iso = (ms: number): string => new Date(T0 + ms).toISOString();

function fakeClock(): ActivityClock & { advance: (ms: number) => void } {
  let t = 0;
  return { wall: () => T0 + t, mono: () => t, advance: (ms) => void (t += ms) };
}

const provisioning: ObservedHost = { phase: 'Provisioning', step: 'requested', since: T0 };

test('ReconcileLog: stages timed between marks, the last five kept, hosts acted on counted once per host', () => {
  const clock = fakeClock();
  const log = new ReconcileLog(clock);
  const run = log.start('rev1');
  clock.advance(120);
  run.mark('validate');
  clock.advance(3);
  run.mark('secrets');
  run.mark('images');
  clock.advance(900);
  run.mark('render');
  clock.advance(40);
  run.mark('activate');
  assert.equal(log.list()[0]?.result, 'running');
  run.finish('applied');
  run.finish('rejected', 3); // ignored: once finished, finished
  log.actionStarted('bld-001', 'provision', 'rev1');
  log.actionStarted('bld-002', 'rerender', 'rev1');
  log.actionStarted('bld-001', 'power-off', 'rev1');
  log.actionStarted('bld-009', 'provision', 'older-rev'); // no apply of that revision: not counted anywhere
  assert.deepEqual(log.list(), [
    { revision: 'rev1', started: iso(0), finished: iso(1063), durationMs: 1063, stages: { validate: 120, secrets: 3, images: 0, render: 900, activate: 40 }, result: 'applied', hostsActedOn: 2, actions: { provision: 1, rerender: 1, 'power-off': 1 } },
  ]);

  // A rejected commit does not take the actions of the revision that keeps serving.
  const bad = log.start('rev2');
  clock.advance(50);
  bad.mark('validate');
  bad.finish('rejected', 2);
  log.actionStarted('bld-003', 'provision', 'rev1');
  const [first, second] = log.list();
  assert.equal(first?.hostsActedOn, 3);
  assert.deepEqual(second, { revision: 'rev2', started: iso(1063), finished: iso(1113), durationMs: 50, stages: { validate: 50 }, result: 'rejected', problems: 2, hostsActedOn: 0 });

  // A run nobody finished (the apply threw) is closed as rejected when the next starts; five are kept.
  log.start('rev3');
  for (let i = 4; i <= 8; i++) log.start(`rev${i}`).finish('applied');
  assert.deepEqual(log.list().map((r) => [r.revision, r.result]), [['rev4', 'applied'], ['rev5', 'applied'], ['rev6', 'applied'], ['rev7', 'applied'], ['rev8', 'applied']]);
});

test('HostActions: an action ends with the event the operator waits for, not when the BMC call returns', () => {
  let now = T0;
  const actions = new HostActions(() => now);
  assert.equal(actions.started('h', { kind: 'wait', reason: 'rollout slot' }, 'r1'), false);
  assert.equal(actions.started('h', { kind: 'none', reason: 'converged' }, 'r1'), false);

  actions.started('h', { kind: 'enroll', reason: 'new host' }, 'r1');
  now += 2000;
  actions.event('h', { kind: 'enroll-failed', message: 'no answer from BMC 10.0.0.9:623', retryAt: now + 10_000 }, { phase: 'Enrolling', since: now });
  now += 10_000;
  actions.started('h', { kind: 'enroll', reason: 'retry' }, 'r1');
  now += 1500;
  actions.event('h', { kind: 'enrolled', inventory: {} }, { phase: 'Ready', since: now });
  actions.started('h', { kind: 'provision', reason: 'role worker' }, 'r1');
  now += 100;
  // Steps do not end a provisioning; the phone-home does.
  assert.equal(actions.event('h', { kind: 'step', step: 'power-cycled' }, { ...provisioning, step: 'power-cycled' }), false);
  now += 44_900;
  assert.equal(actions.event('h', { kind: 'phone-home', role: 'worker' }, { phase: 'Converged', since: now }), true);
  assert.deepEqual(
    actions.of('h').map((a) => [a.action, a.outcome, a.durationMs, a.message]),
    [
      ['enroll', 'failed', 2000, 'no answer from BMC 10.0.0.9:623'],
      ['enroll', 'ok', 1500, undefined],
      ['provision', 'ok', 45_000, undefined],
    ],
  );

  // A new decision while one is open supersedes it; `fail` (a timeout) is not an action but ends the open one.
  actions.started('h', { kind: 'provision', reason: 'role gpu' }, 'r2');
  now += 1000;
  actions.started('h', { kind: 'provision', reason: 'role cpu' }, 'r3');
  assert.equal(actions.started('h', { kind: 'fail', reason: 'no phone-home within 900 s' }, 'r3'), false);
  now += 900_000;
  actions.event('h', { kind: 'failed', message: 'no phone-home within 900 s', step: 'kernel' }, { phase: 'Failed', since: now });
  actions.started('h', { kind: 'boot-override', reason: 'heal' }, 'r3');
  now += 30_000;
  actions.event('h', { kind: 'step', step: 'dhcp' }, { ...provisioning, step: 'dhcp' });
  const list = actions.of('h');
  assert.equal(list.length, 5, 'the last five');
  assert.deepEqual(
    list.map((a) => [a.action, a.revision, a.outcome, a.durationMs]),
    [
      ['enroll', 'r1', 'ok', 1500],
      ['provision', 'r1', 'ok', 45_000],
      ['provision', 'r2', 'superseded', 1000],
      ['provision', 'r3', 'failed', 900_000],
      ['boot-override', 'r3', 'ok', 30_000],
    ],
  );
  actions.retain(new Set(['other']));
  assert.deepEqual(actions.of('h'), []);
});

test('StatusPublisher: site.yaml carries the last reconciles, host files their actions; metrics get the stages', async () => {
  const files = new Map<string, string | null>();
  // Only set/remove/stop are used by the publisher.
  const writer = { set: (p: string, c: string) => void files.set(p, c), remove: (p: string) => void files.set(p, null), stop: async () => undefined } as unknown as StatusWriter;
  const desired = { name: 'h', role: 'worker', boot: 'image', power: 'on', afterInstall: 'disk', digest: 'd1', revision: 'rev1' } as const;
  // The publisher reads only the desired state of the served generation.
  const generation = { revision: 'rev1', hosts: new Map([['h', { desired }]]) } as unknown as Generation;
  const clock = fakeClock();
  const metrics = new Metrics({ processMetrics: false });
  const publisher = new StatusPublisher(writer, () => generation, { clock, metrics });

  const run = publisher.reconciles.start('rev1');
  clock.advance(80);
  run.mark('validate');
  clock.advance(20);
  run.mark('render');
  publisher.applied('rev1');
  publisher.host('h', { phase: 'Ready', since: T0 });
  publisher.actionStarted('h', { kind: 'provision', reason: 'role worker' }, 'rev1');
  run.finish('applied');
  clock.advance(30_000);
  publisher.host('h', { phase: 'Converged', appliedRole: 'worker', appliedDigest: 'd1', appliedRevision: 'rev1', since: T0 + 30_000 }, { kind: 'phone-home', role: 'worker' });
  await publisher.stop();

  const site = parseSiteStatus(files.get('site.yaml') ?? '');
  assert.deepEqual(site.reconciles, [{ revision: 'rev1', started: iso(0), finished: iso(100), durationMs: 100, stages: { validate: 80, render: 20 }, result: 'applied', hostsActedOn: 1, actions: { provision: 1 } }]);
  assert.deepEqual([site.sync, site.health], ['Synced', 'Healthy']);
  const host = parseHostStatus(files.get('hosts/h.yaml') ?? '');
  assert.deepEqual(host.actions, [{ action: 'provision', reason: 'role worker', revision: 'rev1', started: iso(100), finished: iso(30_100), durationMs: 30_000, outcome: 'ok' }]);
  assert.match(await metrics.text(), /forseti_commit_apply_stage_duration_seconds_sum\{stage="validate"\} 0\.08\n/);
  assert.match(await metrics.text(), /forseti_hosts_sync\{sync="Synced"\} 1\n/);

  // A host that leaves the lab loses its file.
  (generation.hosts as Map<string, unknown>).delete('h');
  publisher.applied('rev1');
  assert.equal(files.get('hosts/h.yaml'), null);
});

test('reconciles and actions are read leniently: a malformed entry is dropped, not fatal', () => {
  assert.deepEqual(parseReconciles([{ revision: 'r', started: 't', result: 'applied', stages: { render: 5, bogus: 1, validate: 'x' }, hostsActedOn: 2 }, { revision: 'r' }, 'x']), [
    { revision: 'r', started: 't', result: 'applied', stages: { render: 5 }, hostsActedOn: 2 },
  ]);
  assert.equal(parseReconciles('nope'), undefined);
  assert.deepEqual(parseActions([{ action: 'provision', revision: 'r', started: 't', outcome: 'ok', durationMs: 5 }, { action: 'x', revision: 'r', started: 't', outcome: 'maybe' }]), [
    { action: 'provision', revision: 'r', started: 't', outcome: 'ok', durationMs: 5 },
  ]);
});
