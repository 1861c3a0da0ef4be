// The HP Onboard Administrator driver against a stand-in OA (an SSH server playing the OA's command line).
import assert from 'node:assert/strict';
import { BmcState } from '../src/bmc/bmc-state.ts';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { BmcAuthError, BmcCommandError, BmcUnreachableError, BootOverrideNotAppliedError } from '../src/bmc/driver.ts';
import type { BmcTarget } from '../src/bmc/driver.ts';
import { BmcGate } from '../src/bmc/gate.ts';
import { createOaDriver } from '../src/bmc/oa-driver.ts';
import type { OaDriver, OaDriverOptions } from '../src/bmc/oa-driver.ts';
import { findOaError, parseServerBoot, parseServerInfo, parseServerStatus } from '../src/bmc/oa/parse.ts';
import { startFakeOa } from './fixtures/oa/oa-server.ts';
import type { FakeOa } from './fixtures/oa/oa-server.ts';

// One BMC state for the suite's drivers, as the agent has one: the blades of an enclosure share its OA session.
const STATE = new BmcState();
const FAST: OaDriverOptions = { state: STATE, powerPoll: { attempts: 20, intervalMs: 50 }, retries: 0, retryDelayMs: 0, connectTimeoutMs: 10_000, commandTimeoutMs: 10_000 };

function target(oa: FakeOa, bay: number, extra: Partial<BmcTarget> = {}): BmcTarget {
  return { host: `bld-${String(bay).padStart(3, '0')}`, address: oa.address, port: oa.port, username: oa.user, password: oa.password, bay, ...extra };
}

async function closeAll(drivers: OaDriver[]): Promise<void> {
  await Promise.all(drivers.map((d) => d.close()));
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(cond(), `timed out waiting until ${what}`);
}

/** A TCP server that accepts connections and never says a word: an OA whose SSH daemon hangs. */
async function silentOa(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  let accepted = 0;
  server.on('connection', () => accepted++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('OA output parsers', () => {
  it('reads power, health and diagnostics from SHOW SERVER STATUS', () => {
    const s = parseServerStatus('\nBlade #2 Status:\n\tPower: On\n\tCurrent Wattage used: 175\n\tHealth: OK\n\tUnit Identification LED: Off\n\tDiagnostic Status:\n\t\tInternal Data                            OK\n\t\tiLO Network                              Degraded\n', 2);
    assert.equal(s.power, 'on');
    assert.equal(s.health, 'OK');
    assert.equal(s.wattage, 175);
    assert.deepEqual(s.diagnostics, { 'Internal Data': 'OK', 'iLO Network': 'Degraded' });
    assert.equal(parseServerStatus('\tPower: Off\n', 1).power, 'off');
    assert.equal(parseServerStatus('\tPower: Unknown\n', 1).power, 'unknown');
  });

  it('reads the one-time boot device from SHOW SERVER BOOT', () => {
    const b = parseServerBoot('\nServer Blade #1 Boot Information:\n\tOne time boot from: PXE NIC\n\n\tIPL Devices (Boot Order):\n\t1. CD-ROM\n\t2. Hard Drive (C:)\n\t3. PXE NIC 1\n', 1);
    assert.equal(b.oneTimeBoot, 'pxe');
    assert.deepEqual(b.bootOrder, ['CD-ROM', 'Hard Drive (C:)', 'PXE NIC 1']);
    assert.equal(parseServerBoot('\tOne time boot from: None\n', 1).oneTimeBoot, null);
    assert.equal(parseServerBoot('\tOne time boot from: Hard Drive\n', 1).oneTimeBoot, 'hdd');
  });

  it('reads the IPL order unnumbered (as c7000 OAs print it) or numbered, and classifies its first device', () => {
    // The shape opnfv/fuel's hp_adapter.py matches after `set server boot first pxe`: "Boot Order):" then tab-indented devices.
    const b = parseServerBoot('\nServer Blade #2 Boot Information:\n\tOne time boot from: None\n\n\tIPL Devices (Boot Order):\n\tPXE NIC 1\n\tHard Drive (C:)\n\tCD-ROM\n\tDiskette Drive (A:)\n\tUSB\n', 2);
    assert.deepEqual(b.bootOrder, ['PXE NIC 1', 'Hard Drive (C:)', 'CD-ROM', 'Diskette Drive (A:)', 'USB']);
    assert.equal(b.firstBootDevice, 'pxe');
    assert.equal(b.oneTimeBoot, null);
    assert.equal(parseServerBoot('\tIPL Devices (Boot Order):\n\t1. Hard Drive (C:)\n\t2. PXE NIC 1\n', 1).firstBootDevice, 'hdd');
    assert.equal(parseServerBoot('\tOne time boot from: None\n', 1).firstBootDevice, undefined);
  });

  it('reads inventory, older "NIC 1:" lines included, and not the iLO MAC as a NIC', () => {
    const info = parseServerInfo('\nServer Blade #4 Information:\n\tType: Server Blade\n\tManufacturer: HP\n\tProduct Name: ProLiant BL460c G6\n\tSerial Number: CZJ0000XYZ\n\tMemory: 49152 MB\n\tNIC 1: 00:17:A4:77:00:08\n\tNIC 2: 00:17:A4:77:00:0A\n\n\tManagement Processor Information:\n\tType: iLO2\n\tIP Address: 10.0.0.4\n\tMAC Address: 00:17:A4:77:00:0E\n', 4);
    assert.equal(info.productName, 'ProLiant BL460c G6');
    assert.equal(info.memoryMiB, 49152);
    assert.deepEqual(info.nics, [{ name: 'NIC 1', mac: '00:17:a4:77:00:08' }, { name: 'NIC 2', mac: '00:17:a4:77:00:0a' }]);
    assert.equal(info.managementProcessor.ipAddress, '10.0.0.4');
    assert.equal(info.managementProcessor.mac, '00:17:a4:77:00:0e');
  });

  it('recognises the OA\'s error lines', () => {
    assert.equal(findOaError('\nBay 5 is empty.\n'), 'Bay 5 is empty.');
    assert.equal(findOaError('\nInvalid Arguments\n'), 'Invalid Arguments');
    assert.match(findOaError('\nError: "17" is not a valid bay number.\n') ?? '', /^Error:/);
    assert.equal(findOaError('\nPowering on blade 3.\n'), null);
    assert.equal(findOaError('\nServer Blade #4 Information:\n\tNo Server Blade Installed\n'), 'No Server Blade Installed');
    assert.equal(findOaError('\nBlade #3 boot order changed to PXE\n'), null);
  });
});

describe('OA driver against a stand-in OA', () => {
  let oa: FakeOa;
  before(async () => {
    oa = await startFakeOa({ emptyBays: [16] });
  });
  after(async () => {
    await oa.close();
  });

  it('drives 15 blades at once over ONE session, strictly one command at a time', async () => {
    const drivers = Array.from({ length: 15 }, (_, i) => createOaDriver(target(oa, i + 1), FAST));
    const loginsBefore = oa.logins;
    await Promise.all(
      drivers.map(async (d) => {
        await d.setBootOverride({ device: 'pxe', persistent: false, mode: 'bios' });
        await d.powerCycle();
      }),
    );
    assert.equal(oa.logins - loginsBefore, 1, 'one SSH login for the whole enclosure');
    assert.equal(oa.overlaps, 0, 'no command was sent before the previous prompt');
    for (let bay = 1; bay <= 15; bay++) {
      assert.equal(oa.bay(bay).power, 'On');
      assert.deepEqual(oa.bay(bay).boots, ['PXE NIC'], `bay ${bay} booted once, from PXE`);
      const mine = oa.commands.filter((c) => c.line.endsWith(` ${bay}`) || c.line.includes(` ${bay} `)).map((c) => c.line);
      assert.deepEqual(mine.slice(0, 3), [`SET SERVER BOOT ONCE PXE ${bay}`, `SHOW SERVER BOOT ${bay}`, `SHOW SERVER STATUS ${bay}`]);
      assert.ok(mine.includes(`POWERON SERVER ${bay}`));
    }
    const exitsBefore = oa.exits;
    await closeAll(drivers);
    assert.equal(oa.exits - exitsBefore, 1, 'the last driver to close logs out with exit');
  });

  it('reads power and the one-time boot back: pxe, disk, none; a reboot when on', async () => {
    const d = createOaDriver(target(oa, 3), FAST);
    try {
      assert.equal(await d.powerState(), 'on');
      await d.setBootOverride({ device: 'disk', persistent: false });
      assert.deepEqual(await d.getBootOverride(), { device: 'disk', persistent: false });
      await d.setBootOverride({ device: 'none', persistent: false });
      assert.equal(await d.getBootOverride(), null);
      await d.setBootOverride({ device: 'pxe', persistent: false });
      assert.deepEqual(await d.getBootOverride(), { device: 'pxe', persistent: false });
      const before = oa.commands.length;
      await d.powerCycle();
      assert.ok(oa.commands.slice(before).some((c) => c.line === 'REBOOT SERVER 3 FORCE'));
      assert.equal(oa.bay(3).boots.at(-1), 'PXE NIC');
      await d.powerOff();
      assert.equal(await d.powerState(), 'off');
      assert.equal(oa.bay(3).power, 'Off');
      // Persistent: SET SERVER BOOT FIRST, read back as the first IPL device.
      await d.setBootOverride({ device: 'pxe', persistent: true });
      assert.deepEqual(await d.getBootOverride(), { device: 'pxe', persistent: true });
      assert.equal(oa.bay(3).bootOrder[0], 'PXE NIC 1');
      await d.setBootOverride({ device: 'disk', persistent: true });
      assert.deepEqual(await d.getBootOverride(), { device: 'disk', persistent: true });
      assert.deepEqual(oa.bay(3).bootOrder.slice(0, 2), ['Hard Drive (C:)', 'PXE NIC 1']);
      await d.powerOn();
      assert.equal(oa.bay(3).boots.at(-1), 'Hard Drive (C:)', 'with no one-time boot the blade boots the first IPL device');
      assert.ok(oa.commands.some((c) => c.line === 'SET SERVER BOOT FIRST PXE 3'));
    } finally {
      await d.close();
    }
  });

  it('an OA that does not keep the one-time boot: BootOverrideNotAppliedError', async () => {
    const d = createOaDriver(target(oa, 7), FAST);
    oa.bay(7).ignoreBootOnce = true;
    try {
      await assert.rejects(d.setBootOverride({ device: 'pxe', persistent: false }), (err: Error) => err instanceof BootOverrideNotAppliedError && /bld-007/.test(err.message) && /"None"/.test(err.message));
    } finally {
      oa.bay(7).ignoreBootOnce = false;
      await d.close();
    }
  });

  it('an OA that does not keep the boot order: BootOverrideNotAppliedError naming the order it reports', async () => {
    const d = createOaDriver(target(oa, 8), FAST);
    oa.bay(8).ignoreBootFirst = true;
    try {
      await assert.rejects(d.setBootOverride({ device: 'pxe', persistent: true }), (err: Error) => err instanceof BootOverrideNotAppliedError && /bld-008/.test(err.message) && /CD-ROM, Floppy/.test(err.message));
    } finally {
      oa.bay(8).ignoreBootFirst = false;
      await d.close();
    }
  });

  it('inventory: model, serial, memory, NIC MACs and the iLO address', async () => {
    const d = createOaDriver(target(oa, 2), FAST);
    try {
      const inv = await d.inventory();
      assert.equal(inv.model, 'ProLiant BL460c Gen8');
      assert.equal(inv.serialNumber, 'CZ34010002');
      assert.equal(inv.memoryGiB, 64);
      assert.deepEqual(inv.macs, ['9c:8e:99:4a:10:02', '9c:8e:99:4a:11:02', '9c:8e:99:4a:12:02', '9c:8e:99:4a:13:02']);
      assert.equal(inv.managementAddress, '10.77.1.102');
      assert.deepEqual(inv.processors, { count: 2, model: 'Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz' });
    } finally {
      await d.close();
    }
  });

  it('an empty bay is a BmcCommandError naming the host and the OA', async () => {
    const d = createOaDriver(target(oa, 16), FAST);
    try {
      await assert.rejects(d.powerState(), (err: Error) => err instanceof BmcCommandError && /bld-016/.test(err.message) && /bay 16/.test(err.message) && /Bay 16 is empty/.test(err.message));
    } finally {
      await d.close();
    }
  });

  it('a dropped session is opened again for the next command', async () => {
    const d = createOaDriver(target(oa, 4), FAST);
    try {
      await d.powerState();
      const logins = oa.logins;
      oa.dropSessions();
      assert.equal(await d.powerState(), 'on');
      assert.equal(oa.logins, logins + 1);
    } finally {
      await d.close();
    }
  });

  it('a session lost mid-command: a read is sent again on a new session, a reboot is not', async () => {
    const d = createOaDriver(target(oa, 5), FAST);
    try {
      await d.powerOn();
      oa.dropOnNextCommand();
      assert.equal(await d.powerState(), 'on');
      const reboots = oa.bay(5).boots.length;
      oa.dropOnNextCommand(/^REBOOT/);
      await assert.rejects(d.powerCycle(), BmcUnreachableError);
      assert.equal(oa.commands.filter((c) => c.line === 'REBOOT SERVER 5 FORCE').length, 1);
      assert.equal(oa.bay(5).boots.length, reboots, 'the dropped reboot was not repeated');
    } finally {
      await d.close();
    }
  });

  it('an OA that stops answering: the session is abandoned, a read goes again on a new one', async () => {
    const d = createOaDriver(target(oa, 6), { ...FAST, commandTimeoutMs: 300 });
    try {
      await d.powerState();
      const logins = oa.logins;
      oa.hangOnNextCommand();
      assert.equal(await d.powerState(), 'on');
      assert.equal(oa.logins, logins + 1);
    } finally {
      await d.close();
    }
  });

  it('a wrong password is a BmcAuthError that does not contain the password', async () => {
    const wrong = 'not-the-oa-password';
    const d = createOaDriver(target(oa, 1, { password: wrong }), FAST);
    const refused = oa.refusedLogins;
    try {
      await assert.rejects(d.powerState(), (err: Error) => err instanceof BmcAuthError && /Administrator/.test(err.message) && !err.message.includes(wrong) && !err.message.includes(oa.password));
      assert.ok(oa.refusedLogins > refused);
    } finally {
      await d.close();
    }
  });

  it('nothing listening: BmcUnreachableError', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const d = createOaDriver({ ...target(oa, 1), port }, FAST);
    try {
      await assert.rejects(d.powerState(), BmcUnreachableError);
    } finally {
      await d.close();
    }
  });
});

describe('OA driver: a full enclosure and the global BMC gate', () => {
  it('16 bays set PXE first in the boot order at once: one session, one command at a time, every order read back', async () => {
    const full = await startFakeOa();
    const gate = new BmcGate({ maxConcurrent: 4 });
    const drivers = Array.from({ length: 16 }, (_, i) => createOaDriver(target(full, i + 1), { ...FAST, gate }));
    try {
      await Promise.all(drivers.map((d) => d.setBootOverride({ device: 'pxe', persistent: true })));
      assert.equal(full.logins, 1);
      assert.equal(full.overlaps, 0);
      for (let bay = 1; bay <= 16; bay++) {
        assert.equal(full.bay(bay).bootOrder[0], 'PXE NIC 1', `bay ${bay}`);
        const mine = full.commands.filter((c) => c.line.endsWith(` ${bay}`)).map((c) => c.line);
        assert.deepEqual(mine, [`SET SERVER BOOT FIRST PXE ${bay}`, `SHOW SERVER BOOT ${bay}`]);
      }
    } finally {
      await closeAll(drivers);
      await full.close();
    }
  });

  it('a dead OA holds a slot per login attempt only: the pauses between attempts take none, and other BMCs are served meanwhile', { timeout: 60_000 }, async () => {
    const live = await startFakeOa();
    const hole = await silentOa();
    const gate = new BmcGate({ maxConcurrent: 1 });
    // The dead OA's pause before its next login lasts until the live OA was served: only possible if the pause holds
    // no slot (were one held, the live OA would be waiting for it, which the pause records rather than hang on).
    let liveDone: Promise<unknown> = Promise.resolve();
    const waitingDuringPauses: number[] = [];
    const dead = createOaDriver({ ...target(live, 1), port: hole.port }, {
      ...FAST,
      gate,
      connectTimeoutMs: 300,
      retries: 2,
      retryDelayMs: 1000,
      sleep: async () => {
        waitingDuringPauses.push(gate.limit.queued);
        if (gate.limit.queued === 0) await liveDone;
      },
    });
    const alive = createOaDriver(target(live, 2), { ...FAST, gate });
    try {
      const deadRead = dead.powerState();
      deadRead.catch(() => undefined); // awaited below; a failed assertion before must not leave it unhandled
      await until('the dead OA\'s first login attempt took the connection', () => hole.connections() === 1);
      const liveRead = alive.powerState();
      liveDone = liveRead;
      await until('the live OA waits for the slot', () => gate.limit.queued === 1);
      assert.equal(live.logins, 0, 'the login timeout runs inside the slot');
      assert.equal(await liveRead, 'off', 'the live OA is served between the dead one\'s login attempts');
      await assert.rejects(deadRead, (err: Error) => err instanceof BmcUnreachableError && /bld-001/.test(err.message) && /3 attempt/.test(err.message));
      assert.deepEqual(waitingDuringPauses, [0, 0], 'nobody waits for the only slot while the dead OA pauses between logins');
      assert.equal(hole.connections(), 3);
      assert.equal(gate.limit.running, 0);
      assert.equal(gate.backoff(`127.0.0.1:${hole.port}`)?.failures, 1, 'the dead OA backs off once for the whole command');
    } finally {
      await closeAll([dead, alive]);
      await hole.close();
      await live.close();
    }
  });

  it('every OA command takes a global slot; an OA that stops answering backs off and takes no slot', async () => {
    const full = await startFakeOa();
    let now = 1_000_000;
    const gate = new BmcGate({ maxConcurrent: 1, now: () => now });
    const a = createOaDriver(target(full, 1), { ...FAST, gate, commandTimeoutMs: 300 });
    const b = createOaDriver(target(full, 2), { ...FAST, gate, commandTimeoutMs: 300 });
    try {
      let release!: () => void;
      const held = gate.limit.run(() => new Promise<void>((resolve) => (release = resolve)));
      const reading = a.powerState();
      while (gate.limit.queued === 0) await new Promise((r) => setImmediate(r));
      assert.equal(full.commands.length, 0, 'no command reaches the OA while the only slot is taken');
      release();
      await held;
      assert.equal(await reading, 'off');

      await a.powerOn();
      full.hangOnNextCommand(/^REBOOT/);
      await assert.rejects(a.powerCycle(), BmcUnreachableError); // a reboot is never sent twice: it times out once
      const sent = full.commands.length;
      await assert.rejects(b.powerState(), (err: Error) => err instanceof BmcUnreachableError && /bld-002/.test(err.message) && /not tried/.test(err.message));
      assert.equal(full.commands.length, sent, 'nothing was sent to the OA while it backs off');
      assert.equal(gate.limit.running, 0);
      now += 60_000;
      assert.equal(await b.powerState(), 'off', 'after the back-off the OA is tried again');
      assert.equal(gate.backoff(`${full.address}:${full.port}`), undefined, 'an answer ends the back-off');
    } finally {
      await closeAll([a, b]);
      await full.close();
    }
  });
});
