// The executor between `decide` and the drivers: inventories of every driver kind become the observed facts that
// role requirements are checked against, and hosts whose driver cannot power off are handed to a human once.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Executor, toObservedInventory } from '../src/bmc/executor.ts';
import { HostTracker } from '../src/observe/host-tracker.ts';
import { ManualDriver } from '../src/bmc/manual-driver.ts';
import { capabilitiesOfType } from '../src/core/capabilities.ts';
import { CommandQueue } from '../src/bmc/command-queue.ts';
import type { BmcDriver } from '../src/bmc/driver.ts';
import { BmcGate } from '../src/bmc/gate.ts';
import { createRedfishDriver } from '../src/bmc/redfish-driver.ts';
import { createWolDriver } from '../src/bmc/wol-driver.ts';
import { createLogger } from '../src/log.ts';
import { Journal } from '../src/observe/journal.ts';
import { decide } from '../src/plan/decide.ts';
import type { DesiredHost } from '../src/core/host-state.ts';
import { startRedfishBmc } from './fixtures/redfish/bmc.ts';
import { syntheticBmc } from './fixtures/redfish/resources.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const log = createLogger({ level: 'silent' });
const OPTIONS = { now: Date.now(), provisionTimeoutMs: 600_000, stepTimeoutMs: 120_000 };

async function setup(driver: BmcDriver): Promise<{ tracker: HostTracker; executor: Executor }> {
  const dir = await mkdtemp(join(tmpdir(), 'forseti-executor-'));
  dirs.push(dir);
  const tracker = new HostTracker(new Journal(join(dir, 'journal.json')), log);
  const executor = new Executor(tracker, () => driver, () => 'uefi', log);
  return { tracker, executor };
}

function desired(over: Partial<DesiredHost> = {}): DesiredHost {
  return { name: 'rf-1', role: 'ceph-osd', boot: 'image', power: 'on', afterInstall: 'disk', digest: 'd1', revision: 'r1', enrollable: true, ...over };
}

describe('toObservedInventory', () => {
  it('flattens what every driver reports: sockets, memory, drives, MACs', () => {
    assert.deepEqual(
      toObservedInventory({
        manufacturer: 'HPE', model: 'ProLiant DL360 Gen10', serialNumber: 'CZ1', bmcFirmware: 'iLO 5 2.72',
        processors: { count: 2, model: 'Xeon Gold 6230' }, memoryGiB: 191.99999, storage: [{ capacityBytes: 480e9 }, { capacityBytes: 4e12, name: 'Disk 1' }],
        macs: ['52:54:00:aa:00:01', '52:54:00:aa:00:02'], managementAddress: '10.77.1.102',
      }),
      {
        manufacturer: 'HPE', model: 'ProLiant DL360 Gen10', serialNumber: 'CZ1', bmcFirmware: 'iLO 5 2.72', cpus: 2, cpuModel: 'Xeon Gold 6230',
        memoryGiB: 192, disks: 2, diskGB: 4480, macs: '52:54:00:aa:00:01,52:54:00:aa:00:02', managementAddress: '10.77.1.102',
      },
    );
    assert.deepEqual(toObservedInventory({ manufacturer: 'MontaVista', bmcFirmware: '9.08' }), { manufacturer: 'MontaVista', bmcFirmware: '9.08' }, 'IPMI: what it does not report stays absent');
    assert.deepEqual(toObservedInventory({ storage: [] }), { disks: 0, diskGB: 0 }, 'a BMC that lists no drive reports zero drives');
  });
});

describe('Executor', () => {
  it('enrols a Redfish host with its processors, memory, drives and MACs; the role is checked against them', async () => {
    const bmc = await startRedfishBmc({ resources: syntheticBmc() });
    const driver = createRedfishDriver(
      { host: 'rf-1', address: bmc.address, port: bmc.port, username: bmc.username, password: bmc.password },
      { scheme: 'http', queue: new CommandQueue({ minIntervalMs: 0 }), gate: new BmcGate({ maxConcurrent: 2 }), sleep: async () => undefined },
    );
    try {
      const { tracker, executor } = await setup(driver);
      const host = desired({ requires: { cpus: 2, memoryGiB: 128, disks: 3 } });
      executor.run(host, decide(host, tracker.get('rf-1'), OPTIONS));
      await executor.idle();
      const state = tracker.get('rf-1');
      assert.equal(state.phase, 'Ready');
      assert.deepEqual(
        { cpus: state.inventory?.cpus, memoryGiB: state.inventory?.memoryGiB, disks: state.inventory?.disks, diskGB: state.inventory?.diskGB, macs: state.inventory?.macs },
        { cpus: 2, memoryGiB: 192, disks: 2, diskGB: 4480, macs: '52:54:00:aa:00:01,52:54:00:aa:00:02' },
      );
      assert.deepEqual(decide(host, state, OPTIONS), { kind: 'refuse', reason: 'role ceph-osd needs disks >= 3 but the BMC of rf-1 reports 2' });
      assert.equal(decide({ ...host, requires: { cpus: 4 } }, state, OPTIONS).reason, 'role ceph-osd needs cpus >= 4 but the BMC of rf-1 reports 2');
      assert.equal(decide({ ...host, requires: { cpus: 2, memoryGiB: 128, disks: 2 } }, state, OPTIONS).kind, 'provision');
    } finally {
      await driver.close();
      await bmc.close();
    }
  });

  it('a Wake-on-LAN host declared off is handed to a human once: no power-off tried, no failure, no retry', async () => {
    const wol = createWolDriver({ host: 'wol-1', mac: '02:00:00:00:00:09', broadcast: '127.255.255.255', port: 9 });
    let tried = 0;
    const driver: BmcDriver = new Proxy(wol, {
      get: (target, prop) => (prop === 'powerOff' ? async () => void tried++ : Reflect.get(target, prop, target)),
    });
    const { tracker, executor } = await setup(driver);
    const host = desired({ name: 'wol-1', role: 'off', boot: 'off', enrollable: false, capabilities: { ...capabilitiesOfType('wol') } });
    await tracker.record('wol-1', { kind: 'provision-started', role: 'worker', digest: 'd0', revision: 'r0' });
    await tracker.record('wol-1', { kind: 'phone-home', role: 'worker' });
    const action = decide(host, tracker.get('wol-1'), OPTIONS);
    assert.equal(action.kind, 'power-off-by-hand');
    executor.run(host, action);
    await executor.idle();
    assert.equal(tried, 0, 'Wake-on-LAN is never asked to power off');
    const state = tracker.get('wol-1');
    assert.equal(state.phase, 'Off');
    assert.equal(state.lastError, undefined);
    assert.equal(decide(host, state, OPTIONS).kind, 'none', 'asked once, never again');
    assert.equal(decide({ ...host, role: 'worker', boot: 'image', digest: 'd0' }, { ...state, appliedDigest: 'd0' }, OPTIONS).kind, 'power-on', 'back on: woken');
  });

  it('a manual host declared off: the operator is told, in the log and through the instruction callback', async () => {
    const told: string[] = [];
    const driver = new ManualDriver('hand-1', log, { onInstruction: (i) => told.push(i.text) });
    const { tracker, executor } = await setup(driver);
    const host = desired({ name: 'hand-1', power: 'off', enrollable: false, capabilities: { ...capabilitiesOfType('manual') } });
    const action = decide(host, tracker.get('hand-1'), OPTIONS);
    assert.deepEqual(action, { kind: 'power-off-by-hand', by: 'operator', reason: 'power: off declared; the operator is asked to power hand-1 off' });
    executor.run(host, action);
    await executor.idle();
    assert.deepEqual(told, ['power the machine off']);
    assert.equal(tracker.get('hand-1').phase, 'Off');
  });

  it('each provisioning and wipe starts with a fresh nonce in the journal, before the power is touched', async () => {
    const { tracker, executor } = await setup(new ManualDriver('hand-2', log));
    const host = desired({ name: 'hand-2', enrollable: false, wipeToken: 'w1' });
    const nonces: string[] = [];
    for (const action of [{ kind: 'provision', reason: 'a' }, { kind: 'provision', reason: 'b' }, { kind: 'wipe', reason: 'c' }] as const) {
      executor.run(host, action);
      await executor.idle();
      nonces.push(tracker.get('hand-2').attemptNonce ?? '');
    }
    assert.ok(nonces.every((n) => /^[0-9a-f]{32}$/.test(n)), nonces.join());
    assert.equal(new Set(nonces).size, 3);
  });
});
