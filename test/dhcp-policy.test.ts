// The product's DHCP policy over the lab-repository template: the boot chain by boot stage and
// firmware (no loop between firmware PXE and iPXE is possible), proxy-mode decisions, and the pool
// for unknown machines.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { IPXE_BINARIES, ReservationPolicy } from '../src/serve/dhcp-policy.ts';
import type { Lab } from '../src/model/types.ts';
import { classifyClient, type ClientInfo } from '../src/serve/dhcp/client-info.ts';
import { decideReply, decideProxyReply } from '../src/serve/dhcp/decide.ts';
import { LeasePool } from '../src/serve/dhcp/lease-pool.ts';
import * as O from '../src/serve/dhcp/options.ts';
import { Opt } from '../src/serve/dhcp/options.ts';
import { encodeDhcpPacket, parseDhcpPacket, type DhcpPacket } from '../src/serve/dhcp/packet.ts';
import { buildProxyReply, buildReply, type ReplyContext } from '../src/serve/dhcp/reply.ts';
import { clientPacket, generationOf, httpVendor, pxeVendor, templateLab, type ClientSpec } from './fixtures/dhcp/template-lab.ts';

const AGENT = '10.77.0.5';
const HOST_MAC = '9c:8e:99:4a:10:01'; // bld-001, 10.77.0.101
const SECOND_NIC = '9c:8e:99:4a:11:01';
const UNKNOWN_MAC = '02:00:00:77:00:01';
const ctx: ReplyContext = { serverIp: AGENT, subnet: { network: '10.77.0.0', prefix: 24 }, serverPort: 67, clientPort: 68 };
const info = (spec: ClientSpec): ClientInfo => classifyClient(clientPacket(spec)) ?? assert.fail('not DHCP');
const roundTrip = (p: DhcpPacket): DhcpPacket => parseDhcpPacket(encodeDhcpPacket(p));

let lab: Lab;
before(async () => { lab = await templateLab(); });

describe('boot chain by stage: firmware gets iPXE, iPXE gets the script, never the other way round', () => {
  const firmware: Array<[string, ClientSpec, { file: string; tftp: boolean; vendorClass?: string }]> = [
    ['BIOS PXE (arch 0)', { mac: HOST_MAC, arch: 0, vendorClass: pxeVendor(0) }, { file: IPXE_BINARIES.bios, tftp: true }],
    ['UEFI x64 PXE (arch 7)', { mac: HOST_MAC, arch: 7, vendorClass: pxeVendor(7) }, { file: IPXE_BINARIES.uefi, tftp: true }],
    ['UEFI x64 PXE (arch 9)', { mac: HOST_MAC, arch: 9, vendorClass: pxeVendor(9) }, { file: IPXE_BINARIES.uefi, tftp: true }],
    ['UEFI HTTP boot (arch 16, HTTPClient)', { mac: HOST_MAC, arch: 16, vendorClass: httpVendor(16) }, { file: `http://${AGENT}:8080/ipxe.efi`, tftp: false, vendorClass: 'HTTPClient' }],
  ];
  for (const [name, spec, want] of firmware) {
    it(`${name} firmware gets ${want.file}`, () => {
      const policy = new ReservationPolicy(() => generationOf(lab));
      const client = info(spec);
      assert.equal(client.bootStage, 'firmware');
      for (const answer of [policy.answer(client), policy.boot(client)]) {
        assert.ok(answer);
        assert.equal(answer.bootFile, want.file);
        assert.equal(answer.nextServer, want.tftp ? AGENT : undefined);
        assert.equal(answer.vendorClass, want.vendorClass);
        assert.ok(!answer.bootFile.endsWith('boot.ipxe'));
      }
      const reply = roundTrip(buildReply(clientPacket(spec), 'offer', policy.answer(client) ?? assert.fail(), ctx));
      assert.equal(reply.file, want.file);
      assert.equal(reply.yiaddr, '10.77.0.101');
      assert.equal(O.readString(reply.options, Opt.vendorClass), want.vendorClass);
    });
  }

  for (const arch of [0, 7, 9, 16]) {
    it(`iPXE (arch ${arch}, user class iPXE) gets the HTTP entry script and no-pxedhcp`, () => {
      const policy = new ReservationPolicy(() => generationOf(lab));
      const client = info({ mac: HOST_MAC, arch, vendorClass: arch === 16 ? httpVendor(arch) : pxeVendor(arch), userClass: 'iPXE' });
      assert.equal(client.bootStage, 'ipxe');
      const answer = policy.answer(client);
      assert.equal(answer?.bootFile, `http://${AGENT}:8080/boot.ipxe`);
      assert.equal(answer?.ipxeNoProxyDhcp, true);
      assert.equal(policy.boot(client)?.bootFile, `http://${AGENT}:8080/boot.ipxe`);
    });
  }

  it('the installed OS gets an address and no boot file; so does a second NIC of the host', () => {
    const policy = new ReservationPolicy(() => generationOf(lab));
    const os = policy.answer(info({ mac: HOST_MAC, vendorClass: 'udhcp 1.35.0' }));
    assert.equal(os?.ip, '10.77.0.101');
    assert.equal(os?.hostname, 'bld-001');
    assert.equal(os?.bootFile, undefined);
    assert.equal(policy.answer(info({ mac: SECOND_NIC }))?.ip, '10.77.0.101');
  });
});

describe('proxyDHCP decisions (PXE 2.1)', () => {
  const policy = (): ReservationPolicy => new ReservationPolicy(() => generationOf(lab));
  const bios = { mac: HOST_MAC, arch: 0, vendorClass: pxeVendor(0) };
  const cases: Array<[string, ClientSpec, boolean, string, string?]> = [
    ['DISCOVER on 67', bios, false, 'offer'],
    ['REQUEST on 67 for the real server', { ...bios, type: 'request', serverId: '10.77.0.1', requestedIp: '10.77.0.150' }, false, 'ignored', 'other-server'],
    ['REQUEST on 67 naming the proxy', { ...bios, type: 'request', serverId: AGENT }, false, 'ack'],
    ['REQUEST on 4011', { ...bios, type: 'request', ciaddr: '10.77.0.150' }, true, 'ack'],
    ['INFORM on 4011', { ...bios, type: 'inform', ciaddr: '10.77.0.150' }, true, 'ack'],
    ['DISCOVER on 4011', bios, true, 'ignored', 'not-a-request'],
    ['an OS DHCP client', { mac: HOST_MAC, vendorClass: 'udhcp 1.35.0' }, false, 'ignored', 'not-a-boot-client'],
    ['a PXE ROM nobody declared', { ...bios, mac: UNKNOWN_MAC }, false, 'ignored', 'policy-refused'],
    ['RELEASE', { ...bios, type: 'release', serverId: AGENT }, false, 'ignored', 'not-a-request'],
  ];
  for (const [name, spec, onPxePort, action, reason] of cases) {
    it(`${name}: ${action}${reason ? ` (${reason})` : ''}`, () => {
      const d = decideProxyReply(info(spec), AGENT, policy(), onPxePort);
      assert.equal(d.action, action);
      if (reason) assert.equal(d.action === 'ignored' ? d.reason : undefined, reason);
    });
  }

  it('a proxy OFFER has no address, says PXEClient, boots the file without discovery, echoes the UUID', () => {
    const request = clientPacket({ ...bios, uuid: true });
    const answer = policy().boot(classifyClient(request) ?? assert.fail()) ?? assert.fail();
    const reply = roundTrip(buildProxyReply(request, 'offer', answer, ctx, false));
    assert.equal(reply.yiaddr, '0.0.0.0');
    assert.equal(reply.siaddr, AGENT);
    assert.equal(reply.file, 'undionly.kpxe');
    assert.equal(O.readString(reply.options, Opt.bootFile), 'undionly.kpxe');
    assert.equal(O.readString(reply.options, Opt.vendorClass), 'PXEClient');
    assert.equal(O.readMessageType(reply.options), 'offer');
    assert.equal(O.readIp(reply.options, Opt.serverId), AGENT);
    assert.deepEqual(O.readEncapsulated(reply.options, Opt.vendorSpecific), new Map([[6, Buffer.from([8])]]));
    assert.deepEqual(reply.options.get(Opt.uuid), request.options.get(Opt.uuid));
    for (const code of [Opt.leaseTime, Opt.subnetMask, Opt.router, Opt.ipxeEncap]) assert.equal(reply.options.has(code), false, `option ${code}`);
  });

  it('a proxy reply to UEFI HTTP boot says HTTPClient and carries no PXE option 43', () => {
    const request = clientPacket({ mac: HOST_MAC, arch: 16, vendorClass: httpVendor(16) });
    const answer = policy().boot(classifyClient(request) ?? assert.fail()) ?? assert.fail();
    const reply = roundTrip(buildProxyReply(request, 'offer', answer, ctx, true));
    assert.equal(O.readString(reply.options, Opt.vendorClass), 'HTTPClient');
    assert.equal(reply.file, `http://${AGENT}:8080/ipxe.efi`);
    assert.equal(reply.options.has(Opt.vendorSpecific), false);
  });
});

describe('the pool for machines not in hosts/', () => {
  it('without a pool an unknown machine gets nothing', () => {
    const policy = new ReservationPolicy(() => generationOf(lab));
    assert.equal(policy.answer(info({ mac: UNKNOWN_MAC })), null);
  });

  it('an unknown machine gets a pool address with the site options and no boot file, even from PXE firmware', () => {
    const pool = new LeasePool({ range: { start: '10.77.0.200', end: '10.77.0.249' }, leaseSeconds: 600 });
    const policy = new ReservationPolicy(() => generationOf(lab), { pool });
    const offer = policy.answer(info({ mac: UNKNOWN_MAC, arch: 0, vendorClass: pxeVendor(0) }));
    assert.equal(offer?.ip, '10.77.0.200');
    assert.equal(offer?.router, '10.77.0.1');
    assert.equal(offer?.bootFile, undefined);
    const request = info({ mac: UNKNOWN_MAC, type: 'request', serverId: AGENT, requestedIp: '10.77.0.200' });
    assert.equal(decideReply(request, AGENT, policy).action, 'ack');
    assert.equal(pool.leaseOf(UNKNOWN_MAC)?.state, 'bound');
  });

  it('while site.yaml discovery is enabled an unknown machine also gets the boot chain (full and proxy), its OS nothing', () => {
    const discovering: Lab = { ...lab, site: { ...lab.site, discovery: { ...lab.site.discovery, enabled: true, image: 'wipe' } } };
    const pool = new LeasePool({ range: { start: '10.77.0.200', end: '10.77.0.249' }, leaseSeconds: 600 });
    const policy = new ReservationPolicy(() => generationOf(discovering), { pool });
    const firmware = info({ mac: UNKNOWN_MAC, arch: 0, vendorClass: pxeVendor(0) });
    const offer = policy.answer(firmware);
    assert.deepEqual([offer?.ip, offer?.bootFile, offer?.nextServer], ['10.77.0.200', IPXE_BINARIES.bios, AGENT]);
    const ipxe = policy.answer(info({ mac: UNKNOWN_MAC, arch: 0, vendorClass: pxeVendor(0), userClass: 'iPXE' }));
    assert.deepEqual([ipxe?.ip, ipxe?.bootFile, ipxe?.ipxeNoProxyDhcp], ['10.77.0.200', `http://${AGENT}:8080/boot.ipxe`, true]);
    assert.equal(policy.answer(info({ mac: UNKNOWN_MAC, vendorClass: 'udhcp 1.35.0' }))?.bootFile, undefined);
    assert.equal(policy.boot(firmware)?.bootFile, IPXE_BINARIES.bios, 'proxy mode');
    assert.equal(new ReservationPolicy(() => generationOf(lab)).boot(firmware), null, 'discovery off: no boot information');
  });

  it('never hands out a reserved address, the agent, the gateway, network or broadcast, even when the range covers them', () => {
    // A range over the whole subnet (validation forbids overlaps; the pool must not rely on it).
    const pool = new LeasePool({ range: { start: '10.77.0.0', end: '10.77.0.255' }, leaseSeconds: 600 });
    const policy = new ReservationPolicy(() => generationOf(lab), { pool });
    const reserved = new Set([...lab.hosts.values()].map((h) => h.ip));
    const given = new Set<string>();
    for (let i = 0; i < 300; i += 1) {
      const mac = `02:00:00:77:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
      const ip = policy.answer(info({ mac }))?.ip;
      if (ip) given.add(ip);
    }
    assert.equal(given.size, 256 - 4 - reserved.size, 'every other address, once');
    for (const ip of ['10.77.0.0', '10.77.0.1', AGENT, '10.77.0.255', ...reserved]) assert.equal(given.has(ip), false, ip);
  });

  it('pool leases follow the client identifier; a declared host is answered by its MAC whatever identifier it sends', () => {
    const pool = new LeasePool({ range: { start: '10.77.0.200', end: '10.77.0.249' }, leaseSeconds: 600 });
    const policy = new ReservationPolicy(() => generationOf(lab), { pool });
    const installer = info({ mac: UNKNOWN_MAC, clientId: 'ff00000001000100012b4c5d6e020000770001' });
    const os = info({ mac: UNKNOWN_MAC, clientId: 'ff000000020001000130405060020000770001' });
    assert.equal(policy.answer(installer)?.ip, '10.77.0.200');
    assert.equal(policy.answer(os)?.ip, '10.77.0.201', 'same NIC, another client identifier: another client');
    assert.equal(policy.answer(info({ mac: '02:00:00:77:00:99', clientId: 'ff00000001000100012b4c5d6e020000770001' }))?.ip, '10.77.0.200', 'the identifier, not the NIC, holds the lease');
    const request = info({ mac: UNKNOWN_MAC, type: 'request', serverId: AGENT, requestedIp: '10.77.0.201', clientId: 'ff000000020001000130405060020000770001' });
    assert.equal(decideReply(request, AGENT, policy).action, 'ack');
    assert.equal(pool.leaseOf('id:ff000000020001000130405060020000770001')?.state, 'bound');
    const host = info({ mac: HOST_MAC, clientId: 'ff00000001000100012b4c5d6e9c8e994a1001' });
    assert.equal(policy.answer(host)?.ip, '10.77.0.101', 'bld-001 keeps its reservation');
    const reply = roundTrip(buildReply(clientPacket({ mac: HOST_MAC, clientId: 'ff00000001000100012b4c5d6e9c8e994a1001' }), 'offer', policy.answer(host) ?? assert.fail(), ctx));
    assert.equal(reply.options.get(Opt.clientId)?.toString('hex'), 'ff00000001000100012b4c5d6e9c8e994a1001', 'option 61 echoed (RFC 6842)');
  });

  it('RELEASE and DECLINE reach the pool', () => {
    const pool = new LeasePool({ range: { start: '10.77.0.200', end: '10.77.0.201' }, leaseSeconds: 600 });
    const policy = new ReservationPolicy(() => generationOf(lab), { pool });
    policy.answer(info({ mac: UNKNOWN_MAC, type: 'request', requestedIp: '10.77.0.200' }));
    policy.decline(info({ mac: UNKNOWN_MAC, type: 'decline', requestedIp: '10.77.0.200', serverId: AGENT }));
    assert.equal(policy.answer(info({ mac: UNKNOWN_MAC }))?.ip, '10.77.0.201', 'the declined address is skipped');
    policy.answer(info({ mac: UNKNOWN_MAC, type: 'request', requestedIp: '10.77.0.201' }));
    policy.release(info({ mac: UNKNOWN_MAC, type: 'release', ciaddr: '10.77.0.201', serverId: AGENT }));
    assert.equal(policy.answer(info({ mac: '02:00:00:77:00:02' }))?.ip, '10.77.0.201', 'a released address is free for others');
  });
});
