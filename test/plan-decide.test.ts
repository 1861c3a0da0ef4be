import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootAnswer, decide } from '../src/plan/decide.ts';
import type { Action, BootAnswer } from '../src/plan/types.ts';
import type { DesiredHost, ObservedHost } from '../src/core/host-state.ts';

const NOW = 1_000_000;
const TIMEOUT = 600_000;
const STEP_TIMEOUT = 120_000;
const OPTIONS = { now: NOW, provisionTimeoutMs: TIMEOUT, stepTimeoutMs: STEP_TIMEOUT };

const WOL = { powerOff: false, powerState: false, bootOverride: false, operator: false };
const MANUAL = { powerOff: false, powerState: false, bootOverride: false, operator: true };
const FULL = { powerOff: true, powerState: true, bootOverride: true, operator: false };

const desired = (over: Partial<DesiredHost> = {}): DesiredHost => ({
  name: 'bld-003', role: 'talos-worker', boot: 'image', power: 'on', afterInstall: 'disk', digest: 'd2', revision: 'r2', enrollable: false, ...over,
});
const observed = (over: Partial<ObservedHost> = {}): ObservedHost => ({ phase: 'Pending', since: NOW - 1000, ...over });
const converged = (over: Partial<ObservedHost> = {}): ObservedHost =>
  observed({ phase: 'Converged', appliedRole: 'talos-worker', appliedDigest: 'd2', appliedRevision: 'r2', ...over });

const cases: Array<{ name: string; desired: DesiredHost; observed: ObservedHost; action: Action['kind']; answer: BootAnswer }> = [
  { name: 'new host is provisioned', desired: desired(), observed: observed(), action: 'provision', answer: 'install' },
  { name: 'converged host with same digest: nothing', desired: desired(), observed: converged(), action: 'none', answer: 'disk' },
  { name: 'role change reprovisions', desired: desired({ role: 'slurm-compute', digest: 'd3' }), observed: converged(), action: 'provision', answer: 'install' },
  { name: 'same role, new artifacts: re-render only', desired: desired({ digest: 'd9' }), observed: converged(), action: 'rerender', answer: 'disk' },
  { name: 'diskless role keeps booting the network', desired: desired({ afterInstall: 'pxe' }), observed: converged(), action: 'none', answer: 'install' },
  { name: 'provisioning within time: wait', desired: desired(), observed: observed({ phase: 'Provisioning', attemptDigest: 'd2', step: 'kernel' }), action: 'wait', answer: 'install' },
  { name: 'provisioning past its time: fail', desired: desired(), observed: observed({ phase: 'Provisioning', attemptDigest: 'd2', since: NOW - TIMEOUT - 1 }), action: 'fail', answer: 'install' },
  { name: 'stuck at one step past the step timeout: fail', desired: desired(), observed: observed({ phase: 'Provisioning', attemptDigest: 'd2', step: 'dhcp', stepSince: NOW - STEP_TIMEOUT - 1 }), action: 'fail', answer: 'install' },
  { name: 'progressing steps within the step timeout: wait', desired: desired(), observed: observed({ phase: 'Provisioning', attemptDigest: 'd2', step: 'kernel', since: NOW - STEP_TIMEOUT * 3, stepSince: NOW - 1000 }), action: 'wait', answer: 'install' },
  { name: 'provisioning for an older digest: restart with the new one', desired: desired({ digest: 'd3' }), observed: observed({ phase: 'Provisioning', attemptDigest: 'd2' }), action: 'provision', answer: 'install' },
  { name: 'failed attempt is not retried for the same digest', desired: desired(), observed: observed({ phase: 'Failed', attemptDigest: 'd2' }), action: 'none', answer: 'install' },
  { name: 'failed attempt, new commit retries', desired: desired({ digest: 'd4' }), observed: observed({ phase: 'Failed', attemptDigest: 'd2' }), action: 'provision', answer: 'install' },
  { name: 'role off powers off', desired: desired({ role: 'off', boot: 'off' }), observed: converged(), action: 'power-off', answer: 'exit' },
  { name: 'power off declared powers off', desired: desired({ power: 'off' }), observed: converged(), action: 'power-off', answer: 'exit' },
  { name: 'already off: nothing', desired: desired({ role: 'off', boot: 'off' }), observed: observed({ phase: 'Off' }), action: 'none', answer: 'exit' },
  { name: 'off host with its role installed is powered on from disk', desired: desired(), observed: observed({ phase: 'Off', appliedRole: 'talos-worker', appliedDigest: 'd2' }), action: 'power-on', answer: 'install' },
  { name: 'off host given another role is provisioned', desired: desired({ role: 'slurm-compute', digest: 'd5' }), observed: observed({ phase: 'Off', appliedRole: 'talos-worker', appliedDigest: 'd2' }), action: 'provision', answer: 'install' },
  { name: 'installed, its BMC left at PXE for every boot: the boot is set back to the disk', desired: desired(), observed: converged({ bmc: { bootOnce: false, holds: 'pxe' } }), action: 'boot-disk', answer: 'disk' },
  { name: 'installed, the BMC back at the disk: nothing', desired: desired(), observed: converged({ bmc: { bootOnce: false, holds: 'disk' } }), action: 'none', answer: 'disk' },
  { name: 'a failed set-back waits for its retry time', desired: desired(), observed: converged({ bmc: { bootOnce: false, holds: 'pxe', retryAt: NOW + 5000 } }), action: 'wait', answer: 'disk' },
  { name: 'a diskless role keeps PXE for every boot', desired: desired({ afterInstall: 'pxe' }), observed: converged({ bmc: { bootOnce: false, holds: 'pxe' } }), action: 'none', answer: 'install' },
  { name: 'chain role (netboot.xyz) chains', desired: desired({ role: 'netboot-xyz', boot: 'chain', afterInstall: 'pxe' }), observed: observed(), action: 'provision', answer: 'chain' },
  { name: 'revert to the previous role reprovisions', desired: desired({ role: 'slurm-compute', digest: 'd1' }), observed: converged(), action: 'provision', answer: 'install' },
  // Enrolment: the BMC is read before anything else happens to a new host.
  { name: 'new host with a BMC is enrolled first', desired: desired({ enrollable: true }), observed: observed(), action: 'enroll', answer: 'install' },
  { name: 'enrolled host is provisioned', desired: desired({ enrollable: true }), observed: observed({ phase: 'Ready', inventory: { memoryGiB: 64 } }), action: 'provision', answer: 'install' },
  { name: 'unreachable BMC: wait for the retry time', desired: desired({ enrollable: true }), observed: observed({ phase: 'Enrolling', retryAt: NOW + 5000, lastError: { message: 'timeout' } }), action: 'wait', answer: 'install' },
  { name: 'unreachable BMC: retry after the back-off', desired: desired({ enrollable: true }), observed: observed({ phase: 'Enrolling', retryAt: NOW - 1 }), action: 'enroll', answer: 'install' },
  { name: 'inventory below the role requirement: refused', desired: desired({ enrollable: true, requires: { memoryGiB: 32 } }), observed: observed({ phase: 'Ready', inventory: { memoryGiB: 8 } }), action: 'refuse', answer: 'install' },
  { name: 'refused once, not refused again for the same digest', desired: desired({ requires: { memoryGiB: 32 } }), observed: observed({ phase: 'Failed', attemptDigest: 'd2', inventory: { memoryGiB: 8 }, lastError: { message: 'x', step: 'refused' } }), action: 'none', answer: 'install' },
  // Drivers that cannot power off (src/core/capabilities.ts): a human does it, once; never a failure.
  { name: 'Wake-on-LAN host given role off: power off by hand', desired: desired({ role: 'off', boot: 'off', capabilities: WOL }), observed: converged(), action: 'power-off-by-hand', answer: 'exit' },
  { name: 'Wake-on-LAN host under a power schedule: power off by hand', desired: desired({ power: 'off', capabilities: WOL }), observed: converged(), action: 'power-off-by-hand', answer: 'exit' },
  { name: 'Wake-on-LAN host recorded off: nothing more', desired: desired({ power: 'off', capabilities: WOL }), observed: observed({ phase: 'Off', appliedRole: 'talos-worker', appliedDigest: 'd2' }), action: 'none', answer: 'exit' },
  { name: 'Wake-on-LAN host that failed a power-off before: handed to a human, not left failed', desired: desired({ power: 'off', capabilities: WOL }), observed: observed({ phase: 'Failed', attemptDigest: 'd2', lastError: { message: 'cannot', step: 'power-off' } }), action: 'power-off-by-hand', answer: 'exit' },
  { name: 'Wake-on-LAN host back on after a schedule: woken, boots its disk', desired: desired({ capabilities: WOL }), observed: observed({ phase: 'Off', appliedRole: 'talos-worker', appliedDigest: 'd2' }), action: 'power-on', answer: 'install' },
  { name: 'manual host given role off: the operator is asked', desired: desired({ role: 'off', boot: 'off', capabilities: MANUAL }), observed: converged(), action: 'power-off-by-hand', answer: 'exit' },
  { name: 'a BMC host still powers off itself', desired: desired({ power: 'off', capabilities: FULL }), observed: converged(), action: 'power-off', answer: 'exit' },
  // Wipes: one per token, never repeated.
  { name: 'a new wipe token wipes first', desired: desired({ wipeToken: 'w1' }), observed: converged(), action: 'wipe', answer: 'disk' },
  { name: 'a wipe under way waits', desired: desired({ wipeToken: 'w1' }), observed: observed({ phase: 'Wiping', attemptWipeToken: 'w1', step: 'kernel' }), action: 'wait', answer: 'wipe' },
  { name: 'a completed wipe is never repeated; the role is installed', desired: desired({ wipeToken: 'w1' }), observed: observed({ phase: 'Ready', wipedToken: 'w1' }), action: 'provision', answer: 'install' },
  { name: 'a converged host with its wipe done: nothing', desired: desired({ wipeToken: 'w1' }), observed: converged({ wipedToken: 'w1' }), action: 'none', answer: 'disk' },
  { name: 'a failed wipe is not retried for the same token and digest', desired: desired({ wipeToken: 'w1' }), observed: observed({ phase: 'Failed', attemptWipeToken: 'w1', attemptDigest: 'd2' }), action: 'none', answer: 'install' },
  { name: 'a stuck wipe fails', desired: desired({ wipeToken: 'w1' }), observed: observed({ phase: 'Wiping', attemptWipeToken: 'w1', step: 'dhcp', stepSince: NOW - STEP_TIMEOUT - 1 }), action: 'fail', answer: 'wipe' },
];

for (const c of cases) {
  test(`decide: ${c.name}`, () => {
    const action = decide(c.desired, c.observed, OPTIONS);
    assert.equal(action.kind, c.action, action.reason);
    assert.equal(bootAnswer(c.desired, c.observed), c.answer);
  });
}

test('decide: reprovision names both roles', () => {
  const action = decide(desired({ role: 'slurm-compute', digest: 'd3' }), converged(), OPTIONS);
  assert.deepEqual(action, { kind: 'provision', reason: 'reprovision from role talos-worker to slurm-compute', fromRole: 'talos-worker' });
});

test('decide: a timeout names the last step reached', () => {
  const action = decide(desired(), observed({ phase: 'Provisioning', attemptDigest: 'd2', step: 'initrd', since: 0 }), OPTIONS);
  assert.equal(action.kind, 'fail');
  assert.match(action.reason, /last step: initrd/);
});

test('decide: a stuck step names the step', () => {
  const action = decide(desired(), observed({ phase: 'Provisioning', attemptDigest: 'd2', step: 'script', stepSince: 0, since: NOW - 1000 }), OPTIONS);
  assert.deepEqual(action, { kind: 'fail', reason: 'no progress past step script within 120 s', step: 'script' });
});

test('decide: a wipe whose image reports steps waits on them, and a stuck one names the last reported step', () => {
  const reported = { signal: 'installerReports', name: 'forseti-wipe', at: NOW - 5000, detail: 'disk/vdb: zeroed 1 of 2 bytes' };
  const wiping = observed({ phase: 'Wiping', attemptWipeToken: 'w1', step: 'initrd', convergeSteps: [reported], stepSince: NOW - 5000 });
  assert.deepEqual(decide(desired({ wipeToken: 'w1' }), wiping, OPTIONS), { kind: 'wait', reason: 'wiping (step forseti-wipe; waiting on disk/vdb: zeroed 1 of 2 bytes)' });
  const stuck = decide(desired({ wipeToken: 'w1' }), { ...wiping, stepSince: 0 }, OPTIONS);
  assert.deepEqual(stuck, { kind: 'fail', reason: 'no progress past step forseti-wipe within 120 s; waiting on disk/vdb: zeroed 1 of 2 bytes', step: 'forseti-wipe' });
});

test('decide: a wipe runs by the wipe role\'s declared timeouts, not those of the role installed after it', () => {
  const reported = { signal: 'installerReports', name: 'forseti-wipe', at: NOW - 600_000 };
  const wiping = observed({ phase: 'Wiping', attemptWipeToken: 'w1', step: 'initrd', convergeSteps: [reported], stepSince: NOW - 600_000, since: NOW - 600_000 });
  const roleShort = { convergeTimeouts: { stepMs: 60_000, provisionMs: 60_000 } };
  // The wipe role allows an hour per step and two in all: ten minutes in, the wipe is still waited on.
  const action = decide(desired({ wipeToken: 'w1', ...roleShort, wipeTimeouts: { stepMs: 3600_000, provisionMs: 7200_000 } }), wiping, OPTIONS);
  assert.equal(action.kind, 'wait');
  // Without declared wipe timeouts the site's policies apply (120 s per step here), never the role's.
  assert.deepEqual(decide(desired({ wipeToken: 'w1', ...roleShort }), wiping, { ...OPTIONS, provisionTimeoutMs: 3600_000 }), { kind: 'fail', reason: 'no progress past step forseti-wipe within 120 s', step: 'forseti-wipe' });
  // While provisioning, the role's own.
  const provisioning = observed({ phase: 'Provisioning', attemptDigest: 'd2', step: 'script', stepSince: NOW - 90_000, since: NOW - 90_000 });
  assert.equal(decide(desired(roleShort), provisioning, { ...OPTIONS, provisionTimeoutMs: 3600_000 }).kind, 'fail');
});

test('decide: a refusal names both facts', () => {
  const action = decide(desired({ enrollable: true, requires: { memoryGiB: 32 } }), observed({ phase: 'Ready', inventory: { memoryGiB: 8 } }), OPTIONS);
  assert.deepEqual(action, { kind: 'refuse', reason: 'role talos-worker needs memoryGiB >= 32 but the BMC of bld-003 reports 8' });
});

test('decide: a host that cannot power off says who does it, and how', () => {
  assert.deepEqual(decide(desired({ role: 'off', boot: 'off', capabilities: WOL }), converged(), OPTIONS), {
    kind: 'power-off-by-hand',
    by: 'os',
    reason: 'role off keeps the host off; bld-003 cannot be powered off remotely (Wake-on-LAN): shut it down from its OS or by hand',
  });
  assert.deepEqual(decide(desired({ power: 'off', capabilities: MANUAL }), converged(), OPTIONS), {
    kind: 'power-off-by-hand',
    by: 'operator',
    reason: 'power: off declared; the operator is asked to power bld-003 off',
  });
});

test('decide: the Redfish/OA inventory facts refuse a role: cpus and disks as well as memory', () => {
  const ready = observed({ phase: 'Ready', inventory: { cpus: 1, memoryGiB: 64, disks: 0, diskGB: 0, macs: '52:54:00:aa:00:01' } });
  assert.equal(decide(desired({ enrollable: true, requires: { cpus: 2 } }), ready, OPTIONS).reason, 'role talos-worker needs cpus >= 2 but the BMC of bld-003 reports 1');
  assert.equal(decide(desired({ enrollable: true, requires: { disks: 1 } }), ready, OPTIONS).reason, 'role talos-worker needs disks >= 1 but the BMC of bld-003 reports 0');
  assert.equal(decide(desired({ enrollable: true, requires: { memoryGiB: 64, cpus: 1 } }), ready, OPTIONS).kind, 'provision');
});

test('a provisioning of a host whose BMC keeps no Once says so, with what forseti does about it', () => {
  const action = decide(desired({ role: 'slurm-compute', digest: 'd3' }), converged({ bmc: { bootOnce: false, holds: 'disk' } }), OPTIONS);
  assert.equal(action.kind, 'provision');
  assert.equal(action.reason, 'reprovision from role talos-worker to slurm-compute; its BMC keeps no one-time boot override: PXE for every boot until it is installed, then the disk');
});
