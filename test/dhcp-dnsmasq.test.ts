// `forseti render --dnsmasq`: the snippet for a site whose own DHCP server stays in charge. Checked
// with dnsmasq itself: `dnsmasq --test` accepts it, and a dnsmasq running it in a namespace this test
// creates gives firmware, iPXE and unknown machines what forseti would give them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Lab } from '../src/model/types.ts';
import { renderDnsmasqConfig } from '../src/render/dnsmasq.ts';
import { encodeDhcpPacket } from '../src/serve/dhcp/packet.ts';
import { hasCommand, createLab, ip, spawnInNs, tsxCommand, type Lab as NetLab, type NsProcess, stopNsProcess } from './fixtures/dhcp/netns.ts';
import type { ProbeConfig } from './fixtures/dhcp/probe.ts';
import { clientPacket, httpVendor, pxeVendor, templateLab, type ClientSpec } from './fixtures/dhcp/template-lab.ts';

const DNSMASQ = hasCommand('dnsmasq') ? false : 'dnsmasq not installed (apt-get install dnsmasq-base)';
const HOST_MAC = '9c:8e:99:4a:10:01'; // bld-001 in the template, 10.77.0.101
const AGENT_HTTP = 'http://10.77.0.5:8080';

let lab: Lab;
const dir = mkdtempSync(join(tmpdir(), 'fdhcp-dnsmasq-'));
before(async () => { lab = await templateLab(); });
after(() => rmSync(dir, { recursive: true, force: true }));

describe('renderDnsmasqConfig', () => {
  it('reserves every host with all its MACs and tags only declared hosts for booting', () => {
    const text = renderDnsmasqConfig(lab);
    assert.match(text, /^dhcp-range=set:forseti-net,10\.77\.0\.200,10\.77\.0\.249,255\.255\.255\.0,3600$/m);
    assert.match(text, /^dhcp-host=9c:8e:99:4a:10:01,9c:8e:99:4a:11:01,set:forseti,10\.77\.0\.101,bld-001,3600$/m);
    assert.equal(text.match(/^dhcp-host=/gm)?.length, lab.hosts.size);
    assert.match(text, /^dhcp-boot=tag:forseti,tag:ipxe,http:\/\/10\.77\.0\.5:8080\/boot\.ipxe$/m);
    assert.match(text, /^dhcp-boot=tag:forseti,tag:!ipxe,tag:bios,undionly\.kpxe,,10\.77\.0\.5$/m);
    assert.match(text, /^dhcp-option=tag:ipxe,encap:175,176,1$/m);
  });

  it('without a pool the range is static: reservations only', () => {
    const { pool: _pool, ...dhcp } = lab.site.dhcp;
    const text = renderDnsmasqConfig({ ...lab, site: { ...lab.site, dhcp } });
    assert.match(text, /^dhcp-range=set:forseti-net,10\.77\.0\.0,static,255\.255\.255\.0,3600$/m);
  });

  it('passes dnsmasq --test', { skip: DNSMASQ }, () => {
    const file = join(dir, 'syntax.conf');
    writeFileSync(file, renderDnsmasqConfig(lab));
    const result = spawnSync('dnsmasq', ['--test', '-C', file], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /syntax check OK/);
  });
});

interface Reply { event: string; xid: number; yiaddr: string; siaddr: string; file: string; options: Record<string, string> }

describe('a dnsmasq running the snippet', { skip: DNSMASQ || (process.getuid?.() === 0 ? false : 'needs root') }, () => {
  let net: NetLab | undefined;
  let dnsmasq: NsProcess | undefined;

  before(async () => {
    net = createLab({ serverCidr: '10.77.0.1/24', clientMac: '02:00:00:77:00:fe' });
    ip('-n', net.client, 'addr', 'add', '10.77.0.250/24', 'dev', net.clientIf);
    const conf = join(dir, 'live.conf');
    writeFileSync(conf, renderDnsmasqConfig(lab));
    dnsmasq = spawnInNs(net.server, [
      'dnsmasq', '--no-daemon', '--port=0', `--conf-file=${conf}`, `--interface=${net.serverIf}`, '--bind-interfaces', '--no-ping',
      `--dhcp-leasefile=${join(dir, 'leases')}`, '--pid-file', '--log-facility=-', '--log-dhcp', '--user=root',
    ]);
    // dnsmasq logs to stderr; wait until it says it serves DHCP.
    await waitFor(() => /DHCP, IP range/.test(dnsmasq?.stderr() ?? ''), () => dnsmasq?.stderr() ?? '');
  });
  after(async () => {
    await stopNsProcess(dnsmasq);
    net?.destroy();
  });

  it('gives firmware iPXE, iPXE the entry script, UEFI HTTP boot ipxe.efi by URL, and unknown machines an address only', async () => {
    assert.ok(net);
    const asks: Array<[number, ClientSpec]> = [
      [0x201, { mac: HOST_MAC, arch: 0, vendorClass: pxeVendor(0) }],
      [0x202, { mac: HOST_MAC, arch: 7, vendorClass: pxeVendor(7) }],
      [0x203, { mac: HOST_MAC, arch: 9, vendorClass: pxeVendor(9) }],
      [0x204, { mac: HOST_MAC, arch: 16, vendorClass: httpVendor(16) }],
      [0x205, { mac: HOST_MAC, arch: 0, vendorClass: pxeVendor(0), userClass: 'iPXE' }],
      [0x206, { mac: '02:00:00:77:00:01', arch: 0, vendorClass: pxeVendor(0) }],
    ];
    const config: ProbeConfig = {
      bindPort: 68,
      sends: asks.map(([xid, spec]) => ({ address: '10.77.0.255', port: 67, hex: encodeDhcpPacket(clientPacket({ ...spec, xid, broadcast: true })).toString('hex') })),
      untilXid: 0x206,
    };
    const p = spawnInNs(net.client, tsxCommand('./probe.ts', JSON.stringify(config)));
    await p.waitForLine((l) => l.includes('"event":"done"'), 'dnsmasq answered all');
    const replies = new Map(p.lines.map((l) => JSON.parse(l) as Reply).filter((r) => r.event === 'reply').map((r) => [r.xid, r]));
    const file = (xid: number): string => {
      const r = replies.get(xid);
      return r?.file || Buffer.from(r?.options['67'] ?? '', 'hex').toString('latin1');
    };
    assert.equal(replies.get(0x201)?.yiaddr, '10.77.0.101');
    assert.equal(file(0x201), 'undionly.kpxe');
    assert.equal(replies.get(0x201)?.siaddr, '10.77.0.5');
    assert.equal(file(0x202), 'ipxe.efi');
    assert.equal(file(0x203), 'ipxe.efi');
    assert.equal(file(0x204), `${AGENT_HTTP}/ipxe.efi`);
    assert.equal(Buffer.from(replies.get(0x204)?.options['60'] ?? '', 'hex').toString('latin1'), 'HTTPClient');
    assert.equal(file(0x205), `${AGENT_HTTP}/boot.ipxe`);
    // 176=1, then dnsmasq's end marker of the encapsulation.
    assert.match(replies.get(0x205)?.options['175'] ?? '', /^b00101(ff)?$/, 'iPXE no-pxedhcp');
    const unknown = replies.get(0x206);
    assert.match(unknown?.yiaddr ?? '', /^10\.77\.0\.2[0-4]\d$/);
    assert.equal(file(0x206), '');
  });
});

async function waitFor(done: () => boolean, what: () => string): Promise<void> {
  const deadline = Date.now() + 10_000; // safety net only
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`safety net: dnsmasq did not start: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
