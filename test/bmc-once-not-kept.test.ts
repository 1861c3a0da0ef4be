// A BMC that keeps no one-time boot override (the "Once not kept" personality): the executor provisions it with PXE
// for every boot and records that, `decide` sets the boot back to the disk once the host is installed, and the status
// file carries what was found out, for `forseti plan` to read back.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Executor } from '../src/bmc/executor.ts';
import { HostTracker } from '../src/observe/host-tracker.ts';
import { CommandQueue } from '../src/bmc/command-queue.ts';
import { BmcGate } from '../src/bmc/gate.ts';
import { createRedfishDriver } from '../src/bmc/redfish-driver.ts';
import { createLogger } from '../src/log.ts';
import { Journal } from '../src/observe/journal.ts';
import { applyEvent } from '../src/core/host-lifecycle.ts';
import { decide } from '../src/plan/decide.ts';
import { observedFromStatus } from '../src/status/observed-from-status.ts';
import type { DesiredHost } from '../src/core/host-state.ts';
import { nextHostStatus, parseHostStatus, renderHostStatus } from '../src/status/index.ts';
import { startRedfishBmc } from './fixtures/redfish/bmc.ts';
import { personality } from './fixtures/redfish/personalities/index.ts';

const log = createLogger({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const OPTIONS = { now: Date.now(), provisionTimeoutMs: 600_000, stepTimeoutMs: 120_000 };
const host: DesiredHost = { name: 'kv-1', role: 'worker', boot: 'image', power: 'on', afterInstall: 'disk', digest: 'd1', revision: 'r1', enrollable: true };

describe('a BMC that keeps no one-time boot override', () => {
  it('is provisioned with PXE for every boot, set back to the disk once installed, and asked for Continuous next time', async () => {
    const p = personality('once-not-kept');
    const bmc = await startRedfishBmc({ resources: p.resources(), behaviour: p.behaviour });
    const driver = createRedfishDriver(
      { host: 'kv-1', address: bmc.address, port: bmc.port, username: bmc.username, password: bmc.password, firmware: 'bios' },
      { scheme: 'http', queue: new CommandQueue({ minIntervalMs: 0 }), gate: new BmcGate(), sleep: async () => undefined, powerPoll: { attempts: 5, intervalMs: 1 } },
    );
    const dir = await mkdtemp(join(tmpdir(), 'fbmc-once-'));
    dirs.push(dir);
    try {
      const tracker = new HostTracker(new Journal(join(dir, 'journal.json')), log);
      const executor = new Executor(tracker, () => driver, () => 'bios', log);
      const boot = () => bmc.resource('/redfish/v1/Systems/1')['Boot'] as Record<string, string>;
      const run = async (kind: string): Promise<void> => {
        const action = decide(host, tracker.get('kv-1'), OPTIONS);
        assert.equal(action.kind, kind, action.reason);
        executor.run(host, action);
        await executor.idle();
      };

      await run('enroll');
      await run('provision');
      let state = tracker.get('kv-1');
      assert.equal(state.phase, 'Provisioning', JSON.stringify(state.lastError));
      assert.equal(state.step, 'power-cycled');
      assert.deepEqual(state.bmc, { bootOnce: false, holds: 'pxe' });
      assert.deepEqual([boot()['BootSourceOverrideTarget'], boot()['BootSourceOverrideEnabled'], boot()['BootSourceOverrideMode']], ['Pxe', 'Continuous', 'Legacy']);

      await tracker.record('kv-1', { kind: 'phone-home', role: 'worker' });
      assert.equal(tracker.get('kv-1').phase, 'Converged');
      await run('boot-disk');
      state = tracker.get('kv-1');
      assert.deepEqual(state.bmc, { bootOnce: false, holds: 'disk' });
      assert.deepEqual([boot()['BootSourceOverrideTarget'], boot()['BootSourceOverrideEnabled']], ['Hdd', 'Continuous']);
      assert.equal(decide(host, state, OPTIONS).kind, 'none');

      // A new role: the BMC is known now, so PXE for every boot is asked for at once (one PATCH, Continuous).
      const patchesBefore = bmc.requests.filter((r) => r.method === 'PATCH').length;
      const next = { ...host, role: 'worker2', digest: 'd2' };
      const action = decide(next, state, OPTIONS);
      assert.match(action.reason, /its BMC keeps no one-time boot override/);
      executor.run(next, action);
      await executor.idle();
      const patches = bmc.requests.filter((r) => r.method === 'PATCH').slice(patchesBefore);
      assert.deepEqual(patches.map((r) => (r.body as { Boot: Record<string, string> }).Boot['BootSourceOverrideEnabled']), ['Continuous']);
      assert.deepEqual(tracker.get('kv-1').bmc, { bootOnce: false, holds: 'pxe' });
    } finally {
      await driver.close();
      await bmc.close();
    }
  });

  it('a boot write kept only in part fails the provisioning; the status says the write was undone and what the BMC holds', async () => {
    const bmc = await startRedfishBmc({ resources: personality('bmcweb').resources(), behaviour: { bootOverride: 'mode-only', etag: false } });
    const driver = createRedfishDriver(
      { host: 'kv-2', address: bmc.address, port: bmc.port, username: bmc.username, password: bmc.password, firmware: 'bios' },
      { scheme: 'http', queue: new CommandQueue({ minIntervalMs: 0 }), gate: new BmcGate(), sleep: async () => undefined },
    );
    const dir = await mkdtemp(join(tmpdir(), 'fbmc-undo-'));
    dirs.push(dir);
    try {
      const tracker = new HostTracker(new Journal(join(dir, 'journal.json')), log);
      const executor = new Executor(tracker, () => driver, () => 'bios', log);
      const host2 = { ...host, name: 'kv-2', enrollable: false };
      executor.run(host2, decide(host2, tracker.get('kv-2'), OPTIONS));
      await executor.idle();
      const state = tracker.get('kv-2');
      assert.equal(state.phase, 'Failed');
      assert.equal(state.lastError?.step, 'boot-override');
      assert.match(state.lastError?.message ?? '', /wrote Pxe\/Once\/Legacy, read back None\/Disabled\/Legacy .*; undone: the BMC holds None\/Disabled\/UEFI again/);
      assert.equal(bmc.requests.filter((r) => r.path.endsWith('ComputerSystem.Reset')).length, 0, 'no power cycle after a boot write that was not kept');
      const status = nextHostStatus('kv-2', null, { role: 'worker', phase: state.phase, lastError: { message: state.lastError!.message, step: 'boot-override' } });
      assert.match(renderHostStatus(status), /undone: the BMC holds None\/Disabled\/UEFI again/);
    } finally {
      await driver.close();
      await bmc.close();
    }
  });

  it('a failed set-back is retried later; the host stays converged', () => {
    const converged = { phase: 'Converged' as const, since: 1, appliedRole: 'worker', appliedDigest: 'd1', bmc: { bootOnce: false as const, holds: 'pxe' as const } };
    const failed = applyEvent(converged, { kind: 'bmc-boot', retryAt: 5000, message: 'boot back to disk: unreachable' }, 2);
    assert.equal(failed.phase, 'Converged');
    assert.deepEqual(failed.bmc, { bootOnce: false, holds: 'pxe', retryAt: 5000 });
    assert.equal(decide(host, failed, { ...OPTIONS, now: 4000 }).kind, 'wait');
    assert.equal(decide(host, failed, { ...OPTIONS, now: 6000 }).kind, 'boot-disk');
    assert.deepEqual(applyEvent(failed, { kind: 'bmc-boot', holds: 'disk' }, 3).bmc, { bootOnce: false, holds: 'disk' });
  });

  it('the status file carries it, and the plan reads it back from there', () => {
    const status = nextHostStatus('kv-1', null, { role: 'worker', phase: 'Converged', revision: 'r1', bmc: { bootOnce: false, holds: 'disk' } }, new Date(0));
    const text = renderHostStatus(status);
    assert.match(text, /^bmc:\n {2}bootOnce: false\n {2}holds: disk$/m);
    const parsed = parseHostStatus(text);
    assert.deepEqual(parsed.bmc, { bootOnce: false, holds: 'disk' });
    assert.deepEqual(parseHostStatus(text.replace('holds: disk', 'holds: floppy')).bmc, { bootOnce: false }, 'an unknown value is left out');
    const observed = observedFromStatus({ description: 'status', at: 0, hosts: new Map([['kv-1', parsed]]), renderedAt: () => undefined, base: null });
    assert.deepEqual(observed.hosts.get('kv-1')?.bmc, { bootOnce: false, holds: 'disk' });
  });
});
