// The DHCP server against real clients (busybox udhcpc, ISC dhclient) and crafted packets, all
// inside two network namespaces this test creates and deletes: server side 10.99.0.1/24 on one
// end of a veth pair, clients on the other end.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as O from '../src/serve/dhcp/options.ts';
import { Opt } from '../src/serve/dhcp/options.ts';
import { BootOp, chaddrFromMac, emptyPacket, encodeDhcpPacket, parseDhcpPacket } from '../src/serve/dhcp/packet.ts';
import type { DhcpAnswer, DhcpExchange } from '../src/serve/dhcp/types.ts';
import { createDhcpServer } from '../src/serve/dhcp/server.ts';
import { DhcpBindError, DhcpConfigError } from '../src/serve/dhcp/errors.ts';
import { createLab, ip, spawnInNs, tsxCommand, type Lab, type NsProcess, stopNsProcess, startDhcpRunner } from './fixtures/dhcp/netns.ts';
import type { ProbeConfig } from './fixtures/dhcp/probe.ts';
import { freeUdpPort } from './fixtures/free-port.ts';
import type { RunnerConfig } from './fixtures/dhcp/server-runner.ts';

/** Loopback ports for the runtime-error tests' server and client, chosen by the kernel. */
const [SERVER_PORT, CLIENT_PORT] = [await freeUdpPort(), await freeUdpPort()];

const SERVER_IP = '10.99.0.1';
const CLIENT_MAC = '02:00:00:99:00:10';
const PROBE_MAC = '02:00:00:99:00:20';
const RELAYED_MAC = '02:00:00:99:00:30';
const UNKNOWN_MAC = '02:00:00:99:00:99';
const PROBE_IP = '10.99.0.200';
const BROADCAST = '10.99.0.255';

const hostAnswer: DhcpAnswer = {
  ip: '10.99.0.50', leaseSeconds: 3600, router: SERVER_IP, dns: ['10.99.0.1', '10.99.0.2'], hostname: 'node-a', domain: 'lab.test',
  bootFile: 'ipxe.efi', ipxeNoProxyDhcp: true,
};
const runnerConfig: RunnerConfig = {
  serverIp: SERVER_IP,
  subnet: { network: '10.99.0.0', prefix: 24 },
  // The probe plays the relay for RELAYED_MAC.
  relays: [PROBE_IP],
  reservations: {
    [CLIENT_MAC]: hostAnswer,
    [PROBE_MAC]: { ip: PROBE_IP, leaseSeconds: 600 },
    [RELAYED_MAC]: { ip: '10.50.0.10', prefix: 24, leaseSeconds: 600, router: '10.50.0.1' },
  },
};

const haveCommand = (cmd: string): boolean => {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true; } catch { return false; }
};
const canRun = process.getuid?.() === 0 && haveCommand('ip');
const SKIP_WHY = canRun ? false : 'needs root and iproute2 to create network namespaces';

interface ServerLine { event: string; action?: string; reason?: string; xid?: number; mac?: string; level?: string; msg?: string; sentTo?: { address: string; port: number }; ip?: string }
interface ReplyLine { event: string; xid: number; type?: string; yiaddr: string; ciaddr: string; siaddr: string; file: string; serverId?: string; lease?: number; mask?: string; from: string; flags: number; optionCodes: number[] }

describe('server setup errors', () => {
  const policy = { answer: () => null };
  it('a server address outside its subnet is a DhcpConfigError', () => {
    assert.throws(() => createDhcpServer({ serverIp: '10.0.0.1', subnet: { network: '10.1.0.0', prefix: 24 }, policy }), DhcpConfigError);
    assert.throws(() => createDhcpServer({ serverIp: '10.0.0.1', subnet: { network: '10.0.0.0', prefix: 33 }, policy }), DhcpConfigError);
  });
  it('an address the host does not have fails start() with DhcpBindError', async () => {
    // 192.0.2.1 is TEST-NET-1: binding fails with EADDRNOTAVAIL; nothing is ever sent.
    const server = createDhcpServer({ serverIp: '127.0.0.1', subnet: { network: '127.0.0.0', prefix: 8 }, bindAddress: '192.0.2.1', port: await freeUdpPort(), policy });
    await assert.rejects(server.start(), DhcpBindError);
    await server.stop();
  });
});

describe('runtime socket errors (loopback, ports the kernel chose)', () => {
  const MAC = '02:00:00:27:00:01';
  /** The server's sockets, as created: a runtime error cannot be provoked on demand, so the test emits one as libuv would. */
  async function started(): Promise<{ server: ReturnType<typeof createDhcpServer>; sockets: Socket[]; warnings: string[] }> {
    const sockets: Socket[] = [];
    const onSocket = (m: unknown): void => { sockets.push((m as { socket: Socket }).socket); };
    const warnings: string[] = [];
    const server = createDhcpServer({
      serverIp: '127.0.0.1', subnet: { network: '127.0.0.0', prefix: 8 }, bindAddress: '127.0.0.1', port: SERVER_PORT, clientPort: CLIENT_PORT,
      policy: { answer: (c) => (c.mac === MAC ? { ip: '127.0.0.1', leaseSeconds: 600 } : null) },
      log: { info() {}, debug() {}, warn: (_o, m) => warnings.push(m) },
    });
    subscribe('udp.socket', onSocket);
    try {
      await server.start();
    } finally {
      unsubscribe('udp.socket', onSocket);
    }
    assert.equal(sockets.length, 1);
    return { server, sockets, warnings };
  }

  it('an error on the socket after binding is logged and the server keeps answering; stop() still resolves', async () => {
    const { server, sockets, warnings } = await started();
    const client = createSocket('udp4');
    try {
      client.bind(CLIENT_PORT, '127.0.0.1');
      await once(client, 'listening');
      sockets[0]?.emit('error', Object.assign(new Error('send EPERM 10.0.0.5:68'), { code: 'EPERM', errno: -1, syscall: 'send' }));
      assert.ok(warnings.includes('DHCP socket error'), `warnings: ${warnings.join('; ')}`);
      const replied = once(client, 'message', { signal: AbortSignal.timeout(5_000) }); // safety net only: the answer comes at once
      client.send(Buffer.from(packet('inform', 0x7001, MAC, { ciaddr: '127.0.0.1' }), 'hex'), SERVER_PORT, '127.0.0.1');
      const [reply] = (await replied) as [Buffer];
      assert.equal(reply.readUInt32BE(4), 0x7001, 'the INFORM is answered after the error');
    } finally {
      client.close();
      await server.stop();
    }
  });

  it('stop() resolves when a socket is already closed', async () => {
    const { server, sockets } = await started();
    await new Promise<void>((resolve) => sockets[0]?.close(() => resolve()));
    await server.stop();
    await server.start(); // and the port is free again
    await server.stop();
  });
});

describe('reflection: replies go only to declared relays and to addresses of the served subnet (loopback, ephemeral ports)', () => {
  // The served subnet is 127.0.0.0/24; 127.0.1.20 stands for a victim elsewhere, 127.0.2.30 for a host whose reserved
  // address lies outside the subnet (the answer gives its prefix).
  const HOST = '02:00:00:19:00:01';
  const FAR = '02:00:00:19:00:02';
  const RELAYED = '02:00:00:19:00:03';
  const RELAY = '127.0.0.7';
  const STRANGER_RELAY = '127.0.0.8';
  const VICTIM = '127.0.1.20';
  const answers: Record<string, DhcpAnswer> = {
    [HOST]: { ip: '127.0.0.20', leaseSeconds: 600 },
    [FAR]: { ip: '127.0.2.30', prefix: 24, leaseSeconds: 600 },
    [RELAYED]: { ip: '10.50.0.10', prefix: 24, leaseSeconds: 600 },
  };
  const sockets: Socket[] = [];
  const received = new Map<string, Buffer[]>();
  const warnings: Array<{ msg: string; fields: Record<string, unknown> }> = [];
  const exchanges: DhcpExchange[] = [];
  let server: ReturnType<typeof createDhcpServer>;
  let serverPort = 0;
  let clientPort = 0;

  /** A socket at address:port that keeps what it receives (port 0: the kernel's choice). */
  async function listener(address: string, port: number): Promise<number> {
    const s = createSocket('udp4');
    sockets.push(s);
    received.set(address, []);
    s.on('message', (m: Buffer) => received.get(address)?.push(m));
    s.bind(port, address);
    await once(s, 'listening');
    return s.address().port;
  }
  /** What `address` has received so far, by xid. */
  const xids = (address: string): number[] => (received.get(address) ?? []).map((m) => m.readUInt32BE(4));
  /** Sends `hex` to the server (from the first relay's socket) and waits until the server has handled it. */
  async function send(hex: string, xid: number): Promise<DhcpExchange> {
    const s = sockets[0];
    assert.ok(s);
    s.send(Buffer.from(hex, 'hex'), serverPort, '127.0.0.1');
    for (let i = 0; i < 500; i++) {
      const e = exchanges.find((x) => x.client.xid === xid);
      if (e) return e;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`the server never handled xid ${xid}`);
  }
  /** Waits until `address` received a reply with `xid` (bounded). */
  async function replyAt(address: string, xid: number): Promise<Buffer> {
    for (let i = 0; i < 500; i++) {
      const m = (received.get(address) ?? []).find((b) => b.readUInt32BE(4) === xid);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no reply with xid ${xid} reached ${address}`);
  }

  before(async () => {
    // The relays listen on the server's port, as real ones do (RFC 2131 4.1: the reply goes to giaddr:67).
    serverPort = await listener(RELAY, 0);
    await listener(STRANGER_RELAY, serverPort);
    clientPort = await listener('127.0.0.20', 0);
    await listener(VICTIM, clientPort);
    await listener('127.0.2.30', clientPort);
    server = createDhcpServer({
      serverIp: '127.0.0.1', subnet: { network: '127.0.0.0', prefix: 24 }, bindAddress: '127.0.0.1', port: serverPort, clientPort,
      relays: [RELAY],
      policy: { answer: (c) => answers[c.mac] ?? null },
      log: { info() {}, debug() {}, warn: (fields, msg) => warnings.push({ msg, fields: fields as Record<string, unknown> }) },
      onExchange: (e) => exchanges.push(e),
    });
    await server.start();
  });
  after(async () => {
    await server?.stop();
    for (const s of sockets) s.close();
  });

  it('a DISCOVER relayed by a declared relay is answered to giaddr:67; one naming any other giaddr is dropped, one warning for several', async () => {
    await send(packet('discover', 0x1901, RELAYED, { giaddr: RELAY }), 0x1901);
    const offer = parseDhcpPacket(await replyAt(RELAY, 0x1901));
    assert.equal(offer.yiaddr, '10.50.0.10');
    for (let i = 0; i < 5; i++) {
      const e = await send(packet('discover', 0x1910 + i, RELAYED, { giaddr: STRANGER_RELAY }), 0x1910 + i);
      assert.deepEqual([e.action, e.reason, e.sentTo], ['ignored', 'undeclared-relay', undefined]);
    }
    // Something sent after them reaches its relay: had the stranger been answered, that would have arrived first.
    await send(packet('discover', 0x1920, RELAYED, { giaddr: RELAY }), 0x1920);
    await replyAt(RELAY, 0x1920);
    assert.deepEqual(xids(STRANGER_RELAY), []);
    const lines = warnings.filter((w) => /relayed DHCP request dropped: its giaddr is not a declared relay/.test(w.msg));
    assert.equal(lines.length, 1, 'one line for five forged relays');
    assert.equal(lines[0]?.fields['giaddr'], STRANGER_RELAY);
  });

  it('a server that declares no relays drops every relayed request', async () => {
    const seen: DhcpExchange[] = [];
    const port = await freeUdpPort();
    const bare = createDhcpServer({
      serverIp: '127.0.0.1', subnet: { network: '127.0.0.0', prefix: 24 }, bindAddress: '127.0.0.1', port, clientPort,
      policy: { answer: (c) => answers[c.mac] ?? null }, onExchange: (e) => seen.push(e),
    });
    await bare.start();
    try {
      sockets[0]?.send(Buffer.from(packet('discover', 0x1930, RELAYED, { giaddr: RELAY }), 'hex'), port, '127.0.0.1');
      for (let i = 0; i < 500 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(seen.map((e) => [e.action, e.reason]), [['ignored', 'undeclared-relay']]);
    } finally {
      await bare.stop();
    }
  });

  it('a unicast to ciaddr: inside the served subnet, or the address the client is given; never to another address a request names', async () => {
    // RENEWING from the served subnet: to ciaddr.
    assert.deepEqual((await send(packet('request', 0x1940, HOST, { ciaddr: '127.0.0.20' }), 0x1940)).sentTo, { address: '127.0.0.20', port: clientPort });
    await replyAt('127.0.0.20', 0x1940);
    // A host whose reserved address lies outside the subnet, renewing it: to that address.
    assert.deepEqual((await send(packet('request', 0x1941, FAR, { ciaddr: '127.0.2.30' }), 0x1941)).sentTo, { address: '127.0.2.30', port: clientPort });
    await replyAt('127.0.2.30', 0x1941);
    // Forged: the host's address asked for in option 50, a victim's in ciaddr; an INFORM from the victim's address.
    const forged = await send(packet('request', 0x1942, HOST, { requestedIp: '127.0.0.20', ciaddr: VICTIM }), 0x1942);
    assert.deepEqual([forged.action, forged.reason], ['ignored', 'ciaddr-off-subnet']);
    const inform = await send(packet('inform', 0x1943, FAR, { ciaddr: VICTIM }), 0x1943);
    assert.deepEqual([inform.action, inform.reason], ['ignored', 'ciaddr-off-subnet']);
    // An INFORM is answered to its ciaddr inside the subnet; sent after the forged ones, it arrives after them.
    await send(packet('inform', 0x1944, HOST, { ciaddr: '127.0.0.20' }), 0x1944);
    await replyAt('127.0.0.20', 0x1944);
    assert.deepEqual(xids(VICTIM), []);
    assert.equal(warnings.filter((w) => /ciaddr is outside the served subnet/.test(w.msg)).length, 1);
  });
});

describe('DHCP server in a network namespace', { skip: SKIP_WHY }, () => {
  let lab: Lab | undefined;
  let server: NsProcess | undefined;
  const tmp = mkdtempSync(join(tmpdir(), 'fdhcp-'));
  const serverLines = (): ServerLine[] => (server?.lines ?? []).map((l) => JSON.parse(l) as ServerLine);
  const exchange = async (xid: number): Promise<ServerLine> => {
    assert.ok(server);
    return JSON.parse(await server.waitForLine((l) => { const e = JSON.parse(l) as ServerLine; return e.event === 'exchange' && e.xid === xid; }, `exchange for xid ${xid}`)) as ServerLine;
  };

  before(async () => {
    lab = createLab({ serverCidr: `${SERVER_IP}/24`, clientMac: CLIENT_MAC });
    server = await startDhcpRunner(lab.server, runnerConfig);
  });

  after(async () => {
    await stopNsProcess(server);
    lab?.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('busybox udhcpc gets its reserved address and every option', async () => {
    assert.ok(lab);
    assert.ok(haveCommand('busybox'), 'busybox (udhcpc) is required for this test: apt-get install -y busybox');
    const out = join(tmp, 'udhcpc');
    const script = writeScript('udhcpc.sh', `env > ${out}.tmp && mv ${out}.tmp ${out}.$1`);
    const udhcpc = spawnInNs(lab.client, ['busybox', 'udhcpc', '-i', lab.clientIf, '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', script]);
    assert.equal(await udhcpc.exited, 0, udhcpc.stderr());
    const env = readEnv(`${out}.bound`);
    assert.equal(env.ip, '10.99.0.50');
    assert.equal(env.subnet, '255.255.255.0');
    assert.equal(env.broadcast, BROADCAST);
    assert.equal(env.router, SERVER_IP);
    assert.equal(env.dns, '10.99.0.1 10.99.0.2');
    assert.equal(env.lease, '3600');
    assert.equal(env.serverid, SERVER_IP);
    assert.equal(env.hostname, 'node-a');
    assert.equal(env.domain, 'lab.test');
    assert.equal(env.boot_file, 'ipxe.efi', 'BOOTP file field');
    assert.equal(env.bootfile, 'ipxe.efi', 'option 67');
    assert.equal(env.siaddr, SERVER_IP);
    assert.equal(env.opt175, 'b00101');
    const mine = serverLines().filter((e) => e.event === 'exchange' && e.mac === CLIENT_MAC).map((e) => e.action);
    assert.deepEqual(mine, ['offer', 'ack']);
  });

  it('ISC dhclient gets its reserved address', { skip: haveCommand('dhclient') ? false : 'dhclient not installed' }, async () => {
    assert.ok(lab);
    const out = join(tmp, 'dhclient');
    // dhclient gives its script a clean environment, so the output path is baked in.
    const script = writeScript('dhclient.sh', `env > ${out}.tmp && mv ${out}.tmp ${out}.$reason`);
    const dhclient = spawnInNs(lab.client, ['dhclient', '-d', '-1', '-sf', script, '-lf', join(tmp, 'dhclient.leases'), '-pf', join(tmp, 'dhclient.pid'), lab.clientIf]);
    try {
      await waitForFile(`${out}.BOUND`, dhclient);
    } finally {
      dhclient.child.kill('SIGTERM');
      await dhclient.exited;
    }
    const env = readEnv(`${out}.BOUND`);
    assert.equal(env.new_ip_address, '10.99.0.50');
    assert.equal(env.new_subnet_mask, '255.255.255.0');
    assert.equal(env.new_routers, SERVER_IP);
    assert.equal(env.new_domain_name_servers, '10.99.0.1 10.99.0.2');
    assert.equal(env.new_dhcp_server_identifier, SERVER_IP);
    assert.equal(env.new_dhcp_lease_time, '3600');
    assert.equal(env.new_host_name, 'node-a');
    assert.equal(env.new_filename, 'ipxe.efi');
  });

  describe('crafted packets from a client with an address', () => {
    before(() => { if (lab) ip('-n', lab.client, 'addr', 'add', `${PROBE_IP}/24`, 'dev', lab.clientIf); });
    after(() => { if (lab) ip('-n', lab.client, 'addr', 'flush', 'dev', lab.clientIf); });

    it('a REQUEST naming another server gets no answer', async () => {
      const foreign = packet('request', 0x1001, PROBE_MAC, { serverId: '10.99.0.254', requestedIp: PROBE_IP });
      const marker = packet('discover', 0x1002, PROBE_MAC);
      const replies = await probe({ bindPort: 68, sends: [toBroadcast(foreign), toBroadcast(marker)], untilXid: 0x1002 });
      assert.deepEqual(replies.map((r) => [r.xid, r.type]), [[0x1002, 'offer']]);
      const e = await exchange(0x1001);
      assert.deepEqual([e.action, e.reason], ['ignored', 'other-server']);
    });

    it('a host the policy refuses gets no answer, logged at debug', async () => {
      const unknown = packet('discover', 0x2001, UNKNOWN_MAC);
      const marker = packet('discover', 0x2002, PROBE_MAC);
      const replies = await probe({ bindPort: 68, sends: [toBroadcast(unknown), toBroadcast(marker)], untilXid: 0x2002 });
      assert.deepEqual(replies.map((r) => r.xid), [0x2002]);
      const e = await exchange(0x2001);
      assert.deepEqual([e.action, e.reason], ['ignored', 'policy-refused']);
      assert.ok(serverLines().some((l) => l.event === 'log' && l.level === 'debug' && l.mac === UNKNOWN_MAC));
    });

    it('OFFER is a directed broadcast with the reservation', async () => {
      const replies = await probe({ bindPort: 68, sends: [toBroadcast(packet('discover', 0x3001, PROBE_MAC))], untilXid: 0x3001 });
      const [offer] = replies;
      assert.ok(offer);
      assert.equal(offer.type, 'offer');
      assert.equal(offer.yiaddr, PROBE_IP);
      assert.equal(offer.serverId, SERVER_IP);
      assert.equal(offer.lease, 600);
      assert.equal(offer.mask, '255.255.255.0');
      assert.equal(offer.from, SERVER_IP);
      assert.deepEqual((await exchange(0x3001)).sentTo, { address: BROADCAST, port: 68 });
    });

    it('INIT-REBOOT for the wrong address gets a NAK', async () => {
      const req = packet('request', 0x4001, PROBE_MAC, { requestedIp: '10.99.0.77' });
      const [nak] = await probe({ bindPort: 68, sends: [toBroadcast(req)], untilXid: 0x4001 });
      assert.equal(nak?.type, 'nak');
      assert.equal(nak?.yiaddr, '0.0.0.0');
      assert.equal(nak?.serverId, SERVER_IP);
    });

    it('RENEWING is answered by unicast to ciaddr', async () => {
      const renew = packet('request', 0x5001, PROBE_MAC, { ciaddr: PROBE_IP });
      const [ack] = await probe({ bindPort: 68, sends: [{ address: SERVER_IP, port: 67, hex: renew }], untilXid: 0x5001 });
      assert.equal(ack?.type, 'ack');
      assert.equal(ack?.yiaddr, PROBE_IP);
      assert.deepEqual((await exchange(0x5001)).sentTo, { address: PROBE_IP, port: 68 });
    });

    it('INFORM gets an ACK without yiaddr or lease', async () => {
      const inform = packet('inform', 0x6001, PROBE_MAC, { ciaddr: PROBE_IP });
      const [ack] = await probe({ bindPort: 68, sends: [{ address: SERVER_IP, port: 67, hex: inform }], untilXid: 0x6001 });
      assert.equal(ack?.type, 'ack');
      assert.equal(ack?.yiaddr, '0.0.0.0');
      assert.equal(ack?.ciaddr, PROBE_IP);
      assert.equal(ack?.lease, undefined);
      assert.equal(ack?.mask, '255.255.255.0');
    });

    it('RELEASE and DECLINE are logged, not answered', async () => {
      const release = packet('release', 0x7001, PROBE_MAC, { ciaddr: PROBE_IP, serverId: SERVER_IP });
      const decline = packet('decline', 0x7002, PROBE_MAC, { requestedIp: PROBE_IP, serverId: SERVER_IP });
      const marker = packet('discover', 0x7003, PROBE_MAC);
      const replies = await probe({
        bindPort: 68,
        sends: [{ address: SERVER_IP, port: 67, hex: release }, toBroadcast(decline), toBroadcast(marker)],
        untilXid: 0x7003,
      });
      assert.deepEqual(replies.map((r) => r.xid), [0x7003]);
      assert.equal((await exchange(0x7001)).action, 'released');
      assert.equal((await exchange(0x7002)).action, 'declined');
      assert.ok(serverLines().some((l) => l.event === 'log' && l.level === 'warn' && l.msg?.includes('decline') && l.xid === 0x7002));
    });

    it('a malformed packet is dropped with one warn line and the server keeps serving', async () => {
      const garbage = Buffer.concat([Buffer.from(packet('discover', 0x8001, PROBE_MAC), 'hex').subarray(0, 240), Buffer.from([53, 1, 1, 12, 200, 1])]).toString('hex');
      const replies = await probe({
        bindPort: 68,
        sends: [toBroadcast(garbage), toBroadcast('00ff'), toBroadcast(packet('discover', 0x8002, PROBE_MAC))],
        untilXid: 0x8002,
      });
      assert.deepEqual(replies.map((r) => r.xid), [0x8002]);
      const warns = serverLines().filter((l) => l.level === 'warn' && l.msg === 'dropping malformed DHCP packet');
      assert.equal(warns.length, 2, 'one line per malformed packet');
    });

    it('a relayed DISCOVER is answered by unicast to giaddr:67', async () => {
      const relayed = packet('discover', 0x9001, RELAYED_MAC, { giaddr: PROBE_IP });
      const [offer] = await probe({ bindPort: 67, sends: [{ address: SERVER_IP, port: 67, hex: relayed }], untilXid: 0x9001 });
      assert.equal(offer?.type, 'offer');
      assert.equal(offer?.yiaddr, '10.50.0.10');
      assert.equal(offer?.mask, '255.255.255.0');
      assert.deepEqual((await exchange(0x9001)).sentTo, { address: PROBE_IP, port: 67 });
    });
  });

  function writeScript(name: string, line: string): string {
    const path = join(tmp, name);
    writeFileSync(path, `#!/bin/sh\n${line}\n`);
    chmodSync(path, 0o755);
    return path;
  }

  async function probe(config: ProbeConfig): Promise<ReplyLine[]> {
    assert.ok(lab);
    const p = spawnInNs(lab.client, tsxCommand('./probe.ts', JSON.stringify(config)));
    await p.waitForLine((l) => l.includes('"event":"done"'), `reply to xid ${config.untilXid}`);
    await p.exited;
    return p.lines.map((l) => JSON.parse(l) as ReplyLine).filter((r) => r.event === 'reply');
  }
});

function packet(type: O.MessageTypeName, xid: number, mac: string, o: { serverId?: string; requestedIp?: string; ciaddr?: string; giaddr?: string } = {}): string {
  const p = emptyPacket(BootOp.request);
  p.xid = xid;
  p.chaddr = chaddrFromMac(mac);
  if (o.ciaddr) p.ciaddr = o.ciaddr;
  if (o.giaddr) { p.giaddr = o.giaddr; p.hops = 1; }
  p.options.set(Opt.messageType, O.uint8(O.MessageType[type]));
  if (o.serverId) p.options.set(Opt.serverId, O.ip(o.serverId));
  if (o.requestedIp) p.options.set(Opt.requestedIp, O.ip(o.requestedIp));
  return encodeDhcpPacket(p).toString('hex');
}

function toBroadcast(hex: string): ProbeConfig['sends'][number] {
  return { address: BROADCAST, port: 67, hex };
}

function readEnv(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1).replace(/^'(.*)'$/, '$1');
  }
  return env;
}

/** dhclient -d never exits after binding; wait for its script's output instead. */
async function waitForFile(path: string, proc: NsProcess): Promise<void> {
  let exited = false;
  void proc.exited.then(() => { exited = true; });
  const deadline = Date.now() + 20_000; // safety net only
  while (!existsSync(path)) {
    if (exited) throw new Error(`dhclient exited before binding: ${proc.stderr()}`);
    if (Date.now() > deadline) throw new Error(`safety net: no ${path}; dhclient said: ${proc.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
