// Fuzzing the live servers, not only the parser: a seeded stream of random and mutated datagrams
// (FORSETI_DHCP_FUZZ_COUNT, default 20000; FORSETI_DHCP_FUZZ_SEED) against a full-mode server with a
// pool and a proxy-mode server (67-style port and 4011), inside namespaces this test creates. Afterwards
// both still answer, and no packet reached the catch-all "unexpected error" handler.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeDhcpPacket } from '../src/serve/dhcp/packet.ts';
import { hasCommand, createLab, ip, spawnInNs, tsxCommand, type Lab, type NsProcess, stopNsProcess, startDhcpRunner } from './fixtures/dhcp/netns.ts';
import type { FuzzConfig } from './fixtures/dhcp/fuzzer.ts';
import type { ProbeConfig } from './fixtures/dhcp/probe.ts';
import type { RunnerConfig } from './fixtures/dhcp/server-runner.ts';
import { clientPacket, pxeVendor } from './fixtures/dhcp/template-lab.ts';

const SERVER = '10.91.0.1';
const BROADCAST = '10.91.0.255';
const PROBE_IP = '10.91.0.200';
const HOST = '02:00:00:91:00:01';
const COUNT = Number(process.env.FORSETI_DHCP_FUZZ_COUNT ?? 20_000);
const SEED = Number(process.env.FORSETI_DHCP_FUZZ_SEED ?? 0x5eed0001);

const skip = process.getuid?.() === 0 && hasCommand('ip') && hasCommand('perl') ? false : 'needs root, iproute2 and perl';

interface Line { event: string; level?: string; msg?: string; action?: string; xid?: number; port?: number }

describe(`DHCP servers under ${COUNT} fuzzed datagrams (seed ${SEED})`, { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'fdhcp-fuzz-'));
  let lab: Lab | undefined;
  let full: NsProcess | undefined;
  let proxy: NsProcess | undefined;

  before(async () => {
    lab = createLab({ serverCidr: `${SERVER}/24`, clientMac: '02:00:00:91:00:ff' });
    ip('-n', lab.client, 'addr', 'add', `${PROBE_IP}/24`, 'dev', lab.clientIf);
    const base = { serverIp: SERVER, subnet: { network: '10.91.0.0', prefix: 24 }, interface: lab.serverIf };
    const fullConfig: RunnerConfig = {
      ...base,
      reservations: { [HOST]: { ip: '10.91.0.50', leaseSeconds: 600, bootFile: 'undionly.kpxe' } },
      pool: { start: '10.91.0.100', end: '10.91.0.140', leaseSeconds: 600, leaseFile: join(dir, 'dhcp-leases.json') },
    };
    const proxyConfig: RunnerConfig = { ...base, mode: 'proxy', port: 1067, pxePort: 4011, proxy: { macs: [HOST], agent: { address: SERVER, httpPort: 8080, tftpPort: 69 } } };
    full = await startDhcpRunner(lab.server, fullConfig, 'full server ready');
    proxy = await startDhcpRunner(lab.server, proxyConfig, 'proxy server ready');
  });

  after(async () => {
    for (const p of [full, proxy]) await stopNsProcess(p);
    lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps answering, and every bad datagram was handled on purpose', async () => {
    assert.ok(lab && full && proxy);
    const fuzz: FuzzConfig = {
      seed: SEED,
      count: COUNT,
      targets: [
        { address: BROADCAST, port: 67 }, { address: SERVER, port: 67 },
        { address: BROADCAST, port: 1067 }, { address: SERVER, port: 4011 },
      ],
      addresses: ['0.0.0.0', SERVER, PROBE_IP, '10.91.0.50', '10.91.0.100', '10.91.0.120', '10.91.0.255', '10.50.0.1', '192.0.2.1', '255.255.255.255'],
      macs: [HOST, '02:00:00:91:00:02', '02:00:00:91:00:03', ...Array.from({ length: 60 }, (_, i) => `02:00:00:91:01:${i.toString(16).padStart(2, '0')}`)],
    };
    const fuzzer = spawnInNs(lab.client, tsxCommand('./fuzzer.ts', JSON.stringify(fuzz)));
    await fuzzer.waitForLine((l) => l.includes('"event":"sent"'), 'fuzzer done', 300_000);
    assert.equal(await fuzzer.exited, 0, fuzzer.stderr());

    // Retransmitted like a real client: the servers may still be draining the fuzz from their queues.
    const discover = encodeDhcpPacket(clientPacket({ mac: HOST, xid: 0xf022, arch: 0, vendorClass: pxeVendor(0) })).toString('hex');
    const request = encodeDhcpPacket(clientPacket({ mac: HOST, xid: 0xf023, type: 'request', arch: 0, vendorClass: pxeVendor(0), ciaddr: PROBE_IP })).toString('hex');
    const offers = await probe({ bindPort: 68, sends: [{ address: BROADCAST, port: 67, hex: discover }], untilXid: 0xf022, resendMs: 500 });
    assert.equal(offers.find((r) => r.xid === 0xf022)?.yiaddr, '10.91.0.50');
    const acks = await probe({ bindPort: 68, sends: [{ address: SERVER, port: 4011, hex: request }], untilXid: 0xf023, resendMs: 500 });
    assert.equal(acks.find((r) => r.xid === 0xf023)?.file, 'undionly.kpxe');

    // Everything a server logged before answering the marker has reached us once its marker line has.
    await full.waitForLine((l) => l.includes('"event":"exchange"') && l.includes(`"xid":${0xf022}`), 'full server marker line');
    await proxy.waitForLine((l) => l.includes('"event":"exchange"') && l.includes(`"xid":${0xf023}`), 'proxy server marker line');
    for (const [name, server] of [['full', full], ['proxy', proxy]] as const) {
      assert.equal(server.child.exitCode, null, `${name} server still running`);
      const handled = server.lines.filter((l) => l.includes('dropping malformed') || l.includes('"event":"exchange"')).length;
      assert.ok(handled >= COUNT / 20, `${name}: only ${handled} datagrams reached the handler`);
      const lines = server.lines.map((l) => JSON.parse(l) as Line);
      const unexpected = lines.filter((l) => l.msg === 'unexpected error handling DHCP packet' || l.msg === 'DHCP policy failed; not answering');
      assert.deepEqual(unexpected, [], `${name}: packets that escaped the designed paths`);
      assert.ok(lines.some((l) => l.msg === 'dropping malformed DHCP packet'), `${name}: the fuzz reached the parser's error path`);
      assert.ok(lines.some((l) => l.event === 'exchange'), `${name}: the fuzz reached the decision path`);
    }
  });

  async function probe(config: ProbeConfig): Promise<Array<{ event: string; xid: number; yiaddr: string; file: string }>> {
    assert.ok(lab);
    const p = spawnInNs(lab.client, tsxCommand('./probe.ts', JSON.stringify(config)));
    await p.waitForLine((l) => l.includes('"event":"done"'), `reply to xid ${config.untilXid}`);
    await p.exited;
    return p.lines.map((l) => JSON.parse(l) as { event: string; xid: number; yiaddr: string; file: string }).filter((r) => r.event === 'reply');
  }
});
