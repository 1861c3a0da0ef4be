import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyClient, type ClientInfo } from '../src/serve/dhcp/client-info.ts';
import { decideReply } from '../src/serve/dhcp/decide.ts';
import { DhcpEncodeError } from '../src/serve/dhcp/errors.ts';
import * as O from '../src/serve/dhcp/options.ts';
import { Opt } from '../src/serve/dhcp/options.ts';
import { BootOp, BROADCAST_FLAG, chaddrFromMac, emptyPacket, encodeDhcpPacket, parseDhcpPacket, type DhcpPacket } from '../src/serve/dhcp/packet.ts';
import { buildReply, replyDestination, type ReplyContext } from '../src/serve/dhcp/reply.ts';
import type { DhcpAnswer, DhcpLogger, DhcpPolicy } from '../src/serve/dhcp/types.ts';
import { createLogger } from '../src/log.ts';

const SERVER = '10.77.0.1';
const ctx: ReplyContext = { serverIp: SERVER, subnet: { network: '10.77.0.0', prefix: 24 }, serverPort: 67, clientPort: 68 };
const answer: DhcpAnswer = {
  ip: '10.77.0.20', leaseSeconds: 600, router: '10.77.0.1', dns: ['10.77.0.1'], hostname: 'bld-003', domain: 'lab.test',
  bootFile: 'undionly.kpxe', nextServer: '10.77.0.5', ipxeNoProxyDhcp: true,
};
const policy: DhcpPolicy = { answer: (c) => (c.mac === '02:00:00:00:00:01' ? answer : null) };

function request(type: O.MessageTypeName, extra: { requestedIp?: string; serverId?: string; ciaddr?: string; giaddr?: string; mac?: string } = {}): DhcpPacket {
  const p = emptyPacket(BootOp.request);
  p.xid = 42;
  p.chaddr = chaddrFromMac(extra.mac ?? '02:00:00:00:00:01');
  p.ciaddr = extra.ciaddr ?? '0.0.0.0';
  p.giaddr = extra.giaddr ?? '0.0.0.0';
  p.options.set(Opt.messageType, O.uint8(O.MessageType[type]));
  p.options.set(Opt.clientId, Buffer.from('01020000000001', 'hex'));
  if (extra.requestedIp) p.options.set(Opt.requestedIp, O.ip(extra.requestedIp));
  if (extra.serverId) p.options.set(Opt.serverId, O.ip(extra.serverId));
  return p;
}
const info = (p: DhcpPacket): ClientInfo => classifyClient(p) ?? assert.fail('not a DHCP packet');

describe('decideReply (RFC 2131 4.3)', () => {
  const cases: Array<[string, DhcpPacket, string, string?]> = [
    ['DISCOVER of a known host', request('discover'), 'offer'],
    ['DISCOVER of an unknown host', request('discover', { mac: '02:00:00:00:00:99' }), 'ignored', 'policy-refused'],
    ['SELECTING with the right address', request('request', { serverId: SERVER, requestedIp: '10.77.0.20' }), 'ack'],
    ['SELECTING with a wrong address', request('request', { serverId: SERVER, requestedIp: '10.77.0.21' }), 'nak', 'wrong-address'],
    ['SELECTING another server', request('request', { serverId: '10.77.0.2', requestedIp: '10.77.0.20' }), 'ignored', 'other-server'],
    ['INIT-REBOOT right', request('request', { requestedIp: '10.77.0.20' }), 'ack'],
    ['INIT-REBOOT wrong', request('request', { requestedIp: '192.168.1.7' }), 'nak', 'wrong-address'],
    ['INIT-REBOOT unknown host stays silent', request('request', { requestedIp: '10.77.0.20', mac: '02:00:00:00:00:99' }), 'ignored', 'policy-refused'],
    ['RENEWING right', request('request', { ciaddr: '10.77.0.20' }), 'ack'],
    ['RENEWING wrong', request('request', { ciaddr: '10.77.0.30' }), 'nak', 'wrong-address'],
    ['REQUEST without any address', request('request'), 'ignored', 'no-address-in-request'],
    ['INFORM', request('inform', { ciaddr: '10.77.0.20' }), 'inform-ack'],
    ['RELEASE', request('release', { serverId: SERVER, ciaddr: '10.77.0.20' }), 'released'],
    ['DECLINE', request('decline', { serverId: SERVER, requestedIp: '10.77.0.20' }), 'declined'],
    ['RELEASE to another server', request('release', { serverId: '10.77.0.2', ciaddr: '10.77.0.20' }), 'ignored', 'other-server'],
    ['an OFFER sent to port 67', request('offer'), 'ignored', 'not-a-request'],
  ];
  for (const [name, packet, action, reason] of cases) {
    it(name, () => {
      const d = decideReply(info(packet), SERVER, policy);
      assert.equal(d.action, action);
      assert.equal('reason' in d ? d.reason : undefined, reason);
    });
  }

  it('does not consult the policy for a REQUEST to another server', () => {
    const d = decideReply(info(request('request', { serverId: '10.77.0.2', requestedIp: '10.77.0.20' })), SERVER, { answer: () => assert.fail('policy called') });
    assert.equal(d.action, 'ignored');
  });
});

describe('buildReply', () => {
  it('OFFER carries the full answer, boot file in file and option 67, siaddr = nextServer', () => {
    const r = parseDhcpPacket(encodeDhcpPacket(buildReply(request('discover'), 'offer', answer, ctx)));
    assert.equal(r.op, BootOp.reply);
    assert.equal(r.xid, 42);
    assert.equal(r.yiaddr, '10.77.0.20');
    assert.equal(r.siaddr, '10.77.0.5');
    assert.equal(r.file, 'undionly.kpxe');
    const o = r.options;
    assert.equal(O.readMessageType(o), 'offer');
    assert.equal(O.readIp(o, Opt.serverId), SERVER);
    assert.equal(O.readUint32(o, Opt.leaseTime), 600);
    assert.equal(O.readUint32(o, Opt.renewalTime), 300);
    assert.equal(O.readUint32(o, Opt.rebindingTime), 525);
    assert.equal(O.readIp(o, Opt.subnetMask), '255.255.255.0');
    assert.equal(O.readIp(o, Opt.broadcast), '10.77.0.255');
    assert.equal(O.readIp(o, Opt.router), '10.77.0.1');
    assert.deepEqual(O.readIpList(o, Opt.dns), ['10.77.0.1']);
    assert.equal(O.readString(o, Opt.hostname), 'bld-003');
    assert.equal(O.readString(o, Opt.domain), 'lab.test');
    assert.equal(O.readString(o, Opt.bootFile), 'undionly.kpxe');
    assert.equal(O.readString(o, Opt.tftpServer), '10.77.0.5');
    assert.equal(o.get(Opt.ipxeEncap)?.toString('hex'), 'b00101');
    assert.equal(o.get(Opt.clientId)?.toString('hex'), '01020000000001', 'client id echoed (RFC 6842)');
  });

  it('siaddr defaults to the server; a long boot URL goes only in option 67', () => {
    const url = `http://10.77.0.1:8080/boot/${'x'.repeat(140)}.ipxe`;
    const r = buildReply(request('discover'), 'ack', { ip: '10.77.0.20', leaseSeconds: 60, bootFile: url }, ctx);
    assert.equal(r.siaddr, SERVER);
    assert.equal(r.file, '');
    assert.equal(O.readString(r.options, Opt.bootFile), url);
    assert.equal(r.options.has(Opt.tftpServer), false);
  });

  it('INFORM ACK has ciaddr, no yiaddr and no lease', () => {
    const r = buildReply(request('inform', { ciaddr: '10.77.0.20' }), 'inform-ack', answer, ctx);
    assert.equal(O.readMessageType(r.options), 'ack');
    assert.equal(r.yiaddr, '0.0.0.0');
    assert.equal(r.ciaddr, '10.77.0.20');
    assert.equal(r.options.has(Opt.leaseTime), false);
    assert.equal(r.options.has(Opt.renewalTime), false);
  });

  it('NAK carries only type, server id and client id', () => {
    const r = buildReply(request('request', { requestedIp: '10.77.0.99' }), 'nak', answer, ctx);
    assert.deepEqual([...r.options.keys()].sort((a, b) => a - b), [Opt.messageType, Opt.serverId, Opt.clientId]);
    assert.equal(r.yiaddr, '0.0.0.0');
    assert.equal(r.siaddr, '0.0.0.0');
  });

  it('a relayed NAK asks the relay to broadcast', () => {
    const r = buildReply(request('request', { requestedIp: '10.50.0.99', giaddr: '10.50.0.1' }), 'nak', answer, ctx);
    assert.equal(r.flags & BROADCAST_FLAG, BROADCAST_FLAG);
  });

  it('refuses answers that would misconfigure the client', () => {
    assert.throws(() => buildReply(request('discover'), 'offer', { ip: '10.78.0.20', leaseSeconds: 60 }, ctx), DhcpEncodeError);
    assert.throws(() => buildReply(request('discover'), 'offer', { ip: 'nope', leaseSeconds: 60 }, ctx), DhcpEncodeError);
    assert.throws(() => buildReply(request('discover'), 'offer', { ip: '10.77.0.20', leaseSeconds: 0 }, ctx), DhcpEncodeError);
    assert.throws(() => buildReply(request('discover'), 'offer', { ip: '10.77.0.20', leaseSeconds: 60, hostname: 'a\nb' }, ctx), DhcpEncodeError);
  });

  it('a relayed subnet uses the answer prefix', () => {
    const r = buildReply(request('discover', { giaddr: '10.50.0.1' }), 'offer', { ip: '10.50.0.20', prefix: 23, leaseSeconds: 60 }, ctx);
    assert.equal(O.readIp(r.options, Opt.subnetMask), '255.255.254.0');
    assert.equal(O.readIp(r.options, Opt.broadcast), '10.50.1.255');
    assert.equal(r.giaddr, '10.50.0.1');
  });
});

describe('replyDestination', () => {
  it('relay: unicast to giaddr on the server port', () => {
    assert.deepEqual(replyDestination(request('discover', { giaddr: '10.50.0.1' }), 'offer', ctx), { address: '10.50.0.1', port: 67 });
  });
  it('client with an address: unicast to ciaddr', () => {
    assert.deepEqual(replyDestination(request('request', { ciaddr: '10.77.0.20' }), 'ack', ctx), { address: '10.77.0.20', port: 68 });
  });
  it('client without an address: directed broadcast of the subnet', () => {
    assert.deepEqual(replyDestination(request('discover'), 'offer', ctx), { address: '10.77.0.255', port: 68 });
  });
  it('NAK is broadcast even when ciaddr is set', () => {
    assert.deepEqual(replyDestination(request('request', { ciaddr: '10.77.0.30' }), 'nak', ctx), { address: '10.77.0.255', port: 68 });
  });
});

it('a pino logger satisfies DhcpLogger', () => {
  const log: DhcpLogger = createLogger({ level: 'silent' });
  log.debug({ a: 1 }, 'typechecks');
});
