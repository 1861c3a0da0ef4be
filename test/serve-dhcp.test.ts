// `forseti serve dhcp` as a real process in network namespaces this test creates, serving the template
// lab. Full mode: a DHCP client in a second namespace asks. Proxy mode: on a bridge where dnsmasq hands
// out addresses only, real PXE clients (QEMU SeaBIOS + iPXE, and OVMF's own EDK2 PXE client) get their
// address from dnsmasq and what to boot from forseti.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LoadConfig, LoadResult } from '../bench/lib/dhcp-load.ts';
import {
  createLab, hasCommand, createSegmentLab, ip, OVMF, pxeGuest, QEMU, REPO_ROOT, startAddressOnlyDnsmasq, stopNsProcess, type Lab, type NsProcess, type SegmentLab,
} from './fixtures/dhcp/netns.ts';
import { startServe, type LogLine, type ServeProcess } from './fixtures/tftp/serve-process.ts';

const root = process.getuid?.() === 0 && hasCommand('ip');
const BLD_001 = '9c:8e:99:4a:10:01'; // 10.77.0.101 in lab-repo-template
const BLD_002 = '9c:8e:99:4a:10:02';
const BLD_003 = '9c:8e:99:4a:10:03'; // 10.77.0.103
const AGENT = '10.77.0.5'; // agent.address in lab-repo-template

describe('forseti serve dhcp', { skip: root ? false : 'needs root and iproute2', timeout: 60_000 }, () => {
  let net: Lab;
  let srv: ServeProcess;

  before(async () => {
    net = createLab({ serverCidr: `${AGENT}/24`, clientMac: '02:00:00:77:00:fe' });
    // The client's plain UDP socket needs an address to receive the directed-broadcast reply and a
    // route for its 255.255.255.255 DISCOVERs; real clients use raw sockets instead.
    ip('-n', net.client, 'addr', 'add', '10.77.0.250/24', 'dev', net.clientIf);
    ip('-n', net.client, 'route', 'add', '255.255.255.255', 'dev', net.clientIf);
    srv = await startServe(['dhcp', '--lab', 'lab-repo-template', '--interface', net.serverIf], net.server);
  });
  after(async () => {
    await srv?.stop('SIGKILL');
    net?.destroy();
  });

  function load(config: LoadConfig): Promise<LoadResult> {
    return new Promise((resolve, reject) => {
      execFile('ip', ['netns', 'exec', net.client, process.execPath, '--import', 'tsx', 'bench/lib/dhcp-load.ts', JSON.stringify(config)], { cwd: REPO_ROOT }, (err, stdout) =>
        err ? reject(err) : resolve(JSON.parse(stdout) as LoadResult));
    });
  }

  it('offers a reserved host its address, and firmware its iPXE binary; unknown MACs get nothing', async () => {
    const os = await load({ count: 1, concurrency: 1, macs: 1, macList: [BLD_003] });
    assert.deepEqual(os.offered[BLD_003], { ip: '10.77.0.103', file: '' });
    const pxe = await load({ count: 1, concurrency: 1, macs: 1, macList: [BLD_003], pxe: true });
    assert.deepEqual(pxe.offered[BLD_003], { ip: '10.77.0.103', file: 'undionly.kpxe' });
    const unknown = await load({ count: 2, concurrency: 2, macs: 2, timeoutMs: 300 });
    assert.equal(unknown.offers, 0);
    const line = await srv.waitFor((l) => l.bootFile === 'undionly.kpxe', 'the firmware offer line');
    assert.equal(line.msg, `dhcp ${BLD_003} (bld-003) discover from firmware: offer 10.77.0.103 boot undionly.kpxe`);
    assert.equal(line.level, 30);
    assert.equal(line.name, 'forseti-serve-dhcp');
  });

  it('a burst of exchanges is one line each, in order, none lost', async () => {
    const burst = await load({ count: 300, concurrency: 32, macs: 1, macList: [BLD_003] });
    assert.equal(burst.offers, 300);
    const offers = await waitForCount(srv, (l) => l.mac === BLD_003 && l.action === 'offer', 302);
    assert.equal(offers, 302, 'the two offers before and the 300 of the burst');
  });

  it('SIGTERM stops it; the process exits 0 and its last line says so', async () => {
    assert.equal(await srv.stop('SIGTERM'), 0);
    assert.match(srv.lines.at(-1)?.msg ?? '', /dhcp stopped on SIGTERM/);
  });
});

/** Lines are written in batches: wait until `want` lines match (or the process is gone), return how many did. */
async function waitForCount(srv: ServeProcess, pred: (l: LogLine) => boolean, want: number): Promise<number> {
  const deadline = Date.now() + 10_000; // safety net only
  while (srv.lines.filter(pred).length < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return srv.lines.filter(pred).length;
}

const qemuSkip = !root ? 'needs root' : !existsSync(QEMU) ? 'qemu-system-x86_64 not installed' : !hasCommand('dnsmasq') ? 'dnsmasq not installed (apt-get install dnsmasq-base)' : false;
/** TCG firmware is slow and iPXE waits for IPv6 router adverts; a safety net only. */
const GUEST_SAFETY_NET_MS = 120_000;

describe('forseti serve dhcp --mode proxy next to dnsmasq, with QEMU guests', { skip: qemuSkip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'fdhcp-serve-proxy-'));
  let lab: SegmentLab;
  let dnsmasq: NsProcess;
  let srv: ServeProcess;
  const exchanges = (mac: string): LogLine[] => srv.lines.filter((l) => l.mac === mac && typeof l.action === 'string');

  before(async () => {
    // dnsmasq plays the site's router (10.77.0.1 in the template), handing out addresses and nothing else.
    lab = createSegmentLab({ agentCidr: `${AGENT}/24`, dhcpCidr: '10.77.0.1/24' });
    dnsmasq = await startAddressOnlyDnsmasq(lab, '10.77.0.150,10.77.0.199,255.255.255.0,10m', join(tmp, 'dnsmasq.leases'));
    srv = await startServe(['dhcp', '--lab', 'lab-repo-template', '--interface', lab.bridge, '--mode', 'proxy'], lab.agent);
  });
  after(async () => {
    await srv?.stop('SIGTERM');
    await stopNsProcess(dnsmasq);
    lab?.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  // iPXE takes next-server and filename straight from a proxy offer that has both (dhcp_has_pxeopts), so
  // it sends no ProxyDHCP REQUEST to 4011.
  it('a SeaBIOS + iPXE guest gets its address from dnsmasq and its boot script from forseti', async () => {
    const guest = pxeGuest(lab, 'seabios', BLD_001);
    let address: string;
    try {
      const configured = await guest.waitForLine((l) => /net0: 10\.77\.0\.1\d\d\/255\.255\.255\.0/.test(l), 'iPXE configured by dnsmasq', GUEST_SAFETY_NET_MS);
      address = /net0: (10\.77\.0\.\d+)/.exec(configured)?.[1] ?? '';
      await guest.waitForLine((l) => l.includes(`Filename: http://${AGENT}:8080/boot.ipxe`), 'the boot URL from forseti', GUEST_SAFETY_NET_MS);
    } finally {
      await stopNsProcess(guest);
    }
    assert.ok(dnsmasq.stderr().includes(`DHCPACK(${lab.dhcpIf}) ${address} ${BLD_001}`), dnsmasq.stderr());
    const offer = await srv.waitFor((l) => l.mac === BLD_001 && l.action === 'offer', 'the proxy offer line');
    assert.equal(offer.msg, `dhcp ${BLD_001} (bld-001) discover from ipxe: offer boot http://${AGENT}:8080/boot.ipxe`);
    assert.equal(offer.ip, undefined, 'a proxy gives no address');
    assert.ok(exchanges(BLD_001).every((e) => e.action === 'offer' || e.reason === 'other-server'), 'the REQUEST to dnsmasq is left alone');
  });

  // EDK2's PXE client ignores replies to the subnet's directed broadcast while it has no address: this
  // passes because serve binds to the interface and so answers to 255.255.255.255. EDK2 takes our offer
  // (option 43 with discovery control "use the boot file in the offer") as final: no REQUEST to 4011.
  it('OVMF\'s own PXE client (no iPXE ROM) gets its address from dnsmasq and ipxe.efi from forseti', { skip: OVMF ? false : 'OVMF not installed' }, async () => {
    const guest = pxeGuest(lab, 'ovmf', BLD_002);
    try {
      await guest.waitForLine((l) => /Station IP address is 10\.77\.0\.1\d\d/.test(l), 'EDK2 PXE configured by dnsmasq', GUEST_SAFETY_NET_MS);
      await guest.waitForLine((l) => l.includes('NBP filename is ipxe.efi'), 'the boot file from forseti', GUEST_SAFETY_NET_MS);
    } finally {
      await stopNsProcess(guest);
    }
    const offer = await srv.waitFor((l) => l.mac === BLD_002 && l.action === 'offer', 'the proxy offer line');
    assert.equal(offer.msg, `dhcp ${BLD_002} (bld-002) discover from firmware: offer boot ipxe.efi`);
  });
});
