// proxyDHCP's port 4011 with real PXE clients. With the boot file given on the PXE port only
// (`bootFileIn: 'pxe-ack'`, site.yaml dhcp.proxyBootFileIn), the proxy OFFER on 67 says PXEClient and no
// more, so after dnsmasq's ACK the firmware sends its ProxyDHCP REQUEST to us on 4011 (iPXE: the proxy
// offer lacks next-server plus file, dhcp_has_pxeopts; EDK2: it lacks option 43, a "BINL" offer), and the
// ACK from 4011 names the boot file. Guests on a bridge where dnsmasq hands out addresses only; the boot
// file is served for real (TFTP for EDK2's ipxe.efi, HTTP for the iPXE script), so a guest that reaches
// the script's marker line has booted on from our 4011 answer.
// Skipped without root, QEMU or dnsmasq (`apt-get install qemu-system-x86 ipxe-qemu ovmf ipxe dnsmasq-base`).
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadLab } from '../src/model/load.ts';
import * as O from '../src/serve/dhcp/options.ts';
import { Opt } from '../src/serve/dhcp/options.ts';
import { encodeDhcpPacket, parseDhcpPacket } from '../src/serve/dhcp/packet.ts';
import { buildProxyReply } from '../src/serve/dhcp/reply.ts';
import {
  createLab, hasCommand, createSegmentLab, ip, OVMF, pxeGuest, QEMU, spawnInNs, startAddressOnlyDnsmasq, startDhcpRunner, stopNsProcess, tsxCommand,
  type Lab, type NsProcess, type SegmentLab,
} from './fixtures/dhcp/netns.ts';
import type { ProbeConfig } from './fixtures/dhcp/probe.ts';
import type { RunnerConfig } from './fixtures/dhcp/server-runner.ts';
import { clientPacket, httpVendor, pxeVendor, TEMPLATE_DIR, type ClientSpec } from './fixtures/dhcp/template-lab.ts';
import { startServe, type ServeProcess } from './fixtures/tftp/serve-process.ts';

const AGENT = '10.92.0.5';
const ROUTER = '10.92.0.1';
const BIOS_MAC = '52:54:00:92:00:10';
const UEFI_MAC = '52:54:00:92:00:11';
const IPXE_DIR = '/usr/lib/ipxe';
const MARKER = 'forseti-4011-script-reached';
/** TCG firmware is slow and iPXE waits for IPv6 router adverts; a safety net only. */
const GUEST_SAFETY_NET_MS = 180_000;

describe('a proxy offer without the boot file', () => {
  const ctx = { serverIp: AGENT, subnet: { network: '10.92.0.0', prefix: 24 }, serverPort: 67, clientPort: 68 };
  it('says PXEClient, names us (option 54 and siaddr) and carries no file, no option 43 and no next server', () => {
    const request = clientPacket({ mac: BIOS_MAC, arch: 0, vendorClass: pxeVendor(0), uuid: true });
    const reply = parseDhcpPacket(encodeDhcpPacket(buildProxyReply(request, 'offer', { bootFile: 'undionly.kpxe', nextServer: '10.92.0.9' }, ctx, false, false)));
    assert.equal(O.readMessageType(reply.options), 'offer');
    assert.equal(O.readString(reply.options, Opt.vendorClass), 'PXEClient');
    assert.equal(O.readIp(reply.options, Opt.serverId), AGENT);
    assert.equal(reply.siaddr, AGENT, 'EDK2 sends its REQUEST to siaddr:4011, so it is us, not the TFTP server');
    assert.equal(reply.yiaddr, '0.0.0.0');
    assert.equal(reply.file, '');
    for (const code of [Opt.bootFile, Opt.vendorSpecific, Opt.tftpServer]) assert.equal(reply.options.has(code), false, `option ${code}`);
    assert.deepEqual(reply.options.get(Opt.uuid), request.options.get(Opt.uuid));
  });
});

describe('site.yaml dhcp.proxyBootFileIn', () => {
  async function siteWith(line: string): Promise<Awaited<ReturnType<typeof loadLab>>> {
    const dir = mkdtempSync(join(tmpdir(), 'forseti-proxy-4011-site-'));
    try {
      cpSync(TEMPLATE_DIR, dir, { recursive: true });
      const site = join(dir, 'site.yaml');
      writeFileSync(site, readFileSync(site, 'utf8').replace('  mode: full\n', `  mode: proxy\n${line}`));
      return await loadLab(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  it('reaches the model when set, is absent (the offer) when not, and takes only offer or pxe-ack', async () => {
    assert.equal((await siteWith('  proxyBootFileIn: pxe-ack\n')).lab?.site.dhcp.proxyBootFileIn, 'pxe-ack');
    const unset = await siteWith('');
    assert.equal(unset.lab?.site.dhcp.mode, 'proxy');
    assert.equal(unset.lab?.site.dhcp.proxyBootFileIn, undefined);
    const wrong = await siteWith('  proxyBootFileIn: port-4011\n');
    assert.ok(!wrong.lab, 'not loaded');
    assert.ok(wrong.problems.some((p) => JSON.stringify(p).includes('proxyBootFileIn')), JSON.stringify(wrong.problems));
  });
});

describe('a proxy giving the boot file on the PXE port only, with crafted packets', { skip: process.getuid?.() === 0 ? false : 'needs root' }, () => {
  const SERVER = '10.92.1.1';
  const PXE = '02:00:00:92:01:01';
  const HTTP = '02:00:00:92:01:02';
  let lab: Lab | undefined;
  let server: NsProcess | undefined;

  before(async () => {
    lab = createLab({ serverCidr: `${SERVER}/24`, clientMac: '02:00:00:92:01:ff' });
    ip('-n', lab.client, 'addr', 'add', '10.92.1.200/24', 'dev', lab.clientIf);
    server = await startDhcpRunner(lab.server, {
      serverIp: SERVER, subnet: { network: '10.92.1.0', prefix: 24 }, mode: 'proxy', bootFileIn: 'pxe-ack',
      proxy: { macs: [PXE, HTTP], agent: { address: SERVER, httpPort: 8080, tftpPort: 69 } },
    } satisfies RunnerConfig);
  });
  after(async () => {
    await stopNsProcess(server);
    lab?.destroy();
  });

  it('a PXE ROM\'s offer leaves the file out; UEFI HTTP boot, which never asks on 4011, still gets its URL in the offer', async () => {
    assert.ok(lab);
    const hex = (spec: ClientSpec): string => encodeDhcpPacket(clientPacket(spec)).toString('hex');
    const probe = spawnInNs(lab.client, tsxCommand('./probe.ts', JSON.stringify({
      bindPort: 68,
      sends: [
        { address: '10.92.1.255', port: 67, hex: hex({ mac: PXE, xid: 0x201, arch: 0, vendorClass: pxeVendor(0) }) },
        { address: '10.92.1.255', port: 67, hex: hex({ mac: HTTP, xid: 0x202, arch: 16, vendorClass: httpVendor(16) }) },
      ],
      untilXid: 0x202,
    } satisfies ProbeConfig)));
    await probe.waitForLine((l) => l.includes('"event":"done"'), 'both offers');
    await probe.exited;
    const replies = probe.lines.map((l) => JSON.parse(l) as { event: string; xid: number; file: string; siaddr: string; optionCodes: number[] }).filter((r) => r.event === 'reply');
    const pxe = replies.find((r) => r.xid === 0x201) ?? assert.fail(JSON.stringify(replies));
    assert.equal(pxe.file, '');
    assert.equal(pxe.siaddr, SERVER);
    for (const code of [Opt.bootFile, Opt.vendorSpecific]) assert.ok(!pxe.optionCodes.includes(code), `option ${code}`);
    const http = replies.find((r) => r.xid === 0x202) ?? assert.fail(JSON.stringify(replies));
    assert.equal(http.file, `http://${SERVER}:8080/ipxe.efi`);
  });
});

const skip = process.getuid?.() !== 0 ? 'needs root' : !existsSync(QEMU) ? 'qemu-system-x86_64 not installed'
  : !hasCommand('dnsmasq') ? 'dnsmasq not installed (apt-get install dnsmasq-base)' : false;

/** The guest saw the file, so the server's log line is written or about to be: a safety net only. */
function safetyNet<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('safety net: no log line')), 20_000); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** An exchange line of server-runner.ts. */
interface Exchange { event: string; action: string; reason?: string; mac: string; port: number; messageType: string; stage: string; bootFile?: string; sentTo?: { address: string; port: number } }

describe('proxyDHCP on port 4011 with real firmware, next to dnsmasq', { skip }, () => {
  let tmp = '';
  let lab: SegmentLab | undefined;
  let dnsmasq: NsProcess | undefined;
  let server: NsProcess | undefined;
  let http: ServeProcess | undefined;
  let tftp: ServeProcess | undefined;
  const config: RunnerConfig = {
    serverIp: AGENT,
    subnet: { network: '10.92.0.0', prefix: 24 },
    mode: 'proxy',
    bootFileIn: 'pxe-ack',
    // As the agent runs it: bound to the provisioning interface.
    interface: 'br0',
    proxy: { macs: [BIOS_MAC, UEFI_MAC], agent: { address: AGENT, httpPort: 8080, tftpPort: 69 } },
  };

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'forseti-proxy-4011-'));
    lab = createSegmentLab({ agentCidr: `${AGENT}/24`, dhcpCidr: `${ROUTER}/24` });
    assert.equal(lab.bridge, config.interface);
    dnsmasq = await startAddressOnlyDnsmasq(lab, '10.92.0.150,10.92.0.199,255.255.255.0,10m', join(tmp, 'dnsmasq.leases'));
    server = await startDhcpRunner(lab.agent, config);
    writeFileSync(join(tmp, 'boot.ipxe'), `#!ipxe\necho ${MARKER} \${net0/mac}\nexit\n`);
    http = await startServe(['http', '--root', tmp, '--listen', `${AGENT}:8080`], lab.agent);
  });
  after(async () => {
    await http?.stop();
    await tftp?.stop();
    await stopNsProcess(server);
    await stopNsProcess(dnsmasq);
    lab?.destroy();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const exchanges = (mac: string): Exchange[] =>
    (server?.lines ?? []).map((l) => JSON.parse(l) as Exchange).filter((e) => e.event === 'exchange' && e.mac === mac);
  /** The address dnsmasq ACKed to this MAC, from its log. */
  const dnsmasqAck = (mac: string): string | undefined => new RegExp(`DHCPACK\\(${lab?.dhcpIf ?? ''}\\) (\\S+) ${mac}`).exec(dnsmasq?.stderr() ?? '')?.[1];

  /** Proxy OFFERs on 67 carry no boot file; the ACK comes from 4011 to the address and port the REQUEST came from. */
  function assertTwoStep(mac: string, stage: string, address: string, clientPort: number): Exchange {
    const seen = exchanges(mac).filter((e) => e.stage === stage);
    const offers = seen.filter((e) => e.action === 'offer');
    assert.ok(offers.length > 0, JSON.stringify(seen));
    for (const o of offers) {
      assert.equal(o.port, 67);
      assert.equal(o.bootFile, undefined, 'the offer names no boot file');
    }
    const acks = seen.filter((e) => e.action === 'ack');
    assert.ok(acks.length > 0, `a ProxyDHCP REQUEST reached 4011: ${JSON.stringify(seen)}`);
    const ack = acks[0] ?? assert.fail();
    assert.equal(ack.port, 4011);
    assert.equal(ack.messageType, 'request');
    assert.deepEqual(ack.sentTo, { address, port: clientPort }, 'answered to where the REQUEST came from');
    // The REQUEST for dnsmasq's address is dnsmasq's; nothing else is answered on 67.
    assert.ok(seen.every((e) => e.action === 'offer' || e.action === 'ack' || e.reason === 'other-server'), JSON.stringify(seen));
    return ack;
  }

  it('SeaBIOS + iPXE ROM: address from dnsmasq, ProxyDHCP REQUEST to 4011 answered with the script URL, script fetched and run', async () => {
    assert.ok(lab && http);
    const guest = pxeGuest(lab, 'seabios', BIOS_MAC);
    try {
      await guest.waitForLine((l) => l.includes(`Filename: http://${AGENT}:8080/boot.ipxe`), 'the boot URL from our 4011 ACK', GUEST_SAFETY_NET_MS);
      await guest.waitForLine((l) => l.includes(MARKER), 'the boot script running', GUEST_SAFETY_NET_MS);
    } finally {
      await stopNsProcess(guest);
    }
    const address = dnsmasqAck(BIOS_MAC);
    assert.ok(address, dnsmasq?.stderr());
    const ack = assertTwoStep(BIOS_MAC, 'ipxe', address, 68);
    assert.equal(ack.bootFile, `http://${AGENT}:8080/boot.ipxe`);
    await safetyNet(http.waitFor((l) => l.path === '/boot.ipxe' && l.status === 200 && String(l.remote).startsWith(`${address}:`), 'the script fetched over HTTP'));
  });

  it('OVMF\'s own PXE client: ProxyDHCP REQUEST to 4011, ipxe.efi over TFTP, then iPXE does the same and runs the script', {
    skip: !OVMF ? 'OVMF not installed' : !existsSync(join(IPXE_DIR, 'ipxe.efi')) ? 'ipxe not installed' : false,
  }, async () => {
    assert.ok(lab && http);
    // Debian's ipxe.efi is a symlink out of /usr/lib/ipxe, which TFTP does not follow: serve a copy.
    copyFileSync(join(IPXE_DIR, 'ipxe.efi'), join(tmp, 'ipxe.efi'));
    tftp = await startServe(['tftp', '--root', tmp, '--listen', `${AGENT}:69`], lab.agent);
    const guest = pxeGuest(lab, 'ovmf', UEFI_MAC);
    try {
      await guest.waitForLine((l) => l.includes('NBP filename is ipxe.efi'), 'the boot file from our 4011 ACK', GUEST_SAFETY_NET_MS);
      await guest.waitForLine((l) => l.includes(MARKER), 'iPXE running the boot script', GUEST_SAFETY_NET_MS);
    } finally {
      await stopNsProcess(guest);
    }
    const address = dnsmasqAck(UEFI_MAC);
    assert.ok(address, dnsmasq?.stderr());
    const firmware = assertTwoStep(UEFI_MAC, 'firmware', address, 4011);
    assert.equal(firmware.bootFile, 'ipxe.efi');
    await safetyNet(tftp.waitFor((l) => l.file === 'ipxe.efi' && l.ok === true, 'ipxe.efi over TFTP'));
    const ipxe = assertTwoStep(UEFI_MAC, 'ipxe', address, 68);
    assert.equal(ipxe.bootFile, `http://${AGENT}:8080/boot.ipxe`);
    await safetyNet(http.waitFor((l) => l.path === '/boot.ipxe' && l.status === 200 && String(l.remote).startsWith(`${address}:`), 'the script fetched over HTTP'));
  });
});
