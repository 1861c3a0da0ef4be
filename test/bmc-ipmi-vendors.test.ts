// The IPMI driver against OpenIPMI's ipmi_sim shaped like the BMCs of the seed lab: cipher suite 17 refused (ipmi_sim
// has no SHA-256 algorithms) and 3 taken; boot option parameter 0 "set in progress" left behind by another tool (the
// boot-options.c module implements it as the IPMI specification does, with rollback); an IBM IMM and an HP iLO by their
// IANA numbers, keeping all boot flags as real BMCs do.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { CommandQueue } from '../src/bmc/command-queue.ts';
import { BmcAuthError, BootOnceNotKeptError } from '../src/bmc/driver.ts';
import type { BmcTarget } from '../src/bmc/driver.ts';
import { createIpmiDriver } from '../src/bmc/ipmi-driver.ts';
import type { IpmiDriverOptions } from '../src/bmc/ipmi-driver.ts';
import { recordingIpmitool, startFakeBmc } from './fixtures/ipmi/support.ts';
import type { FakeBmc } from './fixtures/ipmi/support.ts';

const FAST: IpmiDriverOptions = { powerPoll: { attempts: 50, intervalMs: 100 }, ipmitool: { retries: 0, retryDelayMs: 0 }, setInProgressPoll: { attempts: 2, intervalMs: 20 } };
const running: FakeBmc[] = [];
after(async () => {
  for (const b of running) await b.stop();
});

function targetOf(bmc: FakeBmc, extra: Partial<BmcTarget> = {}): BmcTarget {
  return { host: 'oden', address: bmc.sim.address, port: bmc.sim.port, username: bmc.sim.user, password: bmc.sim.password, ...extra };
}

function ipmitoolRaw(bmc: FakeBmc, ...command: string[]): Promise<string> {
  const args = ['-I', 'lanplus', '-C', '3', '-H', bmc.sim.address, '-p', String(bmc.sim.port), '-U', bmc.sim.user, '-E', ...command];
  return new Promise((resolve, reject) =>
    execFile('ipmitool', args, { env: { ...process.env, IPMI_PASSWORD: bmc.sim.password } }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))),
  );
}

describe('IPMI cipher suites: 17, else 3', () => {
  let bmc: FakeBmc;
  before(async () => {
    bmc = await startFakeBmc('cipher');
    running.push(bmc);
  });

  it('tries 17 first, takes 3 when the BMC refuses 17, and stays with 3', async () => {
    const ipmitool = await recordingIpmitool(bmc.workDir);
    const driver = createIpmiDriver(targetOf(bmc), { ...FAST, queue: new CommandQueue({ minIntervalMs: 0 }), ipmitool: { ...FAST.ipmitool, binary: ipmitool.binary } });
    await driver.powerOn();
    assert.equal(await driver.powerState(), 'on');
    assert.equal(driver.cipherSuite(), 3);
    const suites = (await ipmitool.windows()).map((w) => /-C (\d+)/.exec(w.argv)?.[1]);
    assert.deepEqual(suites.slice(0, 2), ['17', '3'], 'one refused attempt with 17, then 3');
    assert.ok(suites.slice(2).every((s) => s === '3'), `later commands use 3 only: ${suites.join(' ')}`);
  });

  it('a suite the lab names is the only one tried; its refusal says which suite', async () => {
    const driver = createIpmiDriver(targetOf(bmc, { cipherSuite: 17 }), { ...FAST, queue: new CommandQueue({ minIntervalMs: 0 }) });
    const err = await driver.powerState().catch((e: unknown) => e);
    assert.ok(err instanceof BmcAuthError, String(err));
    assert.match(err.message, /invalid authentication algorithm \(cipher suite 17\)/);
  });

  it('a wrong password is not taken for a cipher problem: no fallback past the credentials', async () => {
    const driver = createIpmiDriver(targetOf(bmc, { password: 'not-the-password-x1' }), { ...FAST, queue: new CommandQueue({ minIntervalMs: 0 }) });
    const err = await driver.powerState().catch((e: unknown) => e);
    assert.ok(err instanceof BmcAuthError, String(err));
    assert.doesNotMatch(err.message, /not-the-password-x1/);
    assert.match(err.message, /17: invalid authentication algorithm|RAKP|unauthorized/);
  });
});

describe('IPMI boot option parameter 0, set in progress', () => {
  it('left claimed by another tool, a plain ipmitool bootdev "succeeds" and keeps nothing (the rollback of the spec)', async () => {
    const bmc = await startFakeBmc('sip-plain', { bootOptions: ['in-progress', 'keep-flags'] });
    running.push(bmc);
    assert.match(await ipmitoolRaw(bmc, 'chassis', 'bootparam', 'get', '0'), /Set In Progress : set in progress/);
    assert.match(await ipmitoolRaw(bmc, 'chassis', 'bootdev', 'pxe'), /Set Boot Device to pxe/);
    assert.match(await ipmitoolRaw(bmc, 'chassis', 'bootparam', 'get', '5'), /Boot Device Selector : No override/);
  });

  it('the driver waits for the claim to end, clears one that outlasts the wait, then writes and reads the flags back', async () => {
    const bmc = await startFakeBmc('sip-imm', { bootOptions: ['in-progress', 'keep-flags'], manufacturerId: 2 });
    running.push(bmc);
    const ipmitool = await recordingIpmitool(bmc.workDir);
    const driver = createIpmiDriver(targetOf(bmc, { cipherSuite: 3 }), { ...FAST, queue: new CommandQueue({ minIntervalMs: 0 }), ipmitool: { ...FAST.ipmitool, binary: ipmitool.binary } });
    await driver.setBootOverride({ device: 'pxe', persistent: false, mode: 'uefi' });
    const calls = (await ipmitool.windows()).map((w) => w.argv.replace(/^.* -E /, ''));
    const gets = calls.filter((c) => c === 'chassis bootparam get 0').length;
    assert.equal(gets, 3, `asked three times (the bound is 2 pauses): ${calls.join(' | ')}`);
    const clear = calls.indexOf('raw 0x00 0x08 0x00 0x00');
    const write = calls.findIndex((c) => c.startsWith('chassis bootdev pxe'));
    assert.ok(clear >= 0 && write > clear, `cleared, then written: ${calls.join(' | ')}`);
    assert.deepEqual(await driver.getBootOverride(), { device: 'pxe', persistent: false, mode: 'uefi' }, 'an IBM BMC keeps all the flags');
    assert.match(await ipmitoolRaw(bmc, 'chassis', 'bootparam', 'get', '0'), /set complete/, 'ipmitool committed and completed its own claim');
    assert.equal(await bmc.chassis('boot'), 'pxe');
  });

  it('a BMC without parameter 0 (ipmi_sim alone) is asked once, then no more', async () => {
    const bmc = await startFakeBmc('sip-none');
    running.push(bmc);
    const ipmitool = await recordingIpmitool(bmc.workDir);
    const driver = createIpmiDriver(targetOf(bmc, { cipherSuite: 3 }), { ...FAST, queue: new CommandQueue({ minIntervalMs: 0 }), ipmitool: { ...FAST.ipmitool, binary: ipmitool.binary } });
    await driver.setBootOverride({ device: 'pxe', persistent: false });
    await driver.setBootOverride({ device: 'disk', persistent: false });
    const gets = (await ipmitool.windows()).filter((w) => w.argv.endsWith('chassis bootparam get 0')).length;
    assert.equal(gets, 1);
    assert.equal(await bmc.chassis('boot'), 'default');
  });
});

describe("the seed lab's IPMI BMCs by their IANA numbers", () => {
  for (const [name, manufacturerId, manufacturer] of [['oden-imm', 2, /^IBM/], ['bld-ilo4', 11, /^Hewlett-Packard|^HP/]] as const) {
    it(`${name}: identity from mc info, all boot flags read back, no DCMI reading asked twice`, async () => {
      const bmc = await startFakeBmc(name, { bootOptions: ['keep-flags'], manufacturerId });
      running.push(bmc);
      const ipmitool = await recordingIpmitool(bmc.workDir);
      const driver = createIpmiDriver(targetOf(bmc), { ...FAST, queue: new CommandQueue({ minIntervalMs: 0 }), ipmitool: { ...FAST.ipmitool, binary: ipmitool.binary } });
      assert.match((await driver.inventory()).manufacturer ?? '', manufacturer);
      await driver.setBootOverride({ device: 'pxe', persistent: true, mode: 'bios' });
      assert.deepEqual(await driver.getBootOverride(), { device: 'pxe', persistent: true, mode: 'bios' });
      assert.equal(await driver.powerDraw(), null);
      assert.equal(await driver.powerDraw(), null);
      assert.equal((await ipmitool.windows()).filter((w) => w.argv.includes('dcmi power reading')).length, 1);
    });
  }
});

describe('an IPMI BMC that keeps no one-time override', () => {
  it('is BootOnceNotKeptError with what it holds, as on Redfish: the agent then provisions with PXE for every boot', async () => {
    const bmc = await startFakeBmc('once-ipmi', { bootOptions: ['keep-flags', 'once-as-persistent'], manufacturerId: 11 });
    running.push(bmc);
    const driver = createIpmiDriver(targetOf(bmc, { cipherSuite: 3 }), { ...FAST, queue: new CommandQueue({ minIntervalMs: 0 }) });
    const err = await driver.setBootOverride({ device: 'pxe', persistent: false, mode: 'bios' }).catch((e: unknown) => e);
    assert.ok(err instanceof BootOnceNotKeptError, String(err));
    assert.deepEqual(err.holds, { device: 'pxe', persistent: true, mode: 'bios' });
    assert.match(err.message, /asked for pxe once bios, BMC reports "Force PXE", flag valid, all future boots, legacy: this BMC keeps no one-time boot override/);
    await driver.setBootOverride({ device: 'disk', persistent: true, mode: 'bios' });
    assert.deepEqual(await driver.getBootOverride(), { device: 'disk', persistent: true, mode: 'bios' });
  });
});
