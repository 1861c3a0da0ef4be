import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyEvent, initialState, type HostEvent } from '../src/core/host-lifecycle.ts';
import type { ObservedHost } from '../src/core/host-state.ts';

const run = (events: HostEvent[], start: ObservedHost = initialState(0)): ObservedHost => events.reduce((s, e, i) => applyEvent(s, e, i + 1), start);

test('lifecycle: enrol, provision through its steps, converge', () => {
  const s = run([
    { kind: 'enrolled', inventory: { memoryGiB: 32 } },
    { kind: 'provision-started', role: 'r', digest: 'd', revision: 'v' },
    { kind: 'step', step: 'power-cycled' },
    { kind: 'step', step: 'dhcp' },
    { kind: 'step', step: 'kernel' },
    { kind: 'step', step: 'dhcp' },
    { kind: 'phone-home', role: 'r' },
  ]);
  assert.equal(s.phase, 'Converged');
  assert.deepEqual([s.appliedRole, s.appliedDigest, s.appliedRevision], ['r', 'd', 'v']);
  assert.deepEqual(s.inventory, { memoryGiB: 32 });
  assert.equal(s.step, undefined);
});

test('lifecycle: steps only move forward', () => {
  const s = run([{ kind: 'provision-started', role: 'r', digest: 'd', revision: 'v' }, { kind: 'step', step: 'kernel' }, { kind: 'step', step: 'dhcp' }]);
  assert.equal(s.step, 'kernel');
  assert.equal(s.stepSince, 2);
});

test('lifecycle: a failed enrolment backs off and keeps the host Enrolling', () => {
  const s = run([{ kind: 'enroll-failed', message: 'timeout', retryAt: 100 }, { kind: 'enroll-failed', message: 'timeout', retryAt: 200 }]);
  assert.equal(s.phase, 'Enrolling');
  assert.equal(s.failures, 2);
  assert.equal(s.retryAt, 200);
  const ok = applyEvent(s, { kind: 'enrolled', inventory: {} }, 9);
  assert.equal(ok.phase, 'Ready');
  assert.equal(ok.retryAt, undefined);
  assert.equal(ok.lastError, undefined);
});

test('lifecycle: a wipe completes on its phone-home, records its token and forgets the installed role', () => {
  const converged: ObservedHost = { phase: 'Converged', since: 0, appliedRole: 'r', appliedDigest: 'd', appliedRevision: 'v' };
  const s = run([{ kind: 'wipe-started', token: 'w1', digest: 'd2', revision: 'v2' }, { kind: 'step', step: 'kernel' }, { kind: 'phone-home', role: 'wipe' }], converged);
  assert.equal(s.phase, 'Ready');
  assert.equal(s.wipedToken, 'w1');
  assert.equal(s.appliedRole, undefined);
});

test('lifecycle: a wipe takes the steps of its image\'s reports; their Converged completes it, a failure fails it', () => {
  const converged: ObservedHost = { phase: 'Converged', since: 0, appliedRole: 'r', appliedDigest: 'd', appliedRevision: 'v' };
  const step = { signal: 'installerReports', name: 'forseti-wipe', at: 3, detail: 'disk/vda: zeroed 1 of 2 bytes' };
  const wiping = run([{ kind: 'wipe-started', token: 'w1', digest: 'd2', revision: 'v2', nonce: 'n' }, { kind: 'step', step: 'kernel' }, { kind: 'converge-step', step }], converged);
  assert.equal(wiping.phase, 'Wiping');
  assert.deepEqual(wiping.convergeSteps, [step]);
  assert.equal(wiping.stepSince, 3, 'a reported step is progress');
  const done = applyEvent(wiping, { kind: 'converged', by: ['installerReports'] }, 4);
  assert.deepEqual([done.phase, done.wipedToken, done.appliedRole], ['Ready', 'w1', undefined]);
  const failed = applyEvent(wiping, { kind: 'failed', message: 'forseti-wipe/disk/vdb failed: not wiped', step: 'forseti-wipe/disk/vdb' }, 4);
  assert.deepEqual([failed.phase, failed.wipedToken, failed.lastError?.step], ['Failed', undefined, 'forseti-wipe/disk/vdb']);
});

test('lifecycle: a phone-home with another role fails the provisioning; outside provisioning it changes nothing', () => {
  const s = run([{ kind: 'provision-started', role: 'r', digest: 'd', revision: 'v' }, { kind: 'phone-home', role: 'other' }]);
  assert.equal(s.phase, 'Failed');
  assert.match(s.lastError?.message ?? '', /booted role other, expected r/);
  const idle: ObservedHost = { phase: 'Converged', since: 0, appliedRole: 'r' };
  assert.equal(applyEvent(idle, { kind: 'phone-home', role: 'r' }, 5), idle);
});

test('lifecycle: a failure can close an attempt so the same change is not retried', () => {
  const s = applyEvent(initialState(0), { kind: 'failed', message: 'needs 32', step: 'refused', digest: 'd', revision: 'v' }, 1);
  assert.deepEqual([s.phase, s.attemptDigest, s.attemptRevision, s.lastError?.step], ['Failed', 'd', 'v', 'refused']);
});

test('lifecycle: each provisioning or wipe keeps the nonce it started with; one without a nonce drops the previous one', () => {
  const first = run([{ kind: 'provision-started', role: 'r', digest: 'd', revision: 'v', nonce: 'n1' }, { kind: 'phone-home', role: 'r' }]);
  assert.deepEqual([first.phase, first.attemptNonce], ['Converged', 'n1'], 'the config of a network-booted role still needs it');
  const wipe = applyEvent(first, { kind: 'wipe-started', token: 'w', digest: 'd2', revision: 'v2', nonce: 'n2' }, 9);
  assert.equal(wipe.attemptNonce, 'n2');
  assert.equal(applyEvent(wipe, { kind: 'provision-started', role: 'r', digest: 'd', revision: 'v3' }, 10).attemptNonce, undefined);
});
