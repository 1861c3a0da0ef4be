import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cronMatches, CronSyntaxError, lastFiring, parseCron } from '../src/core/cron.ts';
import { gateRollout, type RolloutGroup, type RolloutInput } from '../src/plan/rollout.ts';
import type { Site } from '../src/model/types.ts';
import { reconcile } from '../src/plan/reconcile.ts';
import { inMaintenanceWindow, scheduledPower, selects } from '../src/plan/schedules.ts';
import type { Action } from '../src/plan/types.ts';
import type { Capabilities } from '../src/core/capabilities.ts';
import type { DesiredHost, ObservedHost } from '../src/core/host-state.ts';

const at = (iso: string): number => new Date(iso).getTime();

test('cron: fields, ranges, steps, names, and the day-of-month/day-of-week OR rule', () => {
  const c = parseCron('*/15 22-23 * * mon-fri');
  assert.ok(cronMatches(c, new Date(2026, 10, 23, 22, 30)));
  assert.ok(!cronMatches(c, new Date(2026, 10, 23, 22, 31)));
  assert.ok(!cronMatches(c, new Date(2026, 10, 22, 22, 30)), 'a Sunday');
  const or = parseCron('0 0 1 * 0');
  assert.ok(cronMatches(or, new Date(2026, 10, 1, 0, 0)), 'the 1st');
  assert.ok(cronMatches(or, new Date(2026, 10, 22, 0, 0)), 'a Sunday');
  assert.ok(cronMatches(parseCron('0 0 * * 7'), new Date(2026, 10, 22, 0, 0)), '7 is Sunday too');
  for (const bad of ['* * * *', '60 * * * *', '* * * * mon-sun-x', '5-1 * * * *', '*/0 * * * *']) assert.throws(() => parseCron(bad), CronSyntaxError, bad);
  assert.equal(lastFiring(parseCron('0 22 * * *'), new Date(2026, 10, 22, 23, 10).getTime(), 120), new Date(2026, 10, 22, 22, 0).getTime());
  assert.equal(lastFiring(parseCron('0 22 * * *'), new Date(2026, 10, 22, 23, 10).getTime(), 30), null);
});

test('schedules: the expression that fired last decides the power', () => {
  const night = { name: 'night', selector: {}, powerOff: '0 22 * * *', powerOn: '0 7 * * *' };
  assert.equal(scheduledPower(night, new Date(2026, 10, 22, 23, 0).getTime()), 'off');
  assert.equal(scheduledPower(night, new Date(2026, 10, 23, 6, 59).getTime()), 'off');
  assert.equal(scheduledPower(night, new Date(2026, 10, 23, 7, 0).getTime()), 'on');
  assert.equal(scheduledPower(night, new Date(2026, 10, 23, 12, 0).getTime()), 'on');
});

test('maintenance windows: open for their duration after the cron fires; no windows means always open', () => {
  const windows = [{ cron: '0 2 * * *', durationMinutes: 120 }];
  assert.ok(inMaintenanceWindow([], at('2026-11-22T12:00:00Z')));
  assert.ok(inMaintenanceWindow(windows, new Date(2026, 10, 22, 2, 0).getTime()));
  assert.ok(inMaintenanceWindow(windows, new Date(2026, 10, 22, 3, 59).getTime()));
  assert.ok(!inMaintenanceWindow(windows, new Date(2026, 10, 22, 4, 0).getTime()));
  assert.ok(!inMaintenanceWindow(windows, new Date(2026, 10, 22, 1, 59).getTime()));
});

test('selectors: roles, hosts and labels must all hold', () => {
  const host = { name: 'bld-003', role: 'talos-worker', labels: { enclosure: 'asgard' } };
  assert.ok(selects({}, host));
  assert.ok(selects({ roles: ['talos-worker'], labels: { enclosure: 'asgard' } }, host));
  assert.ok(!selects({ roles: ['talos-worker'], labels: { enclosure: 'other' } }, host));
  assert.ok(!selects({ hosts: ['oden'] }, host));
});

const provision: Action = { kind: 'provision', reason: 'provision role r' };
const none: Action = { kind: 'none', reason: 'converged' };
const idle: ObservedHost = { phase: 'Converged', since: 0 };
const busy: ObservedHost = { phase: 'Provisioning', since: 0 };
const input = (name: string, role: string, action: Action, observed = idle): RolloutInput => ({ host: { name, role, labels: {} }, observed, action });
const groups: RolloutGroup[] = [
  { name: 'control-plane', selector: { roles: ['cp'] }, maxUnavailable: 1 },
  { name: 'workers', selector: { roles: ['worker'] }, maxUnavailable: 2 },
];
const kinds = (actions: Action[]): string[] => actions.map((a) => a.kind);

test('rollout: never more than maxUnavailable of a group at once', () => {
  const out = gateRollout(groups, [input('cp1', 'cp', provision), input('cp2', 'cp', provision), input('cp3', 'cp', provision)], true);
  assert.deepEqual(kinds(out), ['provision', 'wait', 'wait']);
  assert.match(out[1]?.reason ?? '', /group control-plane has 1 of 1 hosts out of service/);
  const withBusy = gateRollout(groups, [input('cp1', 'cp', { kind: 'wait', reason: 'provisioning' }, busy), input('cp2', 'cp', provision)], true);
  assert.deepEqual(kinds(withBusy), ['wait', 'wait']);
});

test('rollout: a later group waits until every earlier one is done; ungrouped hosts are not limited', () => {
  const out = gateRollout(groups, [input('cp1', 'cp', provision), input('w1', 'worker', provision), input('x', 'other', provision), input('y', 'other', provision)], true);
  assert.deepEqual(kinds(out), ['provision', 'wait', 'provision', 'provision']);
  assert.match(out[1]?.reason ?? '', /group workers waits for group control-plane/);
  const done = gateRollout(groups, [input('cp1', 'cp', none), input('w1', 'worker', provision), input('w2', 'worker', provision), input('w3', 'worker', provision)], true);
  assert.deepEqual(kinds(done), ['none', 'provision', 'provision', 'wait']);
});

test('rollout: outside a maintenance window nothing disruptive starts, other actions pass', () => {
  const off: Action = { kind: 'power-off', reason: 'off' };
  const out = gateRollout([], [input('a', 'x', provision), input('b', 'x', off), input('c', 'x', { kind: 'wipe', reason: 'wipe' })], false);
  assert.deepEqual(kinds(out), ['wait', 'power-off', 'wait']);
  assert.match(out[0]?.reason ?? '', /waiting for a maintenance window/);
});

test('reconcile: every power action a schedule causes names the schedule, whatever the driver can do', () => {
  const site = {
    schedules: [{ name: 'night', selector: { labels: { enclosure: 'exp' } }, powerOff: '0 22 * * *', powerOn: '0 7 * * *' }],
    policies: { provisionTimeoutSeconds: 900, stepTimeoutSeconds: 300 },
    rollout: { groups: [] },
    maintenance: { windows: [] },
  } as unknown as Site; // reconcile reads only these four
  const night = new Date(2026, 10, 22, 23, 0).getTime();
  const morning = new Date(2026, 10, 23, 7, 30).getTime();
  const wentOff = new Date(2026, 10, 22, 22, 0, 5).getTime();
  const bmc: Capabilities = { powerOff: true, powerState: true, bootOverride: true, operator: false };
  const wol: Capabilities = { powerOff: false, powerState: false, bootOverride: false, operator: false };
  const manual: Capabilities = { ...wol, operator: true };
  const converged: ObservedHost = { phase: 'Converged', appliedRole: 'worker', appliedDigest: 'd', since: 0 };
  const off: ObservedHost = { phase: 'Off', appliedRole: 'worker', appliedDigest: 'd', since: wentOff };
  const failedOff: ObservedHost = { phase: 'Failed', attemptDigest: 'd', lastError: { message: 'BMC said no', step: 'power-off' }, since: wentOff };
  type Row = [string, number, Partial<DesiredHost>, ObservedHost, string, string | RegExp, Record<string, string>?];
  const rows: Row[] = [
    ['bmc', night, { capabilities: bmc }, converged, 'power-off', 'power schedule night'],
    ['wol', night, { capabilities: wol }, converged, 'power-off-by-hand', /^power schedule night; wol cannot be powered off remotely \(Wake-on-LAN\)/],
    ['manual', night, { capabilities: manual }, converged, 'power-off-by-hand', 'power schedule night; the operator is asked to power manual off'],
    ['kept', night, { capabilities: bmc }, { ...off, since: 0 }, 'none', 'power schedule night: off as declared'],
    ['failed', night, { capabilities: bmc }, failedOff, 'none', 'power schedule night: power off failed: BMC said no; a new commit retries'],
    ['declared', night, { capabilities: wol, power: 'off' }, converged, 'power-off-by-hand', /^power: off declared; declared cannot/],
    ['role-off', night, { capabilities: bmc, boot: 'off', role: 'off' }, converged, 'power-off', 'role off keeps the host off'],
    ['elsewhere', night, { capabilities: bmc }, converged, 'none', 'converged', { enclosure: 'prod' }],
    ['morning', morning, { capabilities: bmc }, off, 'power-on', 'power schedule night: role worker is installed; power on from disk'],
    ['off-after', morning, { capabilities: bmc }, { ...off, since: new Date(2026, 10, 23, 7, 10).getTime() }, 'power-on', 'role worker is installed; power on from disk'],
  ];
  for (const [name, now, overrides, observed, kind, reason, labels] of rows) {
    const desired: DesiredHost = { name, role: 'worker', boot: 'image', power: 'on', afterInstall: 'disk', digest: 'd', revision: 'r', ...overrides };
    const [decision] = reconcile(site, [{ desired, observed, labels: labels ?? { enclosure: 'exp' } }], now);
    assert.equal(decision?.action.kind, kind, name);
    if (typeof reason === 'string') assert.equal(decision?.action.reason, reason, name);
    else assert.match(decision?.action.reason ?? '', reason, name);
  }
});
