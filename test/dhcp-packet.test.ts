import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyClient } from '../src/serve/dhcp/client-info.ts';
import { DhcpEncodeError, DhcpParseError } from '../src/serve/dhcp/errors.ts';
import * as O from '../src/serve/dhcp/options.ts';
import { Opt } from '../src/serve/dhcp/options.ts';
import { BootOp, chaddrFromMac, emptyPacket, encodeDhcpPacket, hardwareAddress, hasBroadcastFlag, parseDhcpPacket } from '../src/serve/dhcp/packet.ts';
import * as F from './fixtures/dhcp/captured.ts';
import { mulberry32 } from './fixtures/prng.ts';

describe('encode/parse round trip', () => {
  it('keeps every header field and option', () => {
    const p = emptyPacket(BootOp.reply);
    Object.assign(p, {
      hops: 2, xid: 0xdeadbeef, secs: 7, flags: 0x8000, ciaddr: '10.0.0.9', yiaddr: '10.0.0.10', siaddr: '10.0.0.1', giaddr: '10.1.0.1',
      chaddr: chaddrFromMac('aa:bb:cc:dd:ee:ff'), sname: 'tftp.lab', file: 'undionly.kpxe',
    });
    p.options.set(Opt.messageType, O.uint8(O.MessageType.offer));
    p.options.set(Opt.dns, O.ipList(['10.0.0.2', '10.0.0.3']));
    p.options.set(Opt.leaseTime, O.uint32(86400));
    p.options.set(Opt.ipxeEncap, O.ipxeNoPxeDhcp());
    p.options.set(Opt.bootFile, Buffer.alloc(600, 'a')); // longer than one option: split per RFC 3396
    p.options.set(80, Buffer.alloc(0)); // rapid commit: zero-length value
    const wire = encodeDhcpPacket(p);
    assert.ok(wire.length >= 300, 'BOOTP minimum size');
    const back = parseDhcpPacket(wire);
    assert.deepEqual(back, p);
    assert.equal(hardwareAddress(back), 'aa:bb:cc:dd:ee:ff');
    assert.ok(hasBroadcastFlag(back));
    assert.equal(O.readUint32(back.options, Opt.leaseTime), 86400);
    assert.deepEqual(O.readIpList(back.options, Opt.dns), ['10.0.0.2', '10.0.0.3']);
  });

  it('writes the message type first and an End option', () => {
    const p = emptyPacket(BootOp.request);
    p.options.set(Opt.hostname, O.text('x'));
    p.options.set(Opt.messageType, O.uint8(1));
    const wire = encodeDhcpPacket(p);
    assert.deepEqual([...wire.subarray(240, 243)], [53, 1, 1]);
    assert.deepEqual([...wire.subarray(243, 247)], [12, 1, 0x78, 255]);
  });

  it('option 175 no-pxedhcp is b0 01 01', () => {
    assert.equal(O.ipxeNoPxeDhcp().toString('hex'), 'b00101');
  });

  it('refuses values that do not fit', () => {
    const p = emptyPacket(BootOp.reply);
    p.file = 'f'.repeat(128);
    assert.throws(() => encodeDhcpPacket(p), DhcpEncodeError);
    assert.throws(() => O.ip('10.0.0.256'), DhcpEncodeError);
    assert.throws(() => O.text('tab\there'), DhcpEncodeError);
    assert.throws(() => chaddrFromMac('aa:bb'), DhcpEncodeError);
  });
});

describe('captured-style client packets', () => {
  it('iPXE DISCOVER', () => {
    const p = parseDhcpPacket(F.ipxeDiscover);
    assert.equal(p.xid, 0x2a5f01c3);
    assert.equal(p.secs, 4);
    assert.deepEqual(O.readUserClasses(p.options), ['iPXE']);
    assert.equal(O.readEncapsulated(p.options, Opt.ipxeEncap)?.get(0xb1)?.toString('hex'), '018086100e');
    assert.deepEqual(O.readClientId(p.options), { type: 1, data: Buffer.from('525400123456', 'hex') });
    assert.deepEqual(O.readClientNdi(p.options), { type: 1, major: 2, minor: 1 });
    assert.equal(O.readUuid(p.options), F.fixtureUuid);
    const c = classifyClient(p);
    assert.ok(c);
    assert.equal(c.mac, '52:54:00:12:34:56');
    assert.equal(c.messageType, 'discover');
    assert.equal(c.firmware, 'bios');
    assert.equal(c.isIpxe, true);
    assert.equal(c.isPxeRom, true, 'iPXE announces itself as PXEClient too');
    assert.equal(c.bootStage, 'ipxe');
    assert.ok(c.paramRequestList.includes(Opt.ipxeEncap));
  });

  it('iPXE is recognised by option 175 alone', () => {
    const p = parseDhcpPacket(F.ipxeDiscover);
    p.options.delete(Opt.userClass);
    assert.equal(classifyClient(p)?.isIpxe, true);
  });

  it('SeaBIOS PXE ROM DISCOVER', () => {
    const p = parseDhcpPacket(F.pxeRomDiscover);
    assert.ok(hasBroadcastFlag(p));
    const c = classifyClient(p);
    assert.ok(c);
    assert.equal(c.vendorClass, 'PXEClient:Arch:00000:UNDI:002001');
    assert.equal(c.clientArch, 0);
    assert.equal(c.firmware, 'bios');
    assert.equal(c.isPxeRom, true);
    assert.equal(c.isIpxe, false);
    assert.equal(c.bootStage, 'firmware');
    assert.equal(c.broadcastFlag, true);
    assert.equal(c.uuid, F.fixtureUuid);
  });

  it('UEFI x64 DISCOVER', () => {
    const c = classifyClient(parseDhcpPacket(F.uefiDiscover));
    assert.equal(c?.clientArch, 7);
    assert.equal(c?.firmware, 'uefi-x64');
    assert.equal(c?.bootStage, 'firmware');
  });

  it('UEFI HTTP boot DISCOVER', () => {
    const c = classifyClient(parseDhcpPacket(F.uefiHttpDiscover));
    assert.equal(c?.firmware, 'uefi-http');
    assert.equal(c?.isHttpBoot, true);
    assert.equal(c?.isPxeRom, false);
    assert.equal(c?.bootStage, 'firmware');
  });

  it('udhcpc DISCOVER is an OS client', () => {
    const c = classifyClient(parseDhcpPacket(F.udhcpcDiscover));
    assert.equal(c?.hostname, 'node-a');
    assert.equal(c?.vendorClass, 'udhcp 1.35.0');
    assert.equal(c?.firmware, 'unknown');
    assert.equal(c?.isIpxe, false);
    assert.equal(c?.isPxeRom, false);
    assert.equal(c?.bootStage, 'os');
  });

  it('the lease key is the client identifier when there is one (RFC 2131 4.2), else the MAC', () => {
    // iPXE and udhcpc send option 61 = type 1 + their own chaddr: that is the MAC, the same client as without it.
    assert.equal(classifyClient(parseDhcpPacket(F.ipxeDiscover))?.leaseKey, '52:54:00:12:34:56');
    assert.equal(classifyClient(parseDhcpPacket(F.udhcpcDiscover))?.leaseKey, '02:00:00:99:00:10');
    assert.equal(classifyClient(parseDhcpPacket(F.pxeRomDiscover))?.leaseKey, '52:54:00:ab:cd:ef', 'no option 61');
    const p = parseDhcpPacket(F.udhcpcDiscover);
    p.options.set(Opt.clientId, Buffer.from('ff00000001000100012b4c5d6e525400123456', 'hex')); // systemd-networkd: IAID + DUID
    assert.equal(classifyClient(p)?.leaseKey, 'id:ff00000001000100012b4c5d6e525400123456');
    p.options.set(Opt.clientId, Buffer.from('01020000990011', 'hex')); // type 1, but another MAC than chaddr
    assert.equal(classifyClient(p)?.leaseKey, 'id:01020000990011');
    assert.equal(classifyClient(p)?.mac, '02:00:00:99:00:10', 'the MAC stays chaddr');
    p.options.set(Opt.clientId, Buffer.from('01', 'hex')); // too short to name anyone (RFC 2132 9.14)
    assert.equal(classifyClient(p)?.leaseKey, '02:00:00:99:00:10');
  });

  it('arch 9 and 11 map to uefi-x64 and arm64-uefi', () => {
    const p = parseDhcpPacket(F.uefiDiscover);
    p.options.set(Opt.clientArch, O.uint16(9));
    assert.equal(classifyClient(p)?.firmware, 'uefi-x64');
    p.options.set(Opt.clientArch, O.uint16(11));
    assert.equal(classifyClient(p)?.firmware, 'arm64-uefi');
    p.options.set(Opt.clientArch, O.uint16(6));
    assert.equal(classifyClient(p)?.firmware, 'unknown');
  });

  it('option overload: options in file then sname, repeated options concatenated', () => {
    const p = parseDhcpPacket(F.overloadedRequest);
    assert.equal(p.file, '');
    assert.equal(p.sname, '');
    assert.equal(O.readIp(p.options, Opt.requestedIp), '10.99.0.50');
    assert.equal(O.readIp(p.options, Opt.serverId), '10.99.0.1');
    assert.equal(O.readString(p.options, Opt.hostname), 'loadover');
    assert.equal(classifyClient(p)?.messageType, 'request');
  });

  it('RFC 3004 user class list', () => {
    const opts: O.DhcpOptions = new Map([[Opt.userClass, O.userClasses(['iPXE', 'lab'])]]);
    assert.deepEqual(O.readUserClasses(opts), ['iPXE', 'lab']);
  });

  it('a packet without option 53 is BOOTP, not classified', () => {
    const p = parseDhcpPacket(F.udhcpcDiscover);
    p.options.delete(Opt.messageType);
    assert.equal(classifyClient(p), undefined);
  });
});

describe('malformed packets', () => {
  const cases: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['truncated header', F.udhcpcDiscover.subarray(0, 200)],
    ['header without cookie', F.udhcpcDiscover.subarray(0, 236)],
    ['bad cookie', Buffer.concat([F.udhcpcDiscover.subarray(0, 236), Buffer.from('63825364', 'hex'), F.udhcpcDiscover.subarray(240)])],
    ['option length past end', Buffer.concat([F.udhcpcDiscover.subarray(0, 240), Buffer.from([53, 1, 1, 12, 40, 0x61])])],
    ['option without length byte', Buffer.concat([F.udhcpcDiscover.subarray(0, 240), Buffer.from([53, 1, 1, 12])])],
    ['unknown op', Buffer.concat([Buffer.from([3]), F.udhcpcDiscover.subarray(1)])],
    ['hlen over 16', Buffer.concat([F.udhcpcDiscover.subarray(0, 2), Buffer.from([17]), F.udhcpcDiscover.subarray(3)])],
  ];
  for (const [name, buf] of cases) {
    it(`rejects ${name} with DhcpParseError`, () => assert.throws(() => parseDhcpPacket(buf), DhcpParseError));
  }

  it('a missing End option is tolerated', () => {
    const p = parseDhcpPacket(F.udhcpcDiscover.subarray(0, F.udhcpcDiscover.length - 1));
    assert.equal(O.readString(p.options, Opt.hostname), 'node-a');
  });

  it('odd option values read as absent instead of throwing', () => {
    const p = parseDhcpPacket(F.udhcpcDiscover);
    for (const code of [Opt.requestedIp, Opt.serverId, Opt.clientArch, Opt.clientId, Opt.uuid, Opt.clientNdi, Opt.userClass]) {
      p.options.set(code, Buffer.from([7, 7, 7]));
    }
    const c = classifyClient(p);
    assert.equal(c?.requestedIp, undefined);
    assert.equal(c?.serverId, undefined);
    assert.equal(c?.clientArch, undefined);
    assert.equal(c?.uuid, undefined);
  });

  it('hundreds of mutated and random packets: parse returns or throws DhcpParseError, nothing else', () => {
    const rand = mulberry32(0xf0e5e71);
    const seeds = [F.ipxeDiscover, F.pxeRomDiscover, F.uefiDiscover, F.uefiHttpDiscover, F.udhcpcDiscover, F.overloadedRequest];
    let parsed = 0;
    let rejected = 0;
    for (let i = 0; i < 600; i++) {
      const buf = mutate(seeds[i % seeds.length] ?? Buffer.alloc(0), rand, i);
      try {
        const p = parseDhcpPacket(buf);
        classifyClient(p);
        parsed++;
        try {
          const again = parseDhcpPacket(encodeDhcpPacket(p));
          assert.deepEqual(again.options, p.options);
        } catch (err) {
          if (!(err instanceof DhcpEncodeError)) throw err;
        }
      } catch (err) {
        if (!(err instanceof DhcpParseError)) throw err;
        rejected++;
      }
    }
    assert.ok(parsed > 50 && rejected > 50, `both outcomes exercised (parsed ${parsed}, rejected ${rejected})`);
  });
});

function mutate(seed: Buffer, rand: () => number, i: number): Buffer {
  const int = (n: number): number => Math.floor(rand() * n);
  switch (i % 4) {
    case 0: { // flip a few bytes anywhere, biased towards the options area
      const b = Buffer.from(seed);
      for (let k = 0; k < 1 + int(4); k++) b[rand() < 0.7 ? 240 + int(b.length - 240) : int(b.length)] = int(256);
      return b;
    }
    case 1: return seed.subarray(0, int(seed.length + 1)); // truncate
    case 2: { // valid header and cookie, random option bytes
      const tail = Buffer.alloc(int(80));
      for (let k = 0; k < tail.length; k++) tail[k] = int(256);
      return Buffer.concat([seed.subarray(0, 240), tail]);
    }
    default: { // pure noise, sometimes long enough to reach the cookie check
      const b = Buffer.alloc(int(400));
      for (let k = 0; k < b.length; k++) b[k] = int(256);
      return b;
    }
  }
}

