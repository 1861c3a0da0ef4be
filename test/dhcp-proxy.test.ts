// proxyDHCP (PXE 2.1): forseti answers boot clients with boot information and no address, on 67 and
// on the PXE port 4011, next to another DHCP server. Crafted packets over a veth pair between two
// namespaces this test creates. Real firmware on the PXE port (with `proxyBootFileIn: pxe-ack`) is in
// test/dhcp-proxy-4011.test.ts: with the default offer, which names the boot file, neither iPXE nor
// EDK2 sends a ProxyDHCP REQUEST to 4011.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { encodeDhcpPacket } from '../src/serve/dhcp/packet.ts';
import { hasCommand, createLab, ip, spawnInNs, tsxCommand, type Lab, type NsProcess, stopNsProcess, startDhcpRunner } from './fixtures/dhcp/netns.ts';
import type { ProbeConfig } from './fixtures/dhcp/probe.ts';
import type { RunnerConfig } from './fixtures/dhcp/server-runner.ts';
import { clientPacket, httpVendor, pxeVendor, type ClientSpec } from './fixtures/dhcp/template-lab.ts';

const root = process.getuid?.() === 0 && hasCommand('ip');

interface ReplyLine { event: string; xid: number; type?: string; yiaddr: string; siaddr: string; file: string; from: string; fromPort: number; options: Record<string, string> }
interface ServerLine { event: string; action?: string; reason?: string; xid?: number; mac?: string; port?: number; bootFile?: string; sentTo?: { address: string; port: number } }

const hex = (spec: ClientSpec): string => encodeDhcpPacket(clientPacket(spec)).toString('hex');
const text = (h: string | undefined): string | undefined => (h === undefined ? undefined : Buffer.from(h, 'hex').toString('latin1'));

describe('proxyDHCP with crafted packets', { skip: root ? false : 'needs root and iproute2' }, () => {
  const SERVER = '10.93.0.1';
  const BROADCAST = '10.93.0.255';
  const PROBE_IP = '10.93.0.200';
  const BIOS = '02:00:00:93:00:01';
  const HTTP = '02:00:00:93:00:02';
  const config: RunnerConfig = {
    serverIp: SERVER,
    subnet: { network: '10.93.0.0', prefix: 24 },
    mode: 'proxy',
    proxy: { macs: [BIOS, HTTP], agent: { address: SERVER, httpPort: 8080, tftpPort: 69 } },
  };
  let lab: Lab | undefined;
  let server: NsProcess | undefined;
  /** The server is another process: wait for its exchange line instead of racing its stdout. */
  const exchange = async (xid: number): Promise<ServerLine> => {
    assert.ok(server);
    return JSON.parse(await server.waitForLine((l) => { const e = JSON.parse(l) as ServerLine; return e.event === 'exchange' && e.xid === xid; }, `exchange ${xid}`)) as ServerLine;
  };

  before(async () => {
    lab = createLab({ serverCidr: `${SERVER}/24`, clientMac: '02:00:00:93:00:ff' });
    ip('-n', lab.client, 'addr', 'add', `${PROBE_IP}/24`, 'dev', lab.clientIf);
    server = await startDhcpRunner(lab.server, config);
  });
  after(async () => {
    await stopNsProcess(server);
    lab?.destroy();
  });

  async function probe(config: ProbeConfig): Promise<ReplyLine[]> {
    assert.ok(lab);
    const p = spawnInNs(lab.client, tsxCommand('./probe.ts', JSON.stringify(config)));
    await p.waitForLine((l) => l.includes('"event":"done"'), `reply to xid ${config.untilXid}`);
    await p.exited;
    return p.lines.map((l) => JSON.parse(l) as ReplyLine).filter((r) => r.event === 'reply');
  }
  const toBroadcast = (h: string): ProbeConfig['sends'][number] => ({ address: BROADCAST, port: 67, hex: h });

  it('a PXE ROM DISCOVER gets a boot offer without an address', async () => {
    const [offer] = await probe({ bindPort: 68, sends: [toBroadcast(hex({ mac: BIOS, xid: 0x101, arch: 0, vendorClass: pxeVendor(0), uuid: true }))], untilXid: 0x101 });
    assert.ok(offer);
    assert.equal(offer.type, 'offer');
    assert.equal(offer.yiaddr, '0.0.0.0');
    assert.equal(offer.siaddr, SERVER);
    assert.equal(offer.file, 'undionly.kpxe');
    assert.equal(text(offer.options['60']), 'PXEClient');
    assert.equal(offer.options['43'], '060108ff', 'PXE discovery control: boot the file in this offer');
    assert.equal(offer.options['97'], '004c4c4544003534108044b7c04f4a3932');
    for (const code of ['1', '3', '51']) assert.equal(offer.options[code], undefined, `no option ${code}: the address is the other server's business`);
  });

  it('the PXE-port REQUEST is ACKed by unicast from 4011 to where it came from', async () => {
    const request = hex({ mac: BIOS, xid: 0x102, type: 'request', arch: 0, vendorClass: pxeVendor(0), ciaddr: PROBE_IP });
    const [ack] = await probe({ bindPort: 68, sends: [{ address: SERVER, port: 4011, hex: request }], untilXid: 0x102 });
    assert.equal(ack?.type, 'ack');
    assert.equal(ack?.fromPort, 4011);
    assert.equal(ack?.yiaddr, '0.0.0.0');
    assert.equal(ack?.file, 'undionly.kpxe');
    const e = await exchange(0x102);
    assert.deepEqual([e?.action, e?.port, e?.sentTo], ['ack', 4011, { address: PROBE_IP, port: 68 }]);
  });

  it('UEFI HTTP boot gets an HTTPClient offer with the ipxe.efi URL; iPXE gets the entry script', async () => {
    const replies = await probe({
      bindPort: 68,
      sends: [
        toBroadcast(hex({ mac: HTTP, xid: 0x103, arch: 16, vendorClass: httpVendor(16) })),
        toBroadcast(hex({ mac: HTTP, xid: 0x104, arch: 7, vendorClass: pxeVendor(7), userClass: 'iPXE' })),
      ],
      untilXid: 0x104,
    });
    const http = replies.find((r) => r.xid === 0x103);
    assert.equal(text(http?.options['60']), 'HTTPClient');
    assert.equal(http?.file, `http://${SERVER}:8080/ipxe.efi`);
    assert.equal(replies.find((r) => r.xid === 0x104)?.file, `http://${SERVER}:8080/boot.ipxe`);
  });

  it('an OS DHCP client, a REQUEST for the real server and an undeclared PXE ROM get nothing', async () => {
    const replies = await probe({
      bindPort: 68,
      sends: [
        toBroadcast(hex({ mac: BIOS, xid: 0x105, vendorClass: 'udhcp 1.35.0' })),
        toBroadcast(hex({ mac: BIOS, xid: 0x106, type: 'request', arch: 0, vendorClass: pxeVendor(0), serverId: '10.93.0.254', requestedIp: '10.93.0.120' })),
        toBroadcast(hex({ mac: '02:00:00:93:00:99', xid: 0x107, arch: 0, vendorClass: pxeVendor(0) })),
        toBroadcast(hex({ mac: BIOS, xid: 0x108, arch: 0, vendorClass: pxeVendor(0) })),
      ],
      untilXid: 0x108,
    });
    assert.deepEqual(replies.map((r) => r.xid), [0x108]);
    const reasons = await Promise.all([0x105, 0x106, 0x107].map(async (xid) => (await exchange(xid)).reason));
    assert.deepEqual(reasons, ['not-a-boot-client', 'other-server', 'policy-refused']);
  });
});

// Real clients (a QEMU SeaBIOS + iPXE guest and OVMF's own PXE client) next to dnsmasq talk to the proxy
// as `forseti serve dhcp --mode proxy` in test/serve-dhcp.test.ts.
