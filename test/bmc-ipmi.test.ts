// The IPMI driver against OpenIPMI's ipmi_sim (a real IPMI v2 BMC) with fake-chassis.sh as the machine.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CommandQueue } from '../src/bmc/command-queue.ts';
import { BmcAuthError, BmcUnreachableError, BootOverrideNotAppliedError } from '../src/bmc/driver.ts';
import type { BmcTarget } from '../src/bmc/driver.ts';
import { BmcState } from '../src/bmc/bmc-state.ts';
import { createIpmiDriver } from '../src/bmc/ipmi-driver.ts';
import type { IpmiDriverOptions } from '../src/bmc/ipmi-driver.ts';
import { startIpmiSim } from './fixtures/ipmi-sim.ts';
import { FAKE_CHASSIS, freeUdpPort, recordingIpmitool, startFakeBmc } from './fixtures/ipmi/support.ts';
import type { FakeBmc } from './fixtures/ipmi/support.ts';

const FAST: IpmiDriverOptions = { powerPoll: { attempts: 50, intervalMs: 100 }, ipmitool: { retries: 0, retryDelayMs: 0 } };

function targetOf(bmc: FakeBmc, extra: Partial<BmcTarget> = {}): BmcTarget {
  return { host: 'node1', address: bmc.sim.address, port: bmc.sim.port, username: bmc.sim.user, password: bmc.sim.password, ...extra };
}

function driverFor(bmc: FakeBmc, extra: Partial<BmcTarget> = {}, opts: IpmiDriverOptions = {}) {
  return createIpmiDriver(targetOf(bmc, extra), { ...FAST, queue: new CommandQueue({ minIntervalMs: 0 }), ...opts });
}

/** Chassis calls made while `action` ran. */
async function callsDuring(bmc: FakeBmc, action: () => Promise<unknown>): Promise<string[]> {
  const before = (await bmc.chassisCalls()).length;
  await action();
  return (await bmc.chassisCalls()).slice(before);
}

describe('IPMI driver against ipmi_sim', () => {
  let bmc: FakeBmc;
  before(async () => {
    bmc = await startFakeBmc('node1');
  });
  after(async () => {
    await bmc.stop();
  });

  it('powers on and off and reads the state back', async () => {
    const driver = driverFor(bmc);
    await driver.powerOff();
    assert.equal(await driver.powerState(), 'off');
    assert.equal(await bmc.chassis('power'), '0');
    await driver.powerOn();
    assert.equal(await driver.powerState(), 'on');
    assert.equal(await bmc.chassis('power'), '1');
  });

  it('power cycle of a running host goes off, then on', async () => {
    const driver = driverFor(bmc);
    await driver.powerOn();
    const calls = await callsDuring(bmc, () => driver.powerCycle());
    const sets = calls.filter((c) => c.startsWith('set power'));
    assert.deepEqual(sets, ['set power 0', 'set power 1']);
    assert.equal(await driver.powerState(), 'on');
  });

  it('power cycle of a host that is off just powers it on', async () => {
    const driver = driverFor(bmc);
    await driver.powerOff();
    const calls = await callsDuring(bmc, () => driver.powerCycle());
    assert.deepEqual(calls.filter((c) => c.startsWith('set power')), ['set power 1']);
    assert.equal(await driver.powerState(), 'on');
  });

  it('soft off presses the ACPI button and waits for off', async () => {
    const driver = driverFor(bmc);
    await driver.powerOn();
    const calls = await callsDuring(bmc, () => driver.softOff());
    assert.ok(calls.includes('set shutdown 1'));
    assert.equal(await driver.powerState(), 'off');
  });

  it('sets boot overrides and reads them back: pxe once, disk, none', async () => {
    const driver = driverFor(bmc);
    await driver.setBootOverride({ device: 'pxe', persistent: false });
    assert.equal(await bmc.chassis('boot'), 'pxe');
    assert.equal((await driver.getBootOverride())?.device, 'pxe');

    await driver.setBootOverride({ device: 'disk', persistent: true });
    assert.equal(await bmc.chassis('boot'), 'default');
    assert.equal((await driver.getBootOverride())?.device, 'disk');

    await driver.setBootOverride({ device: 'none', persistent: false });
    assert.equal(await bmc.chassis('boot'), 'none');
    assert.equal(await driver.getBootOverride(), null);
  });

  it('asks for UEFI boot (from the override or the target firmware) and reads the device back', async () => {
    const ipmitool = await recordingIpmitool(bmc.workDir);
    const driver = driverFor(bmc, { firmware: 'uefi' }, { ipmitool: { ...FAST.ipmitool, binary: ipmitool.binary } });
    await driver.setBootOverride({ device: 'pxe', persistent: true });
    await driver.setBootOverride({ device: 'disk', persistent: false, mode: 'uefi' });
    const bootdevs = (await ipmitool.windows()).map((w) => w.argv).filter((a) => a.includes('bootdev'));
    assert.ok(bootdevs[0]?.endsWith('chassis bootdev pxe options=efiboot,persistent'), bootdevs[0]);
    assert.ok(bootdevs[1]?.endsWith('chassis bootdev disk options=efiboot'), bootdevs[1]);
    assert.equal((await driver.getBootOverride())?.device, 'disk');
  });

  it('ipmi_sim keeps only the boot device: a driver that expects all flags kept sees the loss', async () => {
    const driver = driverFor(bmc, {}, { bootFlags: 'kept' });
    await assert.rejects(driver.setBootOverride({ device: 'pxe', persistent: true, mode: 'uefi' }), (err: unknown) => {
      assert.ok(err instanceof BootOverrideNotAppliedError);
      assert.match(err.message, /node1/);
      assert.match(err.message, /flag invalid/);
      return true;
    });
  });

  it('a chassis that rejects the boot device makes setBootOverride throw BootOverrideNotAppliedError', async () => {
    const driver = driverFor(bmc);
    await driver.setBootOverride({ device: 'disk', persistent: false });
    await bmc.fault('fail-set-boot', true);
    try {
      await assert.rejects(driver.setBootOverride({ device: 'pxe', persistent: false }), (err: unknown) => {
        assert.ok(err instanceof BootOverrideNotAppliedError);
        assert.match(err.message, /host node1/);
        assert.match(err.message, /rejected the write/);
        return true;
      });
      assert.equal(await bmc.chassis('boot'), 'default');
    } finally {
      await bmc.fault('fail-set-boot', false);
    }
  });

  it('a chassis that silently drops the boot device is caught by the read-back', async () => {
    const driver = driverFor(bmc);
    await driver.setBootOverride({ device: 'disk', persistent: false });
    await bmc.fault('ignore-set-boot', true);
    try {
      await assert.rejects(driver.setBootOverride({ device: 'pxe', persistent: false }), BootOverrideNotAppliedError);
    } finally {
      await bmc.fault('ignore-set-boot', false);
    }
  });

  it('a wrong password is a BmcAuthError that never shows the password', async () => {
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const driver = driverFor(bmc, { password: wrong });
    const err = await driver.powerState().then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof BmcAuthError, String(err));
    assert.match(err.message, /node1/);
    assert.match(err.message, /127\.0\.0\.1/);
    for (let e: unknown = err; e instanceof Error; e = e.cause) {
      assert.ok(!`${e.message}\n${e.stack}\n${JSON.stringify(e)}`.includes(wrong), 'password leaked into an error');
    }
  });

  it('nobody answering is a BmcUnreachableError after the retries', async () => {
    const port = await freeUdpPort();
    const driver = createIpmiDriver(
      { host: 'ghost', address: '127.0.0.1', port, username: 'admin', password: 'vlabpass' },
      { queue: new CommandQueue({ minIntervalMs: 0 }), ipmitool: { retries: 1, retryDelayMs: 0, lanTimeoutS: 1, lanRetries: 1 } },
    );
    await assert.rejects(driver.powerState(), (err: unknown) => {
      assert.ok(err instanceof BmcUnreachableError, String(err));
      assert.match(err.message, /host ghost/);
      assert.match(err.message, /2 attempt/);
      assert.ok(!err.message.includes('vlabpass'));
      return true;
    });
  });

  it('never has two commands in flight to one BMC, also across driver instances', async () => {
    const ipmitool = await recordingIpmitool(bmc.workDir);
    // No explicit queue: both drivers get this BMC's queue in their owner's BMC state, as the agent's drivers do.
    const opts: IpmiDriverOptions = { ...FAST, state: new BmcState(), minIntervalMs: 0, ipmitool: { ...FAST.ipmitool, binary: ipmitool.binary } };
    const a = createIpmiDriver(targetOf(bmc), opts);
    const b = createIpmiDriver(targetOf(bmc), opts);
    const before = (await ipmitool.windows()).length;
    await Promise.all([a.powerState(), b.powerState(), a.getBootOverride(), b.inventory(), a.powerOn(), b.powerState()]);
    const windows = (await ipmitool.windows()).slice(before).sort((x, y) => (x.start < y.start ? -1 : 1));
    assert.ok(windows.length >= 6);
    for (let i = 1; i < windows.length; i++) {
      assert.ok(windows[i]!.start >= windows[i - 1]!.end, `ipmitool runs overlap: ${windows[i - 1]!.argv} / ${windows[i]!.argv}`);
    }
    assert.ok(windows.every((w) => !w.argv.includes(bmc.sim.password) && w.argv.includes(' -E ')));
  });

  it('reports inventory from mc info and no power draw when DCMI is missing', async () => {
    const driver = driverFor(bmc);
    const inventory = await driver.inventory();
    assert.equal(inventory.manufacturer, 'MontaVista Software, Inc.');
    assert.equal(inventory.bmcFirmware, '9.08');
    assert.equal(await driver.powerDraw(), null);
  });
});

describe('ipmi_sim inside a network namespace', () => {
  const netns = `fipmi-${randomBytes(4).toString('hex')}`;
  let created = false;
  before(() => {
    try {
      execFileSync('ip', ['netns', 'add', netns], { stdio: 'ignore' });
      created = true;
      execFileSync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
      execFileSync('ip', ['-n', netns, 'addr', 'add', '10.77.0.241/32', 'dev', 'lo']);
    } catch {
      // no permission for namespaces here: the test below skips
    }
  });
  after(() => {
    if (created) execFileSync('ip', ['netns', 'del', netns]);
  });

  it('is reachable through `ip netns exec`', async (t) => {
    if (!created) return t.skip('cannot create network namespaces');
    const workDir = await mkdtemp(join(tmpdir(), 'fipmi-ns-'));
    const stateDir = join(workDir, 'chassis');
    await mkdir(stateDir);
    const sim = await startIpmiSim({ name: 'nsnode', address: '10.77.0.241', chassisControl: `${FAKE_CHASSIS} ${stateDir}`, workDir, netns });
    try {
      const driver = createIpmiDriver(
        { host: 'nsnode', address: sim.address, port: sim.port, username: sim.user, password: sim.password },
        { ...FAST, queue: new CommandQueue({ minIntervalMs: 0 }), ipmitool: { prefix: ['ip', 'netns', 'exec', netns] } },
      );
      await driver.powerOn();
      assert.equal(await driver.powerState(), 'on');
    } finally {
      await sim.stop();
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
