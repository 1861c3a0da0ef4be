import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { TftpParseError } from '../src/serve/tftp/errors.ts';
import { negotiate, MAX_BLKSIZE, MAX_WINDOWSIZE } from '../src/serve/tftp/options.ts';
import { Opcode, encodeAck, encodeData, encodeError, encodeOack, encodeRequest, parsePacket } from '../src/serve/tftp/packet.ts';

describe('tftp packet', () => {
  it('parses a read request with options, lower-casing mode and option names', () => {
    const raw = Buffer.from('\x00\x01pxelinux.0\x00OCTET\x00BlkSize\x001428\x00tsize\x000\x00', 'latin1');
    const p = parsePacket(raw);
    assert.equal(p.opcode, Opcode.RRQ);
    if (p.opcode !== Opcode.RRQ) return;
    assert.equal(p.filename, 'pxelinux.0');
    assert.equal(p.mode, 'octet');
    assert.deepEqual([...p.options], [['blksize', '1428'], ['tsize', '0']]);
  });

  it('round-trips every packet kind', () => {
    const wrq = parsePacket(encodeRequest(Opcode.WRQ, 'a/b', 'netascii', [['windowsize', '8']]));
    assert.deepEqual(wrq, { opcode: Opcode.WRQ, filename: 'a/b', mode: 'netascii', options: new Map([['windowsize', '8']]) });
    assert.deepEqual(parsePacket(encodeData(65535, Buffer.from('xyz'))), { opcode: Opcode.DATA, block: 65535, data: Buffer.from('xyz') });
    assert.deepEqual(parsePacket(encodeData(65536, Buffer.alloc(0))), { opcode: Opcode.DATA, block: 0, data: Buffer.alloc(0) });
    assert.deepEqual(parsePacket(encodeAck(7)), { opcode: Opcode.ACK, block: 7 });
    assert.deepEqual(parsePacket(encodeError(1, 'File not found')), { opcode: Opcode.ERROR, code: 1, message: 'File not found' });
    assert.deepEqual(parsePacket(encodeOack([['blksize', '512'], ['tsize', '99']])), { opcode: Opcode.OACK, options: new Map([['blksize', '512'], ['tsize', '99']]) });
  });

  it('keeps the first of duplicated options', () => {
    const p = parsePacket(encodeRequest(Opcode.RRQ, 'f', 'octet', [['blksize', '1024'], ['BLKSIZE', '8']]));
    assert.equal(p.opcode === Opcode.RRQ && p.options.get('blksize'), '1024');
  });

  it('rejects malformed packets with TftpParseError', () => {
    const bad = [
      Buffer.alloc(0),
      Buffer.from([0]),
      Buffer.from([0, 9, 0, 0]), // unknown opcode
      Buffer.from('\x00\x01file', 'latin1'), // unterminated name
      Buffer.from('\x00\x01file\x00', 'latin1'), // no mode
      Buffer.from('\x00\x01file\x00octet', 'latin1'), // unterminated mode
      Buffer.from('\x00\x01file\x00binary\x00', 'latin1'), // unknown mode
      Buffer.from('\x00\x01file\x00octet\x00blksize\x00', 'latin1'), // option without value
      Buffer.from('\x00\x01file\x00octet\x00\x00512\x00', 'latin1'), // empty option name
      Buffer.from([0, 3, 0]), // short DATA
      Buffer.from([0, 4, 0]), // short ACK
      Buffer.from([0, 5, 0]), // short ERROR
      Buffer.from('\x00\x06blksize', 'latin1'), // unterminated OACK
    ];
    for (const buf of bad) assert.throws(() => parsePacket(buf), TftpParseError, buf.toString('hex'));
  });

  it('never throws anything but TftpParseError on random input', () => {
    for (let i = 0; i < 20000; i++) {
      const buf = randomBytes(i % 40);
      if (i % 3 === 0 && buf.length >= 2) buf[0] = 0; // bias towards valid opcodes
      if (i % 3 === 0 && buf.length >= 2) buf[1] = (buf[1] ?? 0) % 7;
      try {
        parsePacket(buf);
      } catch (err) {
        assert.ok(err instanceof TftpParseError, `unexpected ${String(err)} for ${buf.toString('hex')}`);
      }
    }
  });
});

describe('tftp option negotiation', () => {
  const opts = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));

  it('accepts nothing when nothing usable was asked (plain RFC 1350, no OACK)', () => {
    assert.deepEqual(negotiate(opts({}), 10), { blksize: 512, windowsize: 1, timeoutMs: undefined, accepted: [] });
    assert.deepEqual(negotiate(opts({ blksize: '7', timeout: '0', windowsize: '0', multicast: '', tsize: 'x' }), 10).accepted, []);
  });

  it('clamps blksize and windowsize and echoes tsize and timeout', () => {
    const n = negotiate(opts({ blksize: '100000', tsize: '0', timeout: '3', windowsize: '65535' }), 1234);
    assert.equal(n.blksize, MAX_BLKSIZE);
    assert.equal(n.windowsize, MAX_WINDOWSIZE);
    assert.equal(n.timeoutMs, 3000);
    assert.deepEqual(n.accepted, [['blksize', String(MAX_BLKSIZE)], ['tsize', '1234'], ['timeout', '3'], ['windowsize', String(MAX_WINDOWSIZE)]]);
  });

  it('omits tsize when the size is unknown (netascii)', () => {
    assert.deepEqual(negotiate(opts({ tsize: '0', blksize: '8' }), undefined).accepted, [['blksize', '8']]);
  });

  it('ignores timeouts outside 1..255 seconds', () => {
    assert.deepEqual(negotiate(opts({ timeout: '256' }), 1).accepted, []);
  });
});
