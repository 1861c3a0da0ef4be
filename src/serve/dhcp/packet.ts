// BOOTP/DHCP wire format (RFC 951, RFC 2131 section 2, RFC 2132 options, RFC 3396 long options).
import { DhcpEncodeError, DhcpParseError } from './errors.ts';
import { ipFromBuffer, ipToBuffer, ZERO_IP } from './ipv4.ts';
import { Opt, type DhcpOptions } from './options.ts';

export const BootOp = { request: 1, reply: 2 } as const;
export const BROADCAST_FLAG = 0x8000;
export const HTYPE_ETHERNET = 1;

const FIXED_LEN = 236;
const COOKIE = 0x63825363;
const OPTIONS_START = FIXED_LEN + 4;
const SNAME = { offset: 44, length: 64 } as const;
const FILE = { offset: 108, length: 128 } as const;
/** RFC 1542: relays and old clients may drop BOOTP messages shorter than this. */
const MIN_PACKET_LEN = 300;

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The full 16-byte field; the first `hlen` bytes are the hardware address. */
  chaddr: Buffer;
  sname: string;
  file: string;
  /** Option code to value; repeated options were concatenated and overload (52) resolved. */
  options: DhcpOptions;
}

export function parseDhcpPacket(buf: Buffer): DhcpPacket {
  if (buf.length < OPTIONS_START) throw new DhcpParseError(`packet of ${buf.length} bytes is shorter than the ${OPTIONS_START}-byte BOOTP header with cookie`);
  const op = buf.readUInt8(0);
  if (op !== BootOp.request && op !== BootOp.reply) throw new DhcpParseError(`unknown op ${op}`);
  const hlen = buf.readUInt8(2);
  if (hlen > 16) throw new DhcpParseError(`hardware address length ${hlen} exceeds 16`);
  const cookie = buf.readUInt32BE(FIXED_LEN);
  if (cookie !== COOKIE) throw new DhcpParseError(`bad magic cookie 0x${cookie.toString(16).padStart(8, '0')}`);

  const parts = new Map<number, Buffer[]>();
  readOptionArea(buf, OPTIONS_START, buf.length, parts, 'options');
  const overload = parts.get(Opt.overload)?.[0]?.[0] ?? 0;
  // RFC 2131 section 4.1: the options field first, then 'file', then 'sname'.
  const fileHoldsOptions = overload === 1 || overload === 3;
  const snameHoldsOptions = overload === 2 || overload === 3;
  if (fileHoldsOptions) readOptionArea(buf, FILE.offset, FILE.offset + FILE.length, parts, 'file');
  if (snameHoldsOptions) readOptionArea(buf, SNAME.offset, SNAME.offset + SNAME.length, parts, 'sname');

  const options: DhcpOptions = new Map();
  for (const [code, chunks] of parts) options.set(code, Buffer.concat(chunks));

  return {
    op,
    htype: buf.readUInt8(1),
    hlen,
    hops: buf.readUInt8(3),
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ipFromBuffer(buf, 12),
    yiaddr: ipFromBuffer(buf, 16),
    siaddr: ipFromBuffer(buf, 20),
    giaddr: ipFromBuffer(buf, 24),
    chaddr: Buffer.from(buf.subarray(28, 44)),
    sname: snameHoldsOptions ? '' : cString(buf, SNAME.offset, SNAME.length),
    file: fileHoldsOptions ? '' : cString(buf, FILE.offset, FILE.length),
    options,
  };
}

/** Reads code/length/value triplets until End or the end of the area; a missing End is tolerated. */
function readOptionArea(buf: Buffer, start: number, end: number, into: Map<number, Buffer[]>, area: string): void {
  let i = start;
  while (i < end) {
    const code = buf.readUInt8(i);
    if (code === Opt.pad) { i += 1; continue; }
    if (code === Opt.end) return;
    if (i + 1 >= end) throw new DhcpParseError(`option ${code} in ${area} has no length byte`);
    const len = buf.readUInt8(i + 1);
    if (i + 2 + len > end) throw new DhcpParseError(`option ${code} in ${area} claims ${len} bytes past the end`);
    // Overload found inside file/sname is meaningless (RFC 2132 9.3); ignoring it avoids loops.
    if (code !== Opt.overload || area === 'options') {
      const chunks = into.get(code) ?? [];
      chunks.push(buf.subarray(i + 2, i + 2 + len));
      into.set(code, chunks);
    }
    i += 2 + len;
  }
}

function cString(buf: Buffer, offset: number, length: number): string {
  const field = buf.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? field.length : nul).toString('latin1');
}

export function encodeDhcpPacket(packet: DhcpPacket): Buffer {
  const header = Buffer.alloc(OPTIONS_START);
  header.writeUInt8(packet.op, 0);
  header.writeUInt8(packet.htype, 1);
  header.writeUInt8(packet.hlen, 2);
  header.writeUInt8(packet.hops, 3);
  header.writeUInt32BE(packet.xid >>> 0, 4);
  header.writeUInt16BE(packet.secs, 8);
  header.writeUInt16BE(packet.flags, 10);
  ipToBuffer(packet.ciaddr).copy(header, 12);
  ipToBuffer(packet.yiaddr).copy(header, 16);
  ipToBuffer(packet.siaddr).copy(header, 20);
  ipToBuffer(packet.giaddr).copy(header, 24);
  if (packet.chaddr.length > 16) throw new DhcpEncodeError(`chaddr of ${packet.chaddr.length} bytes exceeds 16`);
  packet.chaddr.copy(header, 28);
  writeCString(header, packet.sname, SNAME.offset, SNAME.length, 'sname');
  writeCString(header, packet.file, FILE.offset, FILE.length, 'file');
  header.writeUInt32BE(COOKIE, FIXED_LEN);

  const body = Buffer.concat([header, encodeOptions(packet.options), Buffer.from([Opt.end])]);
  return body.length >= MIN_PACKET_LEN ? body : Buffer.concat([body, Buffer.alloc(MIN_PACKET_LEN - body.length)]);
}

/** Message type first (some ROMs expect it), then insertion order; long values split per RFC 3396. */
function encodeOptions(options: DhcpOptions): Buffer {
  const codes = [...options.keys()].sort((a, b) => Number(b === Opt.messageType) - Number(a === Opt.messageType));
  const parts: Buffer[] = [];
  for (const code of codes) {
    if (!Number.isInteger(code) || code <= Opt.pad || code >= Opt.end) throw new DhcpEncodeError(`option code ${code} cannot carry a value`);
    const value = options.get(code) ?? Buffer.alloc(0);
    let offset = 0;
    do {
      const chunk = value.subarray(offset, offset + 255);
      parts.push(Buffer.from([code, chunk.length]), chunk);
      offset += 255;
    } while (offset < value.length);
  }
  return Buffer.concat(parts);
}

function writeCString(target: Buffer, value: string, offset: number, length: number, field: string): void {
  const bytes = Buffer.from(value, 'latin1');
  if (bytes.length >= length) throw new DhcpEncodeError(`${field} of ${bytes.length} bytes does not fit the ${length}-byte field with its NUL`);
  bytes.copy(target, offset);
}

/** The client hardware address as lower-case colon-separated hex. */
export function hardwareAddress(packet: DhcpPacket): string {
  return [...packet.chaddr.subarray(0, packet.hlen)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function hasBroadcastFlag(packet: DhcpPacket): boolean {
  return (packet.flags & BROADCAST_FLAG) !== 0;
}

/** A packet with every field zeroed, for building requests and replies. */
export function emptyPacket(op: number): DhcpPacket {
  return {
    op, htype: HTYPE_ETHERNET, hlen: 6, hops: 0, xid: 0, secs: 0, flags: 0,
    ciaddr: ZERO_IP, yiaddr: ZERO_IP, siaddr: ZERO_IP, giaddr: ZERO_IP,
    chaddr: Buffer.alloc(16), sname: '', file: '', options: new Map(),
  };
}

/** Parses `aa:bb:cc:dd:ee:ff` (or `-` separated) into a 16-byte chaddr field. */
export function chaddrFromMac(mac: string): Buffer {
  const hex = mac.split(/[:-]/);
  if (hex.length !== 6 || !hex.every((h) => /^[0-9a-fA-F]{2}$/.test(h))) throw new DhcpEncodeError(`not a MAC address: ${JSON.stringify(mac)}`);
  const out = Buffer.alloc(16);
  Buffer.from(hex.join(''), 'hex').copy(out);
  return out;
}
