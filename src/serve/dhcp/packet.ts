// BOOTP/DHCP wire format (RFC 951, RFC 2131 section 2, RFC 2132 options, RFC 3396 long options).
import { DhcpEncodeError, DhcpParseError } from './errors.ts';
import { ipFromBuffer, ipToInt, ZERO_IP } from './ipv4.ts';
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
  const op = buf[0] ?? 0;
  if (op !== BootOp.request && op !== BootOp.reply) throw new DhcpParseError(`unknown op ${op}`);
  const hlen = buf[2] ?? 0;
  if (hlen > 16) throw new DhcpParseError(`hardware address length ${hlen} exceeds 16`);
  const cookie = buf.readUInt32BE(FIXED_LEN);
  if (cookie !== COOKIE) throw new DhcpParseError(`bad magic cookie 0x${cookie.toString(16).padStart(8, '0')}`);

  // Values are views into `buf` (a received datagram is never reused); only repeated options are copied.
  const options: DhcpOptions = new Map();
  readOptionArea(buf, OPTIONS_START, buf.length, options, 'options');
  const overload = options.get(Opt.overload)?.[0] ?? 0;
  // RFC 2131 section 4.1: the options field first, then 'file', then 'sname'.
  const fileHoldsOptions = overload === 1 || overload === 3;
  const snameHoldsOptions = overload === 2 || overload === 3;
  if (fileHoldsOptions) readOptionArea(buf, FILE.offset, FILE.offset + FILE.length, options, 'file');
  if (snameHoldsOptions) readOptionArea(buf, SNAME.offset, SNAME.offset + SNAME.length, options, 'sname');

  return {
    op,
    htype: buf[1] ?? 0,
    hlen,
    hops: buf[3] ?? 0,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ipFromBuffer(buf, 12),
    yiaddr: ipFromBuffer(buf, 16),
    siaddr: ipFromBuffer(buf, 20),
    giaddr: ipFromBuffer(buf, 24),
    chaddr: buf.subarray(28, 44),
    sname: snameHoldsOptions ? '' : cString(buf, SNAME.offset, SNAME.length),
    file: fileHoldsOptions ? '' : cString(buf, FILE.offset, FILE.length),
    options,
  };
}

/**
 * Reads code/length/value triplets until End or the end of the area; a missing End is tolerated.
 * A repeated option is concatenated with what came before (RFC 3396).
 */
function readOptionArea(buf: Buffer, start: number, end: number, into: DhcpOptions, area: string): void {
  let i = start;
  while (i < end) {
    const code = buf[i] ?? Opt.end;
    if (code === Opt.pad) { i += 1; continue; }
    if (code === Opt.end) return;
    if (i + 1 >= end) throw new DhcpParseError(`option ${code} in ${area} has no length byte`);
    const len = buf[i + 1] ?? 0;
    if (i + 2 + len > end) throw new DhcpParseError(`option ${code} in ${area} claims ${len} bytes past the end`);
    // Overload found inside file/sname is meaningless (RFC 2132 9.3); ignoring it avoids loops.
    if (code !== Opt.overload || area === 'options') {
      const value = buf.subarray(i + 2, i + 2 + len);
      const before = into.get(code);
      into.set(code, before === undefined ? value : Buffer.concat([before, value]));
    }
    i += 2 + len;
  }
}

function cString(buf: Buffer, offset: number, length: number): string {
  if (buf[offset] === 0) return '';
  const nul = buf.indexOf(0, offset);
  return buf.toString('latin1', offset, nul === -1 || nul > offset + length ? offset + length : nul);
}

/** One allocation per packet: the size is computed first, then every field is written in place. */
export function encodeDhcpPacket(packet: DhcpPacket): Buffer {
  if (packet.chaddr.length > 16) throw new DhcpEncodeError(`chaddr of ${packet.chaddr.length} bytes exceeds 16`);
  let optionsLength = 0;
  for (const [code, value] of packet.options) {
    if (!Number.isInteger(code) || code <= Opt.pad || code >= Opt.end) throw new DhcpEncodeError(`option code ${code} cannot carry a value`);
    optionsLength += value.length === 0 ? 2 : value.length + 2 * Math.ceil(value.length / 255);
  }
  const length = Math.max(OPTIONS_START + optionsLength + 1, MIN_PACKET_LEN);
  const out = Buffer.alloc(length);
  out[0] = packet.op;
  out[1] = packet.htype;
  out[2] = packet.hlen;
  out[3] = packet.hops;
  out.writeUInt32BE(packet.xid >>> 0, 4);
  out.writeUInt16BE(packet.secs, 8);
  out.writeUInt16BE(packet.flags, 10);
  out.writeUInt32BE(ipToInt(packet.ciaddr), 12);
  out.writeUInt32BE(ipToInt(packet.yiaddr), 16);
  out.writeUInt32BE(ipToInt(packet.siaddr), 20);
  out.writeUInt32BE(ipToInt(packet.giaddr), 24);
  packet.chaddr.copy(out, 28);
  writeCString(out, packet.sname, SNAME.offset, SNAME.length, 'sname');
  writeCString(out, packet.file, FILE.offset, FILE.length, 'file');
  out.writeUInt32BE(COOKIE, FIXED_LEN);
  // Message type first (some ROMs expect it), then insertion order; long values split per RFC 3396.
  let at = OPTIONS_START;
  const messageType = packet.options.get(Opt.messageType);
  if (messageType !== undefined) at = writeOption(out, at, Opt.messageType, messageType);
  for (const [code, value] of packet.options) if (code !== Opt.messageType) at = writeOption(out, at, code, value);
  out[at] = Opt.end;
  return out;
}

function writeOption(out: Buffer, at: number, code: number, value: Buffer): number {
  let offset = 0;
  do {
    const n = Math.min(255, value.length - offset);
    out[at] = code;
    out[at + 1] = n;
    value.copy(out, at + 2, offset, offset + n);
    at += 2 + n;
    offset += 255;
  } while (offset < value.length);
  return at;
}

function writeCString(target: Buffer, value: string, offset: number, length: number, field: string): void {
  if (value.length === 0) return;
  if (value.length >= length) throw new DhcpEncodeError(`${field} of ${value.length} bytes does not fit the ${length}-byte field with its NUL`);
  target.write(value, offset, 'latin1');
}

/** The client hardware address as lower-case colon-separated hex. */
export function hardwareAddress(packet: DhcpPacket): string {
  const n = Math.min(packet.hlen, packet.chaddr.length);
  let out = '';
  for (let i = 0; i < n; i++) out += i === 0 ? HEX[packet.chaddr[i] ?? 0] : `:${HEX[packet.chaddr[i] ?? 0]}`;
  return out;
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

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
