// Wire format of the six TFTP packet kinds: RFC 1350 (RRQ, WRQ, DATA, ACK, ERROR) and
// RFC 2347 (request options, OACK). Parsing never throws anything but TftpParseError.

import { TftpParseError } from './errors.ts';

export const Opcode = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** Option names are case-insensitive (RFC 2347); they are stored lower-cased, in request order. */
export type TftpOptions = ReadonlyMap<string, string>;

export interface RequestPacket {
  opcode: typeof Opcode.RRQ | typeof Opcode.WRQ;
  filename: string;
  /** Lower-cased: "netascii", "octet" or "mail" (anything else is a parse error). */
  mode: string;
  options: TftpOptions;
}
export interface DataPacket { opcode: typeof Opcode.DATA; block: number; data: Buffer }
export interface AckPacket { opcode: typeof Opcode.ACK; block: number }
export interface ErrorPacket { opcode: typeof Opcode.ERROR; code: number; message: string }
export interface OackPacket { opcode: typeof Opcode.OACK; options: TftpOptions }

export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

const MODES: ReadonlySet<string> = new Set(['netascii', 'octet', 'mail']);

export function parsePacket(buf: Buffer): TftpPacket {
  if (buf.length < 2) throw new TftpParseError(`packet of ${buf.length} bytes is shorter than an opcode`);
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case Opcode.RRQ:
    case Opcode.WRQ: {
      const fields = splitStrings(buf, 2);
      const [filename, rawMode, ...optionFields] = fields;
      if (filename === undefined || rawMode === undefined) throw new TftpParseError('request lacks filename or mode');
      const mode = rawMode.toLowerCase();
      if (!MODES.has(mode)) throw new TftpParseError(`unknown transfer mode ${JSON.stringify(rawMode)}`);
      return { opcode, filename, mode, options: pairOptions(optionFields) };
    }
    case Opcode.DATA:
      if (buf.length < 4) throw new TftpParseError('DATA packet shorter than its header');
      return { opcode, block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case Opcode.ACK:
      // Some clients pad ACKs; only the block number matters.
      if (buf.length < 4) throw new TftpParseError('ACK packet shorter than 4 bytes');
      return { opcode, block: buf.readUInt16BE(2) };
    case Opcode.ERROR: {
      if (buf.length < 4) throw new TftpParseError('ERROR packet shorter than its header');
      // A missing terminator is tolerated here: the packet is only ever read to end a transfer.
      const end = buf.indexOf(0, 4);
      const message = buf.toString('utf8', 4, end === -1 ? buf.length : end);
      return { opcode, code: buf.readUInt16BE(2), message };
    }
    case Opcode.OACK:
      return { opcode, options: pairOptions(splitStrings(buf, 2)) };
    default:
      throw new TftpParseError(`unknown opcode ${opcode}`);
  }
}

/** NUL-terminated strings from `offset` to the end; every one must be terminated. */
function splitStrings(buf: Buffer, offset: number): string[] {
  const out: string[] = [];
  let start = offset;
  while (start < buf.length) {
    const end = buf.indexOf(0, start);
    if (end === -1) throw new TftpParseError('string field is not NUL-terminated');
    out.push(buf.toString('utf8', start, end));
    start = end + 1;
  }
  return out;
}

function pairOptions(fields: string[]): Map<string, string> {
  if (fields.length % 2 !== 0) throw new TftpParseError(`option ${JSON.stringify(fields[fields.length - 1])} has no value`);
  const options = new Map<string, string>();
  for (let i = 0; i < fields.length; i += 2) {
    const name = (fields[i] ?? '').toLowerCase();
    if (name === '') throw new TftpParseError('empty option name');
    // The first occurrence wins; later duplicates are ignored rather than failing the request.
    if (!options.has(name)) options.set(name, fields[i + 1] ?? '');
  }
  return options;
}

function header(opcode: number, value: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt16BE(opcode, 0);
  buf.writeUInt16BE(value & 0xffff, 2);
  return buf;
}

function strings(opcode: number, fields: readonly string[]): Buffer {
  for (const f of fields) if (f.includes('\0')) throw new RangeError('TFTP string fields cannot contain NUL');
  const op = Buffer.allocUnsafe(2);
  op.writeUInt16BE(opcode, 0);
  return Buffer.concat([op, ...fields.map((f) => Buffer.from(`${f}\0`, 'utf8'))]);
}

function optionFields(options: Iterable<readonly [string, string]>): string[] {
  return [...options].flatMap(([k, v]) => [k, v]);
}

export function encodeRequest(opcode: RequestPacket['opcode'], filename: string, mode: string, options: Iterable<readonly [string, string]> = []): Buffer {
  return strings(opcode, [filename, mode, ...optionFields(options)]);
}

/** DATA as a header and payload pair, so the payload is sent without being copied. */
export function encodeDataParts(block: number, data: Buffer): [Buffer, Buffer] {
  return [header(Opcode.DATA, block), data];
}

export function encodeData(block: number, data: Buffer): Buffer {
  return Buffer.concat(encodeDataParts(block, data));
}

export function encodeAck(block: number): Buffer {
  return header(Opcode.ACK, block);
}

export function encodeError(code: number, message: string): Buffer {
  const text = Buffer.from(message.replaceAll('\0', ' '), 'utf8');
  return Buffer.concat([header(Opcode.ERROR, code), text, Buffer.from([0])]);
}

export function encodeOack(options: Iterable<readonly [string, string]>): Buffer {
  return strings(Opcode.OACK, optionFields(options));
}
