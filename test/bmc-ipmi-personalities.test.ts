// The IPMI vendor facts (src/bmc/ipmi/vendor-facts.ts) against ipmi_sim personalities of the seed lab's BMCs
// (test/fixtures/ipmi/personalities.ts): the IBM IMM of the x3550 M3 (suite 17 refused, factory account) and the HP
// iLO 4 of the BL460c Gen8 (suite 17 left unanswered, 4 s after power commands). Every cell of the README's IPMI table
// (test/fixtures/ipmi/matrix.ts) is filled here from what went over the wire or what the BMC holds, never timing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { BmcState } from '../src/bmc/bmc-state.ts';
import { createIpmiDriver } from '../src/bmc/ipmi-driver.ts';
import type { IpmiDriverOptions } from '../src/bmc/ipmi-driver.ts';
import { GENERIC_FACTS, IANA, vendorFacts, VENDORS } from '../src/bmc/ipmi/vendor-facts.ts';
import { probeBmc } from '../src/bmc/probe.ts';
import { IPMI_EXPECTED, IPMI_ROWS, renderIpmiMatrix } from './fixtures/ipmi/matrix.ts';
import type { IpmiRow } from './fixtures/ipmi/matrix.ts';
import { ILO4_BL460C_GEN8, IMM_X3550_M3, IPMI_PERSONALITIES, startPersonality, VALID_TIMEOUT_MS } from './fixtures/ipmi/personalities.ts';
import type { IpmiPersonality, PersonalityBmc } from './fixtures/ipmi/personalities.ts';
import { recordingIpmitool } from './fixtures/ipmi/support.ts';

const LAN = { retries: 0, retryDelayMs: 0, lanRetries: 1, lanTimeoutS: 1 };
const running: PersonalityBmc[] = [];
after(async () => {
  for (const b of running) await b.stop();
});

/** The README table's cells as observed, per personality. */
const observed: Record<string, Partial<Record<IpmiRow, string>>> = {};
const cell = (p: IpmiPersonality, row: IpmiRow, value: string): void => void ((observed[p.id] ??= {})[row] = value);

async function start(p: IpmiPersonality, name: string): Promise<PersonalityBmc> {
  const b = await startPersonality(p, name);
  running.push(b);
  return b;
}

/** A driver on the personality with a recording ipmitool (its own log), a settle spy, and the given owner state. */
async function driverOn(p: IpmiPersonality, b: PersonalityBmc, state: BmcState) {
  const ipmitool = await recordingIpmitool(await mkdirIn(b.bmc.workDir));
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
  const sent = async (): Promise<string[]> => (await ipmitool.windows()).map((w) => w.argv);
  /** The ipmitool commands sent, without the connection options. */
  const commands = async (): Promise<string[]> => (await sent()).map((a) => a.replace(/^.* -E (-N \d+ )?(-R \d+ )?(-v )?/, ''));
  return { driver, settles, sent, commands };
}

let dirs = 0;
async function mkdirIn(parent: string): Promise<string> {
  const dir = `${parent}/driver-${++dirs}`;
  await mkdir(dir);
  return dir;
}

const suitesOf = (argv: string[]): string[] => argv.map((a) => /-C (\d+)/.exec(a)?.[1] ?? '?');
const SHORT: Record<string, string> = { 'ibm-imm': 'IBM IMM', 'hp-ilo': 'HP iLO' };

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

for (const p of IPMI_PERSONALITIES) {
  describe(`${p.title}`, () => {
    let b: PersonalityBmc;

    it('found by its manufacturer ID; suite 17 passed over, 3 taken, and the next driver of this BMC asks 3 at once', async () => {
      b = await start(p, p.id);
      const state = new BmcState();
      const first = await driverOn(p, b, state);
      assert.equal(await first.driver.powerState(), 'off');
      const { vendor, mc } = await first.driver.identify();
      cell(p, 'detected as', `${SHORT[vendor.id] ?? vendor.id} (manufacturer ID ${mc.manufacturerId})`);
      assert.deepEqual(suitesOf(await first.sent()).slice(0, 2), p.suite17 === 'refused' ? ['17', '3'] : ['17', '17'], 'unanswered: asked again with -v');
      if (p.suite17 === 'refused') assert.match(first.driver.passedOver()[0] ?? '', /^17: invalid authentication algorithm/);
      else assert.ok((b.filter?.dropped() ?? 0) > 0, 'the Open Session Requests for 17 were dropped, not refused');
      const passed = first.driver.passedOver().map((x) => `${x.slice(0, x.indexOf(':'))} ${x.endsWith(': no answer') ? 'unanswered' : 'refused'}`);
      const second = await driverOn(p, b, state);
      await second.driver.powerState();
      const remembered = suitesOf(await second.sent()).every((s) => s === '3');
      cell(p, 'cipher suite', `${passed.join(', ')}, ${second.driver.cipherSuite()}${remembered ? ' (remembered)' : ''}`);
    });

    it('power: on and off read back, a cycle is a cycle on a running host and a power on on one that is off; the vendor wait', async () => {
      const { driver, settles, commands } = await driverOn(p, b, new BmcState());
      const wait = (): string => (settles.splice(0).map((ms) => `${ms / 1000} s wait, `)[0] ?? '');
      const readBack = async (want: string): Promise<string> => ((await driver.powerState()) === want ? 'read back' : 'not read back');
      await driver.powerOn();
      const on = `${wait()}${await readBack('on')}`;
      await driver.powerOff();
      const off = `${wait()}${await readBack('off')}`;
      assert.equal(on, off);
      cell(p, 'on, off', on);
      const sentAfter = async (from: number): Promise<string> => ((await commands()).slice(from).includes('chassis power cycle') ? 'cycle' : 'on');
      let from = (await commands()).length;
      await driver.powerCycle();
      cell(p, 'cycle, host off', `${await sentAfter(from)}, ${wait()}${await readBack('on')}`);
      from = (await commands()).length;
      await driver.powerCycle();
      cell(p, 'cycle, host on', `${await sentAfter(from)}, ${wait()}${await readBack('on')}`);
    });

    it('keeps one-time and persistent overrides, EFI and legacy, as written: read back bit for bit', async () => {
      const { driver } = await driverOn(p, b, new BmcState());
      for (const [row, o] of [['PXE once, UEFI', { device: 'pxe', persistent: false, mode: 'uefi' }], ['disk every boot, legacy', { device: 'disk', persistent: true, mode: 'bios' }]] as const) {
        await driver.setBootOverride(o);
        const back = await driver.getBootOverride();
        cell(p, row, JSON.stringify(back) === JSON.stringify(o) ? 'kept as written' : `read back ${JSON.stringify(back)}`);
      }
    });

    it('the valid bit after the 60-second rule (shortened): a plain ipmitool bootdev loses its override, the driver keeps its own', async () => {
      const fresh = await start(p, `${p.id}-valid`);
      const raw = (...command: string[]): Promise<string> => ipmitoolOn(fresh, p, command);
      await raw('chassis', 'bootdev', 'pxe');
      assert.match(await raw('chassis', 'bootparam', 'get', '5'), /Boot Flag Valid/);
      await sleep(VALID_TIMEOUT_MS + 300);
      assert.doesNotMatch(await raw('chassis', 'bootparam', 'get', '5'), /Boot Flag Valid\b/, 'cleared by the BMC');
      const { driver, commands } = await driverOn(p, fresh, new BmcState());
      const o = { device: 'pxe', persistent: false, mode: 'uefi' } as const;
      await driver.setBootOverride(o);
      await sleep(VALID_TIMEOUT_MS + 300);
      const kept = JSON.stringify(await driver.getBootOverride()) === JSON.stringify(o);
      const sent = await commands();
      const read = sent.indexOf('raw 0x00 0x09 0x03 0x00 0x00');
      const write = sent.indexOf('raw 0x00 0x08 0x03 0x08');
      assert.ok(read >= 0 && write > read && write < sent.findIndex((c) => c.startsWith('chassis bootdev')), sent.join(' | '));
      await driver.setBootOverride({ device: 'disk', persistent: true, mode: 'bios' });
      assert.equal((await commands()).filter((c) => c === 'raw 0x00 0x08 0x03 0x08').length, 1, 'bit 3 already set: not written again');
      cell(p, 'valid bit after 60 s', kept ? 'kept (parameter 3 bit 3 set)' : 'lost');
    });

    it('forseti bmc probe --type ipmi: the vendor, the facts applied with their sources, the factory account if in use', async () => {
      const report = await probeBmc('127.0.0.1', { type: 'ipmi', port: b.port, credential: { name: `${p.id}-cred`, username: p.user, password: p.password }, ipmitool: LAN });
      assert.equal(report.auth, `RMCP+ session, cipher suite 3 (17 ${p.suite17})`);
      const vendor = report.identity.find((i) => i.startsWith('vendor: '));
      assert.equal(vendor, `vendor: ${vendorFacts(p.manufacturerId).name} (manufacturer ID ${p.manufacturerId})`);
      const facts = report.facts ?? [];
      const sourced = facts.length > 0 && facts.every((f) => /\((documented|user report): \[[a-z0-9-]+\]/.test(f));
      const factory = report.quirks.some((q) => /factory account USERID and its factory password: change the password \(\[ibm-h194857\]\)/.test(q));
      assert.ok(!JSON.stringify(report).includes(p.password), 'the password is never printed');
      cell(p, 'bmc probe', `vendor, ${sourced ? 'sourced facts' : 'unsourced facts'}${factory ? ', factory account flagged' : ''}`);
    });
  });
}

describe('the README IPMI table', () => {
  it('every cell as observed above; the README shows exactly this table', () => {
    for (const id of Object.keys(IPMI_EXPECTED)) for (const row of IPMI_ROWS) assert.equal(observed[id]?.[row], IPMI_EXPECTED[id]![row], `${id}: ${row}`);
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    assert.ok(readme.includes(renderIpmiMatrix()), `README.md must contain the IPMI table as test/fixtures/ipmi/matrix.ts renders it:\n${renderIpmiMatrix()}`);
  });
});

function ipmitoolOn(b: PersonalityBmc, p: IpmiPersonality, command: string[]): Promise<string> {
  const args = ['-I', 'lanplus', '-C', '3', '-H', '127.0.0.1', '-p', String(b.port), '-U', p.user, '-E', '-N', '1', '-R', '1', ...command];
  return new Promise((resolve, reject) =>
    execFile('ipmitool', args, { env: { ...process.env, IPMI_PASSWORD: p.password } }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))),
  );
}

// The two personalities above are the seed lab's; their titles are the README's column heads.
assert.deepEqual(IPMI_PERSONALITIES.map((p) => p.id), [IMM_X3550_M3.id, ILO4_BL460C_GEN8.id]);
