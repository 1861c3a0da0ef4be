// The BMC gate (src/bmc/gate.ts, one per owner in src/bmc/bmc-state.ts): every exchange of every driver takes one of `maxConcurrent` slots, and a
// BMC that stops answering backs off outside the slots, so it cannot hold the other BMCs' work hostage.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bmcStateKey, retainBmcState } from '../src/bmc/driver-factory.ts';
import { BmcState } from '../src/bmc/bmc-state.ts';
import { CommandQueue } from '../src/bmc/command-queue.ts';
import { ConcurrencyLimit } from '../src/bmc/concurrency.ts';
import { BmcUnreachableError } from '../src/bmc/driver.ts';
import { BmcBackingOffError, BmcGate, UNREACHABLE_BACKOFF_MS } from '../src/bmc/gate.ts';
import { createIpmiDriver, ipmiBmcKey } from '../src/bmc/ipmi-driver.ts';
import { createRedfishDriver } from '../src/bmc/redfish-driver.ts';
import type { RedfishDriverOptions } from '../src/bmc/redfish-driver.ts';
import type { Host } from '../src/model/types.ts';
import { startRedfishBmc } from './fixtures/redfish/bmc.ts';
import type { RedfishBmc } from './fixtures/redfish/bmc.ts';
import { syntheticBmc } from './fixtures/redfish/resources.ts';

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(cond(), `timed out waiting until ${what}`);
}

async function redfish(): Promise<RedfishBmc> {
  const bmc = await startRedfishBmc({ resources: syntheticBmc() });
  cleanup.push(() => bmc.close());
  return bmc;
}

function redfishDriver(host: string, bmc: { address: string; port: number; username?: string; password?: string }, gate: BmcGate, opts: RedfishDriverOptions = {}) {
  const driver = createRedfishDriver(
    { host, address: bmc.address, port: bmc.port, username: bmc.username ?? 'admin', password: bmc.password ?? 'gate-pass' },
    { scheme: 'http', queue: new CommandQueue({ minIntervalMs: 0 }), gate, sleep: async () => undefined, http: { retries: 1, retryDelayMs: 10, timeoutMs: 5000 }, ...opts },
  );
  cleanup.push(() => driver.close());
  return driver;
}

/** A TCP server that accepts connections and never answers: a BMC whose web server hangs. */
async function blackHole(): Promise<{ port: number; connections: () => number }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return { port: (server.address() as AddressInfo).port, connections: () => accepted };
}

describe('ConcurrencyLimit.resize and the gate\'s back-off', () => {
  it('a larger bound starts waiters at once; a smaller one lets running tasks finish first', async () => {
    const limit = new ConcurrencyLimit(1);
    const release: Array<() => void> = [];
    const started: number[] = [];
    const tasks = [0, 1, 2, 3].map((i) => limit.run(() => new Promise<void>((resolve) => (started.push(i), release.push(resolve)))));
    await turn();
    assert.deepEqual(started, [0]);
    limit.resize(3);
    await turn();
    assert.deepEqual(started, [0, 1, 2]);
    limit.resize(1);
    release.shift()!();
    release.shift()!();
    await turn();
    assert.deepEqual(started, [0, 1, 2], 'still two running against a bound of one: the waiter waits');
    release.shift()!();
    await turn();
    assert.deepEqual(started, [0, 1, 2, 3]);
    release.shift()!();
    await Promise.all(tasks);
    assert.equal(limit.running, 0);
  });

  it('backs off longer after each unreachable command, and an answer ends it', () => {
    let now = 0;
    const gate = new BmcGate({ maxConcurrent: 2, now: () => now });
    gate.check('10.0.0.1:623');
    gate.settle('10.0.0.1:623', { unreachable: 'no answer within 20000 ms' });
    assert.throws(() => gate.check('10.0.0.1:623'), (err: unknown) => err instanceof BmcBackingOffError && /not tried: unreachable 1 time/.test(err.message) && /no answer within/.test(err.message));
    gate.check('10.0.0.2:623'); // other BMCs are not concerned
    now += UNREACHABLE_BACKOFF_MS[0]!;
    gate.check('10.0.0.1:623');
    gate.settle('10.0.0.1:623', { unreachable: 'again' });
    assert.equal(gate.backoff('10.0.0.1:623')?.retryAt, now + UNREACHABLE_BACKOFF_MS[1]!);
    gate.settle('10.0.0.1:623', 'answered');
    gate.check('10.0.0.1:623');
    assert.equal(gate.backoff('10.0.0.1:623'), undefined);
  });

  it('each owner\'s BMC state has its own gate, sized by its bmc.maxConcurrent: two agents in one process share no back-off', () => {
    const one = new BmcState({ maxConcurrent: 7 });
    const two = new BmcState();
    assert.equal(one.gate.limit.limit, 7);
    assert.equal(two.gate.limit.limit, 16);
    one.gate.settle('10.0.0.1:623', { unreachable: 'no answer' });
    assert.ok(one.gate.backoff('10.0.0.1:623'));
    assert.equal(two.gate.backoff('10.0.0.1:623'), undefined);
    assert.doesNotThrow(() => two.gate.check('10.0.0.1:623'));
  });

  it('drivers made by two owners keep their back-off apart', async () => {
    const one = new BmcState();
    const two = new BmcState();
    const target = { host: 'h', address: '127.0.0.1', port: 9, username: 'u', password: 'p' };
    const a = createIpmiDriver(target, { state: one, minIntervalMs: 0 });
    const b = createIpmiDriver(target, { state: two, minIntervalMs: 0 });
    one.gate.settle(ipmiBmcKey(target), { unreachable: 'no answer' });
    await assert.rejects(a.powerState(), BmcUnreachableError);
    assert.equal(two.gate.backoff(ipmiBmcKey(target)), undefined);
    assert.equal(one.queue(ipmiBmcKey(target)), one.queue(ipmiBmcKey(target)));
    void b;
  });

  it('command(): success and answers end the back-off, unreachable errors start it, a refused call settles nothing', async () => {
    let now = 0;
    const gate = new BmcGate({ now: () => now });
    const unreachable = (err: unknown): string | undefined => (err instanceof Error && err.message === 'silent' ? 'no answer' : undefined);
    assert.equal(await gate.command('b', async () => 'ok', unreachable), 'ok');
    await assert.rejects(gate.command('b', async () => Promise.reject(new Error('silent')), unreachable), /silent/);
    assert.equal(gate.backoff('b')?.failures, 1);
    await assert.rejects(gate.command('b', async () => gate.exchange('b', async () => 'never'), unreachable), BmcBackingOffError);
    assert.equal(gate.backoff('b')?.failures, 1, 'the refusal did not lengthen the back-off');
    now += UNREACHABLE_BACKOFF_MS[0]!;
    await assert.rejects(gate.command('b', async () => Promise.reject(new Error('refused: bad request')), unreachable), /bad request/);
    assert.equal(gate.backoff('b'), undefined, 'an error the BMC answered with ends the back-off');
  });

  it('state of BMCs no longer declared is dropped: back-off marks and command queues', () => {
    const state = new BmcState();
    const gate = state.gate;
    for (const bmc of ['10.0.0.1:623', '10.0.0.2:443', '10.0.0.3:22']) gate.settle(bmc, { unreachable: 'no answer' });
    const kept = state.queue('10.0.0.1:623');
    const dropped = state.queue('10.0.0.2:443');
    state.retain(['10.0.0.1:623']);
    assert.ok(gate.backoff('10.0.0.1:623'));
    assert.equal(gate.backoff('10.0.0.2:443'), undefined);
    assert.equal(gate.backoff('10.0.0.3:22'), undefined);
    assert.equal(state.queue('10.0.0.1:623'), kept);
    assert.notEqual(state.queue('10.0.0.2:443'), dropped);
    state.retain([]);
    assert.equal(gate.backoff('10.0.0.1:623'), undefined, 'none declared: nothing is kept');
    assert.notEqual(state.queue('10.0.0.1:623'), kept);
  });

  it('the agent\'s retainBmcState keys hosts as the drivers do, so a host\'s back-off survives a commit that keeps its BMC', () => {
    const host = (name: string, bmc: Host['bmc']): Host => ({ name, bmc }) as Host; // only `bmc` is read
    const ipmi = host('i', { type: 'ipmi', address: '127.0.0.1', port: 9, credential: 'c' });
    const redfish = host('r', { type: 'redfish', address: '10.0.0.5', credential: 'c' });
    const blade = host('b', { type: 'hp-oa', address: '10.0.0.6', credential: 'c' });
    assert.equal(bmcStateKey(ipmi), '127.0.0.1:9');
    assert.equal(bmcStateKey(redfish), '10.0.0.5:443');
    assert.equal(bmcStateKey(redfish, { redfish: { scheme: 'http' } }), '10.0.0.5:80');
    assert.equal(bmcStateKey(blade), '10.0.0.6:22');
    assert.equal(bmcStateKey(ipmi, { ipmitool: { prefix: ['ip', 'netns', 'exec', 'vlab-1'] } }), 'ip netns exec vlab-1 127.0.0.1:9');
    assert.equal(bmcStateKey(host('w', { type: 'wol' })), undefined);
    const state = new BmcState();
    const gate = state.gate;
    for (const h of [ipmi, redfish, blade]) gate.settle(bmcStateKey(h)!, { unreachable: 'no answer' });
    retainBmcState(state, [ipmi, blade, host('w', { type: 'wol' })]);
    assert.ok(gate.backoff('127.0.0.1:9'));
    assert.ok(gate.backoff('10.0.0.6:22'));
    assert.equal(gate.backoff('10.0.0.5:443'), undefined, 'the Redfish host left the lab');
    retainBmcState(state, []);
    assert.equal(gate.backoff('127.0.0.1:9'), undefined, 'none declared: nothing is kept');
  });
});

describe('every driver exchange goes through the gate', () => {
  it('Redfish: no request reaches any BMC while the slots are taken; then at most one per slot', async () => {
    const gate = new BmcGate({ maxConcurrent: 1 });
    const bmcs = [await redfish(), await redfish(), await redfish()];
    const drivers = bmcs.map((b, i) => redfishDriver(`rf-${i}`, b, gate));
    let release!: () => void;
    const held = gate.limit.run(() => new Promise<void>((resolve) => (release = resolve)));
    const reads = drivers.map((d) => d.powerState());
    await until('three exchanges wait for the slot', () => gate.limit.queued === 3);
    assert.deepEqual(bmcs.map((b) => b.requests.length), [0, 0, 0]);
    release();
    await held;
    assert.deepEqual(await Promise.all(reads), ['on', 'on', 'on']);
    assert.equal(gate.limit.running, 0);
  });

  it('IPMI: each ipmitool run takes a slot; an unreachable BMC backs off and its calls run no ipmitool at all', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'forseti-bmc-gate-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const log = join(dir, 'runs');
    const mode = join(dir, 'mode');
    const binary = join(dir, 'ipmitool');
    // Answers like ipmitool: the power state, or (mode "dead") what it prints when the BMC does not answer.
    await writeFile(binary, `#!/bin/sh\necho run >> '${log}'\nif [ "$(cat '${mode}' 2>/dev/null)" = dead ]; then echo 'Error: Unable to establish IPMI v2 / RMCP+ session' >&2; exit 1; fi\necho 'Chassis Power is on'\n`);
    await chmod(binary, 0o755);
    const runs = async (): Promise<number> => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
    let now = 5_000_000;
    const gate = new BmcGate({ maxConcurrent: 1, now: () => now });
    const driver = createIpmiDriver(
      { host: 'ipmi-1', address: '127.0.0.1', port: 16230, username: 'admin', password: 'gate-pass' },
      { gate, queue: new CommandQueue({ minIntervalMs: 0 }), ipmitool: { binary, retries: 1, retryDelayMs: 0 } },
    );
    let release!: () => void;
    const held = gate.limit.run(() => new Promise<void>((resolve) => (release = resolve)));
    const read = driver.powerState();
    await until('the run waits for the slot', () => gate.limit.queued === 1);
    assert.equal(await runs(), 0);
    release();
    await held;
    assert.equal(await read, 'on');

    await writeFile(mode, 'dead');
    await assert.rejects(driver.powerState(), BmcUnreachableError);
    const tried = await runs();
    await assert.rejects(driver.powerState(), (err: unknown) => err instanceof BmcUnreachableError && /host ipmi-1/.test(err.message) && /not tried/.test(err.message));
    assert.equal(await runs(), tried, 'no ipmitool run while the BMC backs off');
    await writeFile(mode, 'alive');
    now += 10 * 60_000;
    assert.equal(await driver.powerState(), 'on');
  });

  it('a hung BMC holds one slot only for its timeout, waits out its retries outside it, then backs off', async () => {
    const gate = new BmcGate({ maxConcurrent: 1 });
    const hole = await blackHole();
    const live = await redfish();
    // The hung BMC's wait before its retry lasts until the live BMC was served: were the slot held during the
    // wait, the live read could never finish and this test would hang.
    let liveDone: Promise<unknown> = Promise.resolve();
    let retryWaits = 0;
    const dead = redfishDriver('dead-1', { address: '127.0.0.1', port: hole.port }, gate, {
      http: { retries: 1, retryDelayMs: 10, timeoutMs: 300 },
      sleep: async () => {
        retryWaits++;
        await liveDone;
      },
    });
    const alive = redfishDriver('live-1', live, gate);

    const deadRead = dead.powerState();
    deadRead.catch(() => undefined); // awaited below; a failed assertion before must not leave it unhandled
    await until('the hung BMC took the connection', () => hole.connections() === 1);
    const liveRead = alive.powerState();
    liveDone = liveRead;
    await until('the live BMC waits for the slot', () => gate.limit.queued === 1);
    assert.equal(live.requests.length, 0, 'the timeout runs inside the slot');
    assert.equal(await liveRead, 'on', 'the live BMC is served between the hung one\'s attempts');
    await assert.rejects(deadRead, BmcUnreachableError);
    assert.equal(retryWaits, 1);

    const connections = hole.connections();
    await assert.rejects(dead.powerState(), (err: unknown) => err instanceof BmcUnreachableError && /host dead-1/.test(err.message) && /not tried/.test(err.message));
    assert.equal(hole.connections(), connections, 'a BMC that backs off is not even connected to');
    assert.equal(await alive.powerState(), 'on');
    assert.equal(gate.limit.running, 0);
  });
});
