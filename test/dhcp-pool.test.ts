// The dynamic pool: allocation rules over a fake clock, the lease file, and the live server with
// busybox udhcpc in network namespaces this test creates: the same unknown MAC keeps its address
// across a server restart, a real client's DECLINE (ARP conflict) and RELEASE, an exhausted pool.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LeasePool, type Lease, type LeaseClient } from '../src/serve/dhcp/lease-pool.ts';
import { LeaseStore } from '../src/serve/dhcp/lease-store.ts';
import { createLab, ip, spawnInNs, type Lab, type NsProcess, startDhcpRunner } from './fixtures/dhcp/netns.ts';
import { ReferencePool } from './fixtures/dhcp/reference-pool.ts';
import type { RunnerConfig } from './fixtures/dhcp/server-runner.ts';
import { mulberry32 } from './fixtures/prng.ts';

const A = '02:00:00:96:00:0a';
const B = '02:00:00:96:00:0b';
const none = (): boolean => false;
/** A client without option 61: its MAC is who it is. */
const mac = (m: string): LeaseClient => ({ leaseKey: m, mac: m });

function clockedPool(range = { start: '10.0.0.10', end: '10.0.0.13' }, leases: Lease[] = []): { pool: LeasePool; clock: { t: number }; changes: Lease[][] } {
  const clock = { t: 1_000_000 };
  const changes: Lease[][] = [];
  const pool = new LeasePool({ range, leaseSeconds: 100, offerHoldSeconds: 10, declineHoldSeconds: 50, leases, now: () => clock.t, onChange: (l) => changes.push([...l]) });
  return { pool, clock, changes };
}

describe('LeasePool', () => {
  it('gives each MAC its own address and the same one again', () => {
    const { pool } = clockedPool();
    assert.equal(pool.offer(mac(A), undefined, none), '10.0.0.10');
    assert.equal(pool.offer(mac(B), undefined, none), '10.0.0.11');
    assert.equal(pool.offer(mac(A), undefined, none), '10.0.0.10');
    assert.deepEqual(pool.request(mac(A), '10.0.0.10', none), { ip: '10.0.0.10', granted: true });
    assert.equal(pool.leaseOf(A)?.state, 'bound');
  });

  it('honours a requested address when free, and NAKs (offers another) one held by someone else', () => {
    const { pool } = clockedPool();
    assert.equal(pool.offer(mac(A), '10.0.0.12', none), '10.0.0.12');
    assert.deepEqual(pool.request(mac(B), '10.0.0.12', none), { ip: '10.0.0.10', granted: false });
    assert.equal(pool.leaseOf(B), undefined, 'a NAK binds nothing');
    assert.deepEqual(pool.request(mac(B), '10.0.0.99', none), { ip: '10.0.0.10', granted: false }, 'outside the pool');
  });

  it('an unanswered offer lapses; an expired lease is reused only after never-used addresses, oldest first', () => {
    const { pool, clock } = clockedPool({ start: '10.0.0.10', end: '10.0.0.11' });
    pool.offer(mac(A), undefined, none);
    clock.t += 11_000;
    pool.request(mac(B), '10.0.0.10', none); // A's offer lapsed
    assert.equal(pool.leaseOf(B)?.ip, '10.0.0.10');
    assert.equal(pool.leaseOf(A), undefined);
    pool.request(mac(A), '10.0.0.11', none);
    clock.t += 101_000; // both leases expired, B's first
    assert.equal(pool.offer(mac(A), undefined, none), '10.0.0.11', 'A gets its own expired address back');
    assert.equal(pool.offer(mac('02:00:00:96:00:0c'), undefined, none), '10.0.0.10', 'the longest-expired address goes to a newcomer');
  });

  it('an exhausted pool answers null, never throws', () => {
    const { pool } = clockedPool({ start: '10.0.0.10', end: '10.0.0.10' });
    pool.request(mac(A), '10.0.0.10', none);
    assert.equal(pool.offer(mac(B), undefined, none), null);
    assert.equal(pool.request(mac(B), '10.0.0.10', none), null);
  });

  it('a declined address stays out of use until the hold passes', () => {
    const { pool, clock } = clockedPool({ start: '10.0.0.10', end: '10.0.0.11' });
    pool.request(mac(A), '10.0.0.10', none);
    assert.equal(pool.decline(mac(B), '10.0.0.10'), false, 'only the holder can decline');
    assert.equal(pool.decline(mac(A), '10.0.0.10'), true);
    assert.equal(pool.offer(mac(A), undefined, none), '10.0.0.11');
    pool.request(mac(A), '10.0.0.11', none);
    assert.equal(pool.offer(mac(B), undefined, none), null);
    clock.t += 51_000;
    assert.equal(pool.offer(mac(B), undefined, none), '10.0.0.10');
  });

  it('RELEASE frees the address for others', () => {
    const { pool } = clockedPool({ start: '10.0.0.10', end: '10.0.0.10' });
    pool.request(mac(A), '10.0.0.10', none);
    assert.equal(pool.release(mac(B), '10.0.0.10'), false);
    assert.equal(pool.release(mac(A), '10.0.0.10'), true);
    assert.equal(pool.offer(mac(B), undefined, none), '10.0.0.10');
  });

  it('never offers an excluded (reserved) address, and drops a lease whose address became reserved', () => {
    const { pool } = clockedPool();
    pool.request(mac(A), '10.0.0.10', none);
    const reserved = (ip: string): boolean => ip === '10.0.0.10' || ip === '10.0.0.11';
    assert.equal(pool.offer(mac(A), undefined, reserved), '10.0.0.12');
    assert.deepEqual(pool.request(mac(B), '10.0.0.11', reserved), { ip: '10.0.0.13', granted: false });
  });

  it('a client identifier (option 61) is the client: one MAC with two identifiers holds two leases, one identifier on two MACs one', () => {
    const { pool } = clockedPool();
    const os = { leaseKey: 'id:ff00000001', mac: A };
    const otherOs = { leaseKey: 'id:ff00000002', mac: A };
    assert.deepEqual(pool.request(os, '10.0.0.10', none), { ip: '10.0.0.10', granted: true });
    assert.equal(pool.offer(otherOs, undefined, none), '10.0.0.11', 'same MAC, another identifier: another client');
    assert.equal(pool.offer(mac(A), undefined, none), '10.0.0.12', 'the MAC without an identifier is a third client');
    assert.equal(pool.offer({ leaseKey: 'id:ff00000001', mac: B }, undefined, none), '10.0.0.10', 'the identifier keeps its lease on another NIC');
    assert.equal(pool.leaseOf('id:ff00000001')?.mac, B, 'the lease records the MAC last seen');
    assert.deepEqual(pool.request(otherOs, '10.0.0.10', none), { ip: '10.0.0.11', granted: false }, 'another identifier cannot take it');
  });

  it('a legacy (v1, MAC-keyed) lease can be RELEASEd or DECLINEd by a client on its MAC under its identifier, not by others', () => {
    const legacy = (ip: string, m: string): Lease => ({ ip, client: m, mac: m, state: 'bound', expires: 2_000_000, legacy: true });
    const { pool } = clockedPool(undefined, [legacy('10.0.0.10', A), legacy('10.0.0.11', B)]);
    const a = { leaseKey: 'id:ff0a', mac: A };
    assert.equal(pool.release({ leaseKey: 'id:ff0a', mac: B }, '10.0.0.10'), false);
    assert.equal(pool.release(a, '10.0.0.10'), true);
    assert.equal(pool.leaseOf(a.leaseKey)?.ip, '10.0.0.10', 'remembered for the client that released it, re-keyed');
    assert.equal(pool.decline({ leaseKey: 'id:ff0b', mac: B }, '10.0.0.11'), true);
    assert.equal(pool.offer(mac(B), undefined, none), '10.0.0.12', 'the declined address rests');
  });

  it('hands out never-used addresses first even after thousands of clients, without walking the range each time', () => {
    const { pool } = clockedPool({ start: '10.1.0.0', end: '10.1.255.255' });
    for (let i = 0; i < 5000; i++) assert.equal(pool.offer(mac(`02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`), undefined, none), `10.1.${i >> 8}.${i & 255}`);
    assert.equal(pool.leases().length, 5000);
  });

  it('an exhausted pool of thousands under churn chooses exactly what a walk over every lease and address would', () => {
    // 3000 addresses, 4000 clients; offers, REQUESTs (some for another address: the client moves),
    // RELEASEs, DECLINEs, reservations inside the range coming and going, and a clock that stands still
    // (ties), creeps (addresses run out) and jumps (leases expire).
    const range = { start: '10.2.0.0', end: '10.2.11.183' };
    const ms = { lease: 300_000, offerHold: 10_000, declineHold: 60_000 };
    const clock = { t: 1_000_000 };
    const now = (): number => clock.t;
    const pool = new LeasePool({ range, leaseSeconds: ms.lease / 1000, offerHoldSeconds: ms.offerHold / 1000, declineHoldSeconds: ms.declineHold / 1000, now });
    const reference = new ReferencePool(range, ms, now);
    const rand = mulberry32(4011);
    const pick = (n: number): number => Math.floor(rand() * n);
    const clients = Array.from({ length: 5000 }, (_, i) => mac(`02:00:00:02:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`));
    const anyAddress = (): string => `10.2.${pick(12)}.${pick(256)}`; // sometimes just past the end
    const reserved = new Set<string>();
    const excluded = (ip: string): boolean => reserved.has(ip);
    const byIp = (leases: Lease[]): Lease[] => leases.sort((x, y) => x.ip.localeCompare(y.ip));

    for (let step = 0; step < 40_000; step++) {
      const client = clients[pick(clients.length)] ?? assert.fail();
      const what = rand();
      const at = `step ${step}`;
      if (what < 0.45) {
        const wanted = rand() < 0.1 ? anyAddress() : undefined;
        const offered = pool.offer(client, wanted, excluded);
        assert.equal(offered, reference.offer(client, wanted, excluded), at);
        if (offered !== null && rand() < 0.8) assert.deepEqual(pool.request(client, offered, excluded), reference.request(client, offered, excluded), at);
      } else if (what < 0.6) {
        const wanted = anyAddress();
        assert.deepEqual(pool.request(client, wanted, excluded), reference.request(client, wanted, excluded), at);
      } else if (what < 0.75) {
        const ip = rand() < 0.9 ? reference.leaseOf(client.leaseKey)?.ip ?? anyAddress() : anyAddress();
        assert.equal(pool.release(client, ip), reference.release(client, ip), at);
      } else if (what < 0.8) {
        const ip = reference.leaseOf(client.leaseKey)?.ip ?? anyAddress();
        assert.equal(pool.decline(client, ip), reference.decline(client, ip), at);
      } else if (what < 0.81) {
        const ip = anyAddress();
        if (!reserved.delete(ip)) reserved.add(ip);
      }
      // Stretches where time creeps (the pool runs out: nothing expires) between ones where leases expire.
      const tick = rand();
      clock.t += tick < 0.3 ? 0 : tick < 0.9998 ? pick(3) : 20_000 + pick(400_000);
      if (step % 4000 === 0) assert.deepEqual(byIp(pool.leases()), byIp(reference.all()), at);
    }
    assert.deepEqual(byIp(pool.leases()), byIp(reference.all()));
    // Every rule was exercised, many times.
    for (const [rule, count] of Object.entries(reference.rules)) assert.ok(count >= 20, `${rule}: ${count} in ${JSON.stringify(reference.rules)}`);
  });

  it('a new range forgets leases outside it and reports every change', () => {
    const { pool, changes } = clockedPool();
    pool.request(mac(A), '10.0.0.13', none);
    pool.configure({ start: '10.0.0.10', end: '10.0.0.12' }, 100);
    assert.equal(pool.leaseOf(A), undefined);
    assert.deepEqual(changes.at(-1), []);
  });
});

describe('LeaseStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fdhcp-store-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips leases through an atomically replaced file', async () => {
    const file = join(dir, 'dhcp-leases.json');
    const store = new LeaseStore(file);
    assert.deepEqual(await store.load(), [], 'no file yet');
    const { pool } = clockedPool(undefined);
    const saving = new LeasePool({ range: { start: '10.0.0.10', end: '10.0.0.13' }, leaseSeconds: 100, onChange: (l) => store.save(l) });
    for (let i = 0; i < 50; i += 1) saving.offer(mac(`02:00:00:00:01:${i.toString(16).padStart(2, '0')}`), undefined, none);
    saving.request(mac(A), '10.0.0.12', none);
    await store.flush();
    assert.deepEqual(readdirSync(dir), ['dhcp-leases.json'], 'no temporary file left behind');
    const loaded = await new LeaseStore(file).load();
    assert.deepEqual(loaded.sort((x, y) => x.ip.localeCompare(y.ip)), saving.leases().sort((x, y) => x.ip.localeCompare(y.ip)));
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).format, 'forseti-dhcp-leases/v2');
    void pool;
  });

  it('every lease ACKed before a clean stop is on disk: the pool is saved through its live list, the last state wins', async () => {
    const file = join(dir, 'clean-stop.json');
    const store = new LeaseStore(file);
    const pool = new LeasePool({ range: { start: '10.0.1.0', end: '10.0.1.255' }, leaseSeconds: 100, onChange: (l) => store.save(l) });
    const acked: string[] = [];
    for (let i = 0; i < 200; i++) {
      const who = mac(`02:00:00:00:02:${i.toString(16).padStart(2, '0')}`);
      const ip = pool.offer(who, undefined, none);
      assert.ok(ip);
      if (pool.request(who, ip, none)?.granted) acked.push(ip);
    }
    await store.flush(); // what the agent and the runner do after stopping the server
    const restarted = new LeasePool({ range: { start: '10.0.1.0', end: '10.0.1.255' }, leaseSeconds: 100, leases: await new LeaseStore(file).load() });
    assert.deepEqual(restarted.leases().filter((l) => l.state === 'bound').map((l) => l.ip).sort(), acked.sort());
    assert.equal(restarted.leaseOf('02:00:00:00:02:05')?.ip, '10.0.1.5');
  });

  it('a v1 lease file (leases by MAC) still loads: each lease belongs to its MAC', async () => {
    const file = join(dir, 'v1.json');
    const v1 = [
      { ip: '10.0.0.10', mac: A, state: 'bound', expires: 2_000_000 },
      { ip: '10.0.0.11', mac: B, state: 'declined', expires: 2_000_000 },
    ];
    writeFileSync(file, JSON.stringify({ format: 'forseti-dhcp-leases/v1', leases: v1 }));
    const loaded = await new LeaseStore(file).load();
    assert.deepEqual(loaded, v1.map((l) => ({ ...l, client: l.mac, legacy: true })));
    const { pool } = clockedPool(undefined, loaded);
    assert.equal(pool.leaseOf(A)?.ip, '10.0.0.10');
    assert.equal(pool.offer(mac(A), undefined, none), '10.0.0.10', 'the machine keeps its address after the upgrade');
    assert.equal(pool.offer(mac(B), undefined, none), '10.0.0.12', 'the declined address still rests');
  });

  it('a v1 lease still serves its MAC when the client now sends a client identifier other than 01+MAC', async () => {
    const file = join(dir, 'v1-repro.json');
    writeFileSync(file, JSON.stringify({ format: 'forseti-dhcp-leases/v1', leases: [{ ip: '10.0.0.120', mac: A, state: 'bound', expires: 2_000_000 }] }));
    const { pool } = clockedPool({ start: '10.0.0.100', end: '10.0.0.130' }, await new LeaseStore(file).load());
    const networkd = { leaseKey: 'id:ff0011223300010001aabbccdd', mac: A };
    assert.equal(pool.offer(networkd, '10.0.0.120', none), '10.0.0.120');
    assert.deepEqual(pool.request(networkd, '10.0.0.120', none), { ip: '10.0.0.120', granted: true });
  });

  it('a v1 lease is its MAC\'s whatever client identifier that MAC sends now, and is re-keyed to it (kept as legacy across restarts until then)', async () => {
    const file = join(dir, 'v1-clientid.json');
    const range = { start: '10.0.0.100', end: '10.0.0.130' };
    const t0 = 1_000_000;
    writeFileSync(file, JSON.stringify({ format: 'forseti-dhcp-leases/v1', leases: [
      { ip: '10.0.0.120', mac: A, state: 'bound', expires: t0 + 50_000 },
      { ip: '10.0.0.121', mac: B, state: 'bound', expires: t0 + 50_000 },
    ] }));
    const networkd = { leaseKey: 'id:ff0011223300010001aabbccdd', mac: A }; // systemd-networkd: type 255, IAID + DUID
    const stranger = { leaseKey: 'id:ff99', mac: '02:00:00:96:00:0c' };
    const restart = async (): Promise<{ pool: LeasePool; store: LeaseStore }> => {
      const store = new LeaseStore(file);
      const pool = new LeasePool({ range, leaseSeconds: 100, leases: await store.load(), now: () => t0, onChange: (l) => store.save(l) });
      return { pool, store };
    };

    // A first restart writes the v2 file (some other client changes the pool); the next one must still know.
    const first = await restart();
    assert.equal(first.pool.offer(stranger, '10.0.0.120', none), '10.0.0.100', 'another client cannot take the MAC\'s address');
    await first.store.flush();
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { format: string; leases: Lease[] };
    assert.equal(saved.format, 'forseti-dhcp-leases/v2');
    assert.equal(saved.leases.find((l) => l.ip === '10.0.0.120')?.legacy, true, 'legacy is persisted until re-keyed');

    const { pool, store } = await restart();
    assert.equal(pool.offer(networkd, '10.0.0.120', none), '10.0.0.120', 'a DISCOVER asking for its address gets it');
    assert.equal(pool.leaseOf(networkd.leaseKey)?.state, 'bound', 'a live binding stays bound when re-offered');
    assert.deepEqual(pool.request(networkd, '10.0.0.120', none), { ip: '10.0.0.120', granted: true }, 'renewal is ACKed, not NAKed');
    assert.deepEqual(pool.leaseOf(networkd.leaseKey), { ip: '10.0.0.120', client: networkd.leaseKey, mac: A, state: 'bound', expires: t0 + 100_000 });
    assert.equal(pool.leaseOf(A), undefined, 'the MAC-keyed lease is gone: re-keyed, not duplicated');
    assert.equal(pool.leases().length, 3);
    assert.equal(pool.offer({ leaseKey: 'id:ff01', mac: A }, '10.0.0.120', none), '10.0.0.101', 'once re-keyed, another identifier on the same MAC is another client');
    // A legacy lease is found without asking for its address too, and a client without option 61 is its MAC as before.
    assert.equal(pool.offer({ leaseKey: 'id:ff02', mac: B }, undefined, none), '10.0.0.121');
    await store.flush();
    const after = JSON.parse(readFileSync(file, 'utf8')) as { leases: Lease[] };
    assert.ok(after.leases.every((l) => l.legacy === undefined), 'no legacy lease is left once each MAC came back');
  });

  it('a damaged file is logged and read as empty', async () => {
    const file = join(dir, 'damaged.json');
    writeFileSync(file, '{"format":"forseti-dhcp-leases/v1","leases":[');
    const warnings: string[] = [];
    const store = new LeaseStore(file, { info() {}, debug() {}, warn: (_o, m) => warnings.push(m) });
    assert.deepEqual(await store.load(), []);
    assert.equal(warnings.length, 1);
  });
});

const canRun = process.getuid?.() === 0 && hasCommand('ip') && hasCommand('busybox');
function hasCommand(cmd: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true; } catch { return false; }
}

describe('pool server with busybox udhcpc', { skip: canRun ? false : 'needs root, iproute2 and busybox' }, () => {
  const SERVER_IP = '10.96.0.1';
  const dir = mkdtempSync(join(tmpdir(), 'fdhcp-pool-'));
  let config: RunnerConfig = {
    serverIp: SERVER_IP,
    subnet: { network: '10.96.0.0', prefix: 24 },
    reservations: { '02:00:00:96:00:01': { ip: '10.96.0.101', leaseSeconds: 600 } },
    pool: { start: '10.96.0.100', end: '10.96.0.103', leaseSeconds: 600, leaseFile: join(dir, 'dhcp-leases.json') },
  };
  let lab: Lab | undefined;
  let server: NsProcess | undefined;
  type Line = { event: string; action?: string; mac?: string; msg?: string };
  /** The server runs in its own process: wait for its line rather than race it. */
  const serverSaid = async (pred: (e: Line) => boolean, what: string): Promise<void> => {
    assert.ok(server);
    await server.waitForLine((l) => pred(JSON.parse(l) as Line), what);
  };

  async function startServer(): Promise<void> {
    assert.ok(lab);
    server = await startDhcpRunner(lab.server, config);
  }
  async function stopServer(): Promise<void> {
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGTERM');
      assert.equal(await server.exited, 0);
    }
  }
  /**
   * Runs udhcpc as `mac`; resolves with the address it bound, or null when it got none. With `release`,
   * it stays up once bound and is stopped with SIGTERM, which under -R sends a RELEASE (with -q it would not).
   */
  async function udhcpc(mac: string, opts: { arp?: boolean; release?: boolean; clientId?: string; requestIp?: string } = {}): Promise<string | null> {
    assert.ok(lab);
    ip('-n', lab.client, 'addr', 'flush', 'dev', lab.clientIf);
    ip('-n', lab.client, 'link', 'set', lab.clientIf, 'down');
    ip('-n', lab.client, 'link', 'set', lab.clientIf, 'address', mac);
    ip('-n', lab.client, 'link', 'set', lab.clientIf, 'up');
    const script = join(dir, 'script.sh');
    // Configures the address like a real client would, so a RELEASE can be sent from it.
    writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && ip addr add "$ip/$mask" dev "$interface"\nexit 0\n', { mode: 0o755 });
    const args = ['busybox', 'udhcpc', '-i', lab.clientIf, '-f', '-n', '-t', '3', '-T', '1', '-A', '1', '-s', script];
    if (opts.arp) args.push('-a');
    if (opts.clientId) args.push('-x', `0x3d:${opts.clientId}`);
    if (opts.requestIp) args.push('-r', opts.requestIp);
    args.push(...(opts.release ? ['-R'] : ['-q']));
    const p = spawnInNs(lab.client, ['sh', '-c', 'exec "$@" 2>&1', 'sh', ...args]); // udhcpc reports on stderr
    const lease = /lease of (\S+) obtained/;
    if (opts.release) {
      await p.waitForLine((l) => lease.test(l), `udhcpc ${mac} bound`);
      p.child.kill('SIGTERM');
    }
    const code = await p.exited;
    if (!opts.release && code !== 0) return null;
    // The last lease counts: with -a, udhcpc may decline a first one.
    return p.lines.map((l) => lease.exec(l)?.[1]).filter((a) => a !== undefined).at(-1) ?? null;
  }

  before(async () => {
    lab = createLab({ serverCidr: `${SERVER_IP}/24`, clientMac: A });
    await startServer();
  });
  after(async () => {
    await stopServer();
    lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an unknown MAC keeps its address across a server restart; reserved addresses are skipped', async () => {
    assert.equal(await udhcpc(A), '10.96.0.100');
    await stopServer();
    await startServer();
    assert.equal(await udhcpc(B), '10.96.0.102', '.100 is still A\'s, .101 is reserved');
    assert.equal(await udhcpc(A), '10.96.0.100');
  });

  it('a client that finds its offered address in use DECLINEs it and gets another', async () => {
    assert.ok(lab);
    ip('-n', lab.server, 'addr', 'add', '10.96.0.103/24', 'dev', lab.serverIf); // answers udhcpc's ARP probe
    try {
      assert.equal(await udhcpc('02:00:00:96:00:0c', { arp: true }), null, 'the only free address is in use');
    } finally {
      ip('-n', lab.server, 'addr', 'del', '10.96.0.103/24', 'dev', lab.serverIf);
    }
    await serverSaid((e) => e.action === 'declined' && e.mac === '02:00:00:96:00:0c', 'DECLINE handled');
  });

  it('an exhausted pool is logged and answered with silence; a RELEASE frees an address', async () => {
    assert.equal(await udhcpc('02:00:00:96:00:0d'), null);
    await serverSaid((e) => e.msg === 'DHCP pool exhausted' && e.mac === '02:00:00:96:00:0d', 'exhaustion logged');
    assert.equal(await udhcpc(B, { release: true }), '10.96.0.102', 'B binds and releases on exit');
    await serverSaid((e) => e.action === 'released' && e.mac === B, 'RELEASE handled');
    assert.equal(await udhcpc('02:00:00:96:00:0d'), '10.96.0.102');
    assert.equal(server?.child.exitCode, null, 'the server is still running');
  });

  it('udhcpc with client identifiers: one NIC with two identifiers gets two addresses, an identifier keeps its address on another NIC and across a restart', async () => {
    assert.ok(config.pool);
    await stopServer();
    config = { ...config, pool: { ...config.pool, start: '10.96.0.110', end: '10.96.0.119', leaseFile: join(dir, 'by-client-id.json') } };
    await startServer();
    const first = 'ff00000001000100012b4c5d6e020000960001';
    const second = 'ff00000002000100012b4c5d6e020000960001';
    assert.equal(await udhcpc(A, { clientId: first }), '10.96.0.110');
    assert.equal(await udhcpc(A, { clientId: second }), '10.96.0.111', 'same MAC, another identifier');
    assert.equal(await udhcpc(A), '10.96.0.112', 'udhcpc\'s own identifier (01 + MAC) is the MAC: a third client');
    await stopServer();
    await startServer();
    assert.equal(await udhcpc(B, { clientId: first }), '10.96.0.110', 'the identifier, now on another NIC, after a restart');
    assert.equal(await udhcpc(A, { clientId: second }), '10.96.0.111');
  });

  it('after an upgrade from a v1 lease file, udhcpc sending a type-255 identifier keeps its MAC\'s address, across a further restart', async () => {
    assert.ok(config.pool);
    await stopServer();
    const leaseFile = join(dir, 'from-v1.json');
    writeFileSync(leaseFile, JSON.stringify({ format: 'forseti-dhcp-leases/v1', leases: [{ ip: '10.96.0.125', mac: A, state: 'bound', expires: Date.now() + 600_000 }] }));
    config = { ...config, pool: { ...config.pool, start: '10.96.0.120', end: '10.96.0.129', leaseFile } };
    await startServer();
    const networkd = 'ff00000003000100012b4c5d6e020000960001';
    assert.equal(await udhcpc(B), '10.96.0.120', 'another machine does not get it (and the file is rewritten as v2)');
    await stopServer();
    await startServer();
    assert.equal(await udhcpc(A, { clientId: networkd, requestIp: '10.96.0.125' }), '10.96.0.125');
    assert.equal(await udhcpc(A, { clientId: networkd }), '10.96.0.125', 'now under its identifier');
  });
});
