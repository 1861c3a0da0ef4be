// The IPMI vendor facts (src/bmc/ipmi/vendor-facts.ts) against ipmi_sim personalities of the seed lab's BMCs
// (test/fixtures/ipmi/personalities.ts): the IBM IMM of the x3550 M3 and the HP iLO 4 of the BL460c Gen8. Each test
// checks what went over the wire (ipmitool's arguments) or what the BMC holds, never timing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { BmcState } from '../src/bmc/bmc-state.ts';
import { createIpmiDriver } from '../src/bmc/ipmi-driver.ts';
import type { IpmiDriverOptions } from '../src/bmc/ipmi-driver.ts';
import { GENERIC_FACTS, IANA, vendorFacts, VENDORS } from '../src/bmc/ipmi/vendor-facts.ts';
import { probeBmc } from '../src/bmc/probe.ts';
import { ILO4_BL460C_GEN8, IMM_X3550_M3, VALID_TIMEOUT_MS } from './fixtures/ipmi/personalities.ts';
import type { IpmiPersonality, PersonalityBmc } from './fixtures/ipmi/personalities.ts';
import { startPersonality } from './fixtures/ipmi/personalities.ts';
import { recordingIpmitool } from './fixtures/ipmi/support.ts';

const LAN = { retries: 0, retryDelayMs: 0, lanRetries: 1, lanTimeoutS: 1 };
const running: PersonalityBmc[] = [];
after(async () => {
  for (const b of running) await b.stop();
});

/** A driver on the personality with a recording ipmitool, a settle spy, and the given owner state. */
async function driverOn(p: IpmiPersonality, b: PersonalityBmc, state: BmcState) {
  const ipmitool = await recordingIpmitool(b.bmc.workDir);
  const settles: number[] = [];
  const opts: IpmiDriverOptions = {
    state,
    minIntervalMs: 0,
    powerPoll: { attempts: 50, intervalMs: 100 },
    setInProgressPoll: { attempts: 1, intervalMs: 10 },
    settle: async (ms) => void settles.push(ms),
    ipmitool: { ...LAN, binary: ipmitool.binary },
  };
  const driver = createIpmiDriver({ host: p.id, address: '127.0.0.1', port: b.port, username: p.user, password: p.password }, opts);
  const calls = async (): Promise<string[]> => (await ipmitool.windows()).map((w) => w.argv);
  return { driver, settles, calls };
}

const suitesOf = (argv: string[]): string[] => argv.map((a) => /-C (\d+)/.exec(a)?.[1] ?? '?');
const commandsOf = (argv: string[]): string[] => argv.map((a) => a.replace(/^.* -E (-N \d+ )?(-R \d+ )?(-v )?/, ''));

describe('IPMI vendor facts by manufacturer ID', () => {
  it('IBM 2, HP 11, Lenovo 19046, MontaVista 4753 (ipmi_sim); anything else gets the generic facts', () => {
    assert.equal(vendorFacts(IANA.IBM).id, 'ibm-imm');
    assert.equal(vendorFacts(IANA.HP).id, 'hp-ilo');
    assert.equal(vendorFacts(IANA.LENOVO).id, 'lenovo');
    assert.equal(vendorFacts(IANA.MONTAVISTA).bootFlags, 'device-only');
    assert.equal(vendorFacts(IANA.DELL).id, 'generic');
    assert.equal(vendorFacts(null).id, 'generic');
    assert.equal(vendorFacts(IANA.HP).powerSettleMs, 4000);
    assert.equal(vendorFacts(IANA.IBM).powerSettleMs, 0);
  });

  it('every fact names a source listed in the file header; never below cipher suite 3', () => {
    const header = readFileSync(new URL('../src/bmc/ipmi/vendor-facts.ts', import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).join('\n');
    for (const f of [...GENERIC_FACTS, ...VENDORS.flatMap((v) => v.facts)]) {
      const tags = f.source.match(/\[[a-z0-9-]+\]/g) ?? [];
      assert.ok(tags.length > 0, `no source for: ${f.fact}`);
      for (const t of tags) assert.ok(header.includes(`//   ${t}`), `${t} is not in the sources list`);
    }
    for (const v of VENDORS) assert.ok(v.cipherSuites.every((s) => s >= 3), v.id);
  });
});

describe(`${IMM_X3550_M3.title}: refuses suite 17, keeps every boot flag, ships USERID`, () => {
  let b: PersonalityBmc;
  before(async () => {
    b = await startPersonality(IMM_X3550_M3);
    running.push(b);
  });

  it('is found to be an IMM by its manufacturer ID; 17 refused, 3 taken, and the next driver of this BMC asks 3 at once', async () => {
    const state = new BmcState();
    const first = await driverOn(IMM_X3550_M3, b, state);
    const { vendor, mc } = await first.driver.identify();
    assert.equal(mc.manufacturerId, 2);
    assert.equal(vendor.id, 'ibm-imm');
    assert.deepEqual(first.driver.passedOver().map((p) => p.replace(/:.*/, '')), ['17']);
    assert.match(first.driver.passedOver()[0] ?? '', /invalid authentication algorithm/);
    assert.deepEqual(suitesOf(await first.calls()), ['17', '3']);
    const second = await driverOn(IMM_X3550_M3, b, state);
    await second.driver.powerState();
    assert.deepEqual(suitesOf((await second.calls()).slice(-1)), ['3'], 'no second refusal');
  });

  it('a power cycle of a host that is off is a power on; no settle time (none documented for the IMM)', async () => {
    const { driver, settles, calls } = await driverOn(IMM_X3550_M3, b, new BmcState());
    await driver.powerOff();
    await driver.powerCycle();
    assert.equal(await driver.powerState(), 'on');
    const sent = commandsOf(await calls());
    assert.ok(!sent.includes('chassis power cycle'), sent.join(' | '));
    assert.ok(sent.includes('chassis power on'));
    assert.deepEqual(settles, []);
  });

  it('keeps one-time and persistent overrides, EFI and legacy, as written: read back bit for bit', async () => {
    const { driver } = await driverOn(IMM_X3550_M3, b, new BmcState());
    for (const o of [{ device: 'pxe', persistent: false, mode: 'uefi' }, { device: 'disk', persistent: true, mode: 'bios' }] as const) {
      await driver.setBootOverride(o);
      assert.deepEqual(await driver.getBootOverride(), o);
    }
  });

  it('forseti bmc probe --type ipmi: the vendor, the facts applied with their sources, the factory account named', async () => {
    const report = await probeBmc('127.0.0.1', { type: 'ipmi', port: b.port, credential: { name: 'oden-imm', username: IMM_X3550_M3.user, password: IMM_X3550_M3.password }, ipmitool: LAN });
    assert.equal(report.auth, 'RMCP+ session, cipher suite 3 (17 refused)');
    assert.ok(report.identity.includes('vendor: IBM Integrated Management Module (System x, e.g. x3550 M3) (manufacturer ID 2)'), report.identity.join(' | '));
    assert.ok(report.facts?.some((f) => /factory account USERID.*documented: \[ibm-h194857\]/.test(f)));
    assert.ok(report.facts?.some((f) => /power cycle or reset of a host that is off is sent as power on/.test(f)));
    assert.ok(report.quirks.some((q) => /factory account USERID and its factory password: change the password/.test(q)));
    assert.ok(!JSON.stringify(report).includes(IMM_X3550_M3.password), 'the password is never printed');
  });
});

describe(`${ILO4_BL460C_GEN8.title}: suite 17 unanswered, 4 s after power commands, every boot flag kept`, () => {
  let b: PersonalityBmc;
  before(async () => {
    b = await startPersonality(ILO4_BL460C_GEN8);
    running.push(b);
  });

  it('17 left unanswered on first contact: 3 taken, remembered, and the next driver never asks 17 again', async () => {
    const state = new BmcState();
    const first = await driverOn(ILO4_BL460C_GEN8, b, state);
    assert.equal(await first.driver.powerState(), 'off');
    assert.equal(first.driver.cipherSuite(), 3);
    assert.deepEqual(first.driver.passedOver(), ['17: no answer']);
    assert.ok((b.filter?.dropped() ?? 0) > 0, 'the Open Session Requests for 17 were dropped, not refused');
    assert.equal((await first.driver.identify()).vendor.id, 'hp-ilo');
    const dropped = b.filter?.dropped();
    const seen = (await first.calls()).length;
    const second = await driverOn(ILO4_BL460C_GEN8, b, state);
    await second.driver.powerState();
    assert.deepEqual(suitesOf((await second.calls()).slice(seen)), ['3']);
    assert.equal(b.filter?.dropped(), dropped);
  });

  it('waits the 4 s fence_ipmilan documents after on, off and cycle; a cycle of a running host is sent as cycle', async () => {
    const { driver, settles, calls } = await driverOn(ILO4_BL460C_GEN8, b, new BmcState());
    await driver.powerOn();
    await driver.powerCycle();
    await driver.powerOff();
    assert.deepEqual(settles, [4000, 4000, 4000]);
    const sent = commandsOf(await calls());
    assert.ok(sent.includes('chassis power cycle'), sent.join(' | '));
  });

  it('keeps one-time and persistent overrides, EFI and legacy, as written', async () => {
    const { driver } = await driverOn(ILO4_BL460C_GEN8, b, new BmcState());
    for (const o of [{ device: 'pxe', persistent: false, mode: 'uefi' }, { device: 'disk', persistent: true, mode: 'bios' }] as const) {
      await driver.setBootOverride(o);
      assert.deepEqual(await driver.getBootOverride(), o);
    }
  });

  it('forseti bmc probe --type ipmi: suite 3 after 17 went unanswered, HP iLO, the 4 s wait and its source', async () => {
    const report = await probeBmc('127.0.0.1', { type: 'ipmi', port: b.port, credential: { name: 'bld01-ilo', username: ILO4_BL460C_GEN8.user, password: ILO4_BL460C_GEN8.password }, ipmitool: LAN });
    assert.equal(report.auth, 'RMCP+ session, cipher suite 3 (17 unanswered)');
    assert.ok(report.identity.some((i) => /^vendor: HP Integrated Lights-Out \(iLO 4 on ProLiant Gen8\) \(manufacturer ID 11\)$/.test(i)), report.identity.join(' | '));
    assert.ok(report.facts?.some((f) => /waits 4 s after a power command.*documented: \[fence-ipmilan\]/.test(f)));
    assert.ok(report.facts?.some((f) => /cipher suites up to 3.*user report: \[ha-ipmi-83\]/.test(f)));
    assert.ok(!report.quirks.some((q) => /factory account/.test(q)));
  });
});

describe('the boot flag valid bit past the 60-second timeout (shortened here), on both personalities', () => {
  for (const p of [IMM_X3550_M3, ILO4_BL460C_GEN8]) {
    it(`${p.title}: a plain ipmitool bootdev loses its override; the driver's stays, parameter 3 read first and bit 3 set`, async () => {
      const b = await startPersonality(p, `${p.id}-valid`);
      running.push(b);
      const raw = (...command: string[]): Promise<string> => ipmitoolRaw(b, p, command);
      await raw('chassis', 'bootdev', 'pxe');
      assert.match(await raw('chassis', 'bootparam', 'get', '5'), /Boot Flag Valid/);
      await sleep(VALID_TIMEOUT_MS + 300);
      assert.doesNotMatch(await raw('chassis', 'bootparam', 'get', '5'), /Boot Flag Valid\b/, 'cleared by the BMC');
      const { driver, calls } = await driverOn(p, b, new BmcState());
      await driver.setBootOverride({ device: 'pxe', persistent: false, mode: 'uefi' });
      await sleep(VALID_TIMEOUT_MS + 300);
      assert.deepEqual(await driver.getBootOverride(), { device: 'pxe', persistent: false, mode: 'uefi' });
      const sent = commandsOf(await calls());
      const read = sent.indexOf('raw 0x00 0x09 0x03 0x00 0x00');
      const write = sent.indexOf('raw 0x00 0x08 0x03 0x08');
      assert.ok(read >= 0 && write > read && write < sent.findIndex((c) => c.startsWith('chassis bootdev')), sent.join(' | '));
      await driver.setBootOverride({ device: 'disk', persistent: true, mode: 'bios' });
      assert.equal(commandsOf(await calls()).filter((c) => c === 'raw 0x00 0x08 0x03 0x08').length, 1, 'bit 3 already set: not written again');
    });
  }
});

function ipmitoolRaw(b: PersonalityBmc, p: IpmiPersonality, command: string[]): Promise<string> {
  const args = ['-I', 'lanplus', '-C', '3', '-H', '127.0.0.1', '-p', String(b.port), '-U', p.user, '-E', '-N', '1', '-R', '1', ...command];
  return new Promise((resolve, reject) =>
    execFile('ipmitool', args, { env: { ...process.env, IPMI_PASSWORD: p.password } }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))),
  );
}
