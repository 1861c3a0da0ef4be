// Wake-on-LAN: the magic packet, the driver's answers, and the packet on the wire (loopback, and a directed
// broadcast inside a network namespace the test creates); the driver factory and the manual driver.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createDriver, directedBroadcast } from '../src/bmc/driver-factory.ts';
import type { ManualDriver, ManualInstruction } from '../src/bmc/manual-driver.ts';
import type { Secrets } from '../src/secrets/secrets.ts';
import { BmcCommandError } from '../src/bmc/driver.ts';
import { magicPacket, parseMac } from '../src/bmc/wol/index.ts';
import { createWolDriver } from '../src/bmc/wol-driver.ts';
import { createLogger } from '../src/log.ts';
import type { Host, Site } from '../src/model/types.ts';

const MAC = '9c:8e:99:4a:10:07';
const PROBE = fileURLToPath(new URL('./fixtures/wol/probe.ts', import.meta.url));

function expectedPacket(): string {
  return 'ff'.repeat(6) + '9c8e994a1007'.repeat(16);
}

describe('magic packet', () => {
  it('is 6 x 0xff then the MAC 16 times', () => {
    const p = magicPacket('9C-8E-99-4A-10-07');
    assert.equal(p.length, 102);
    assert.equal(p.toString('hex'), expectedPacket());
    assert.throws(() => parseMac('9c:8e:99:4a:10'), RangeError);
  });
});

describe('WoL driver on 127.0.0.1', () => {
  let listener: Socket;
  let port: number;
  const received: Buffer[] = [];
  before(async () => {
    listener = createSocket('udp4');
    listener.on('message', (msg) => received.push(msg));
    await new Promise<void>((resolve) => listener.bind(0, '127.0.0.1', resolve));
    port = listener.address().port;
  });
  after(() => listener.close());

  async function packets(count: number): Promise<Buffer[]> {
    for (let i = 0; i < 500 && received.length < count; i++) await new Promise((r) => setTimeout(r, 10));
    return received.splice(0, received.length);
  }

  it('power on and power cycle send the magic packet for the boot MAC', async () => {
    const driver = createWolDriver({ host: 'node-1', mac: MAC, broadcast: '127.0.0.1', port });
    await driver.powerOn();
    const on = await packets(3);
    assert.equal(on.length, 3);
    for (const p of on) assert.equal(p.toString('hex'), expectedPacket());
    await driver.powerCycle();
    assert.equal((await packets(3)).length, 3);
  });

  it('cannot power off, cannot read power, cannot set a boot device (says so)', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _e, cb) => (lines.push(String(chunk)), cb()) });
    const driver = createWolDriver({ host: 'node-1', mac: MAC, broadcast: '127.0.0.1', port }, { log: createLogger({ destination: sink }) });
    await assert.rejects(driver.powerOff(), (err: Error) => err instanceof BmcCommandError && /node-1/.test(err.message) && /cannot power a machine off/.test(err.message));
    assert.equal(await driver.powerState(), 'unknown');
    await driver.setBootOverride({ device: 'pxe', persistent: false });
    assert.equal(await driver.getBootOverride(), null);
    assert.match(lines.join(''), /must boot from the network first/);
    assert.equal(driver.capabilities.powerOff, false);
  });
});

const canNetns = process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list']).status === 0;

describe('WoL to a directed broadcast address, in a network namespace', { skip: canNetns ? false : 'needs root and iproute2' }, () => {
  const ns = `fwol-${process.pid}`;
  before(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    const inNs = (...args: string[]) => execFileSync('ip', ['netns', 'exec', ns, 'ip', ...args]);
    inNs('link', 'set', 'lo', 'up');
    inNs('link', 'add', 'prov0', 'type', 'bridge');
    inNs('addr', 'add', '10.250.0.5/24', 'brd', '+', 'dev', 'prov0');
    inNs('link', 'set', 'prov0', 'up');
  });
  after(() => {
    spawnSync('ip', ['netns', 'delete', ns]);
  });

  it('the packet goes out as a broadcast to x.x.x.255:9 with SO_BROADCAST', () => {
    const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', PROBE, MAC, '10.250.0.255'], { encoding: 'utf8', timeout: 30_000 });
    const lines = out.trim().split('\n');
    assert.equal(lines.length, 2);
    for (const line of lines) assert.equal(line, `10.250.0.5 ${expectedPacket()}`);
  });
});

describe('driver factory', () => {
  const log = createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const site = { network: { subnet: '10.9.0.0/24' } } as unknown as Site; // only the subnet matters here
  const secrets = { resolve: () => ({ username: 'u', password: 'p' }) } as unknown as Secrets; // a stub: no file, no env
  const options = { minIntervalMs: 0, timeoutMs: 1000, retries: 0 };
  const host = (bmc: Host['bmc'], extra: Partial<Host> = {}): Host => ({
    name: 'h1',
    macs: [MAC],
    ip: '10.9.0.21',
    bmc,
    hardware: { disks: [], firmware: 'bios', arch: 'x86_64' },
    role: 'off',
    power: 'off',
    labels: {},
    refs: {},
    ...extra,
  });

  it('picks the driver by bmc.type', async () => {
    assert.equal(directedBroadcast(site), '10.9.0.255');
    assert.equal(createDriver(host({ type: 'wol' }), secrets, options, log, { site }).kind, 'wol');
    assert.equal(createDriver(host({ type: 'wol' }), secrets, options, log).kind, 'manual', 'no site, no broadcast address');
    assert.equal(createDriver(host({ type: 'ipmi', address: '127.0.0.1', credential: 'c' }), secrets, options, log).kind, 'ipmi');
    assert.equal(createDriver(host({ type: 'redfish', address: '127.0.0.1', credential: 'c' }), secrets, options, log).kind, 'redfish');
    assert.equal(createDriver(host({ type: 'hp-oa', address: '127.0.0.1', credential: 'c' }), secrets, options, log).kind, 'manual', 'hp-oa without a bay');
    const oa = createDriver(host({ type: 'hp-oa', address: '127.0.0.1', credential: 'c' }, { enclosure: { name: 'asgard', bay: 3 } }), secrets, options, log);
    assert.equal(oa.kind, 'hp-oa');
    await oa.close?.();
  });

  it('manual: every instruction is kept and passed on', async () => {
    const seen: ManualInstruction[] = [];
    const driver = createDriver(host({ type: 'manual' }), secrets, options, log, { onInstruction: (i) => seen.push(i) }) as ManualDriver;
    const last = (): ManualInstruction | null => driver.lastInstruction; // a getter: read it fresh each time
    assert.equal(last(), null);
    await driver.setBootOverride({ device: 'pxe', persistent: false });
    await driver.powerCycle();
    assert.deepEqual(seen.map((i) => i.text), ['make the next boot a network (PXE) boot', 'power-cycle the machine (or power it on)']);
    assert.equal(last()?.text, 'power-cycle the machine (or power it on)');
    assert.equal(last()?.host, 'h1');
  });
});
