// A server with two NICs (prov0 10.95.0.1/24 provisioning, other0 10.94.0.1/24 elsewhere), each
// leading to a client namespace running busybox udhcpc; all namespaces are this test's own.
// Measured here, and the reason for bind-device.ts: the request carries nothing that tells the NICs
// apart, a wildcard socket receives both sides' broadcasts, and only a socket bound to the device
// (SO_BINDTODEVICE) keeps the other side's requests away from the server entirely.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { createDhcpServer } from '../src/serve/dhcp/server.ts';
import { DhcpBindError } from '../src/serve/dhcp/errors.ts';
import { hasCommand, createTwoNicLab, spawnInNs, tsxCommand, type NsProcess, type TwoNicLab, stopNsProcess } from './fixtures/dhcp/netns.ts';
import type { RunnerConfig } from './fixtures/dhcp/server-runner.ts';
import { freeUdpPort } from './fixtures/free-port.ts';

const PROV_MAC = '02:00:00:95:00:10';
const OTHER_MAC = '02:00:00:94:00:10';

const skip = process.getuid?.() === 0 && hasCommand('busybox') && hasCommand('perl') ? false : 'needs root, busybox and perl';

// Both MACs are reserved, so only the interface can keep the other side from being answered.
const config = (iface?: string): RunnerConfig => ({
  serverIp: '10.95.0.1',
  subnet: { network: '10.95.0.0', prefix: 24 },
  ...(iface ? { interface: iface } : {}),
  reservations: {
    [PROV_MAC]: { ip: '10.95.0.50', leaseSeconds: 600 },
    [OTHER_MAC]: { ip: '10.95.0.51', leaseSeconds: 600 },
  },
});

interface Line { event: string; action?: string; mac?: string; name?: string; message?: string }

describe('multi-NIC: only the provisioning interface is served', { skip }, () => {
  let lab: TwoNicLab | undefined;
  let server: NsProcess | undefined;

  before(() => {
    lab = createTwoNicLab({ provCidr: '10.95.0.1/24', otherCidr: '10.94.0.1/24', provMac: PROV_MAC, otherMac: OTHER_MAC });
  });
  after(async () => {
    await stop();
    lab?.destroy();
  });

  async function start(iface?: string): Promise<NsProcess> {
    assert.ok(lab);
    server = spawnInNs(lab.server, tsxCommand('./server-runner.ts', JSON.stringify(config(iface))));
    await server.waitForLine((l) => l.includes('"event":"ready"') || l.includes('"event":"start-failed"'), 'server start');
    return server;
  }
  async function stop(): Promise<void> {
    await stopNsProcess(server);
    server = undefined;
  }
  /** udhcpc in one client namespace: the address it bound, or null after its two DISCOVERs went unanswered. */
  async function udhcpc(ns: string): Promise<string | null> {
    assert.ok(lab);
    const p = spawnInNs(ns, ['sh', '-c', 'exec "$@" 2>&1', 'sh', 'busybox', 'udhcpc', '-i', lab.clientIf, '-f', '-q', '-n', '-t', '2', '-T', '1', '-s', '/bin/true']);
    const code = await p.exited;
    return code === 0 ? (p.lines.map((l) => /lease of (\S+) obtained/.exec(l)?.[1]).find((a) => a !== undefined) ?? null) : null;
  }
  /** The server is another process: wait for its line instead of racing its stdout. */
  const said = async (mac: string, action: string): Promise<void> => {
    assert.ok(server);
    await server.waitForLine((l) => { const e = JSON.parse(l) as Line; return e.event === 'exchange' && e.mac === mac && e.action === action; }, `${action} for ${mac}`);
  };
  const seen = (mac: string): Line[] => (server?.lines ?? []).map((l) => JSON.parse(l) as Line).filter((e) => e.event === 'exchange' && e.mac === mac);

  it('measured: sockets bound to the subnet broadcast or our own address receive no client DISCOVER; wildcard ones receive both sides alike', async () => {
    assert.ok(lab);
    const probe = spawnInNs(lab.server, [process.execPath, '-e', `
      const { createSocket } = require('node:dgram');
      const addrs = ['0.0.0.0', '255.255.255.255', '10.95.0.255', '10.95.0.1'];
      let bound = 0;
      for (const a of addrs) {
        const s = createSocket({ type: 'udp4', reuseAddr: true });
        s.on('message', (m, r) => console.log(JSON.stringify({ socket: a, from: r.address + ':' + r.port, mac: m.subarray(28, 34).toString('hex') })));
        s.bind(67, a, () => { if (++bound === addrs.length) console.log('ready'); });
      }
      setTimeout(() => process.exit(0), 60000);`]);
    try {
      await probe.waitForLine((l) => l === 'ready', 'listeners bound');
      await udhcpc(lab.prov);
      await udhcpc(lab.other);
    } finally {
      probe.child.kill('SIGTERM');
      await probe.exited;
    }
    const got = probe.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { socket: string; from: string; mac: string });
    const sockets = (mac: string): Set<string> => new Set(got.filter((g) => g.mac === mac.replace(/:/g, '')).map((g) => g.socket));
    assert.deepEqual(sockets(PROV_MAC), new Set(['0.0.0.0', '255.255.255.255']));
    assert.deepEqual(sockets(OTHER_MAC), new Set(['0.0.0.0', '255.255.255.255']));
    assert.ok(got.every((g) => g.from === '0.0.0.0:68'), 'nothing in the datagram tells the NICs apart');
  });

  it('without the interface: the other side\'s DISCOVER reaches the server, though its OFFER goes out prov0 and is never received', async () => {
    assert.ok(lab);
    await start();
    assert.equal(await udhcpc(lab.other), null);
    await said(OTHER_MAC, 'offer'); // the server decided for a machine on another network
    await stop();
  });

  it('bound to prov0: the provisioning side is answered, the other side\'s requests never reach the server', async () => {
    assert.ok(lab);
    await start('prov0');
    assert.equal(await udhcpc(lab.other), null);
    assert.deepEqual(seen(OTHER_MAC), []);
    assert.equal(await udhcpc(lab.prov), '10.95.0.50');
    await said(PROV_MAC, 'ack');
    assert.deepEqual(seen(PROV_MAC).map((e) => e.action), ['offer', 'ack']);
    assert.deepEqual(seen(OTHER_MAC), [], 'still nothing from the other side');
    await stop();
  });

  it('an interface that does not exist fails start() with DhcpBindError naming it', async () => {
    const port = await freeUdpPort();
    const s = createDhcpServer({ serverIp: '127.0.0.1', subnet: { network: '127.0.0.0', prefix: 8 }, bindAddress: '127.0.0.1', port, interface: 'fdhcp-nope0', policy: { answer: () => null } });
    await assert.rejects(s.start(), (err: Error) => err instanceof DhcpBindError && err.message.includes('fdhcp-nope0'));
    // The port is free again: nothing half-started stays bound.
    const probe = createSocket('udp4');
    await new Promise<void>((resolve, reject) => { probe.once('error', reject); probe.bind(port, '127.0.0.1', () => resolve()); });
    probe.close();
  });
});
