// Option codes (RFC 2132, 3004, 4578, 6842, iPXE) and typed readers/builders over the raw
// `Map<number, Buffer>` a packet carries. Readers never throw on odd values: a client sending a
// malformed optional field is classified with that field missing rather than dropped.
import { DhcpEncodeError } from './errors.ts';
import { ipFromBuffer, ipToBuffer } from './ipv4.ts';

export type DhcpOptions = Map<number, Buffer>;

export const Opt = {
  pad: 0,
  subnetMask: 1,
  router: 3,
  dns: 6,
  hostname: 12,
  domain: 15,
  broadcast: 28,
  vendorSpecific: 43,
  requestedIp: 50,
  leaseTime: 51,
  overload: 52,
  messageType: 53,
  serverId: 54,
  paramRequestList: 55,
  message: 56,
  maxMessageSize: 57,
  renewalTime: 58,
  rebindingTime: 59,
  vendorClass: 60,
  clientId: 61,
  tftpServer: 66,
  bootFile: 67,
  userClass: 77,
  clientArch: 93,
  clientNdi: 94,
  uuid: 97,
  ipxeEncap: 175,
  end: 255,
} as const;

export const MessageType = {
  discover: 1,
  offer: 2,
  request: 3,
  decline: 4,
  ack: 5,
  nak: 6,
  release: 7,
  inform: 8,
} as const;
export type MessageTypeName = keyof typeof MessageType;
export type MessageTypeCode = (typeof MessageType)[MessageTypeName];

/** iPXE setting 176 ("no-pxedhcp") inside option 175: skip waiting for a ProxyDHCP offer. */
export const IPXE_NO_PXEDHCP = 176;

const MESSAGE_TYPE_NAMES: ReadonlyArray<MessageTypeName | undefined> = (() => {
  const names: Array<MessageTypeName | undefined> = [];
  for (const [name, value] of Object.entries(MessageType)) names[value] = name as MessageTypeName;
  return names;
})();

export function messageTypeName(code: number): MessageTypeName | undefined {
  return MESSAGE_TYPE_NAMES[code];
}

// ---- readers --------------------------------------------------------------------------------

export function readUint8(opts: DhcpOptions, code: number): number | undefined {
  const v = opts.get(code);
  return v !== undefined && v.length === 1 ? v.readUInt8(0) : undefined;
}

export function readUint32(opts: DhcpOptions, code: number): number | undefined {
  const v = opts.get(code);
  return v !== undefined && v.length === 4 ? v.readUInt32BE(0) : undefined;
}

export function readIp(opts: DhcpOptions, code: number): string | undefined {
  const v = opts.get(code);
  return v !== undefined && v.length === 4 ? ipFromBuffer(v) : undefined;
}

export function readIpList(opts: DhcpOptions, code: number): string[] | undefined {
  const v = opts.get(code);
  if (v === undefined || v.length === 0 || v.length % 4 !== 0) return undefined;
  const out: string[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(ipFromBuffer(v, i));
  return out;
}

/** Text options are not NUL-terminated by the RFC but many clients add one anyway. */
export function readString(opts: DhcpOptions, code: number): string | undefined {
  const v = opts.get(code);
  if (v === undefined) return undefined;
  const nul = v.indexOf(0);
  return v.subarray(0, nul === -1 ? v.length : nul).toString('latin1');
}

export function readMessageType(opts: DhcpOptions): MessageTypeName | undefined {
  const code = readUint8(opts, Opt.messageType);
  return code === undefined ? undefined : messageTypeName(code);
}

export function readParamRequestList(opts: DhcpOptions): number[] {
  return [...(opts.get(Opt.paramRequestList) ?? [])];
}

/** Option 93 (RFC 4578): a list of 16-bit architecture types. */
export function readClientArchs(opts: DhcpOptions): number[] {
  const v = opts.get(Opt.clientArch);
  if (v === undefined || v.length === 0 || v.length % 2 !== 0) return [];
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 2) out.push(v.readUInt16BE(i));
  return out;
}

/**
 * Option 77. RFC 3004 says a sequence of length-prefixed class names, but iPXE (and some others)
 * send one raw string such as "iPXE". The value is read as RFC 3004 only when the length
 * prefixes tile it exactly; otherwise the whole value is one class.
 */
export function readUserClasses(opts: DhcpOptions): string[] {
  const v = opts.get(Opt.userClass);
  if (v === undefined || v.length === 0) return [];
  const classes: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i] ?? 0;
    if (len === 0 || i + 1 + len > v.length) return [v.toString('latin1')];
    classes.push(v.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  return classes;
}

export interface ClientId {
  type: number;
  data: Buffer;
}

/** Option 61: a type byte (1 = Ethernet MAC) followed by the identifier. */
export function readClientId(opts: DhcpOptions): ClientId | undefined {
  const v = opts.get(Opt.clientId);
  if (v === undefined || v.length < 2) return undefined;
  return { type: v.readUInt8(0), data: Buffer.from(v.subarray(1)) };
}

export interface NetworkDeviceInterface {
  type: number;
  major: number;
  minor: number;
}

/** Option 94 (RFC 4578): type 1 = UNDI, then the UNDI major/minor version. */
export function readClientNdi(opts: DhcpOptions): NetworkDeviceInterface | undefined {
  const v = opts.get(Opt.clientNdi);
  if (v === undefined || v.length !== 3) return undefined;
  return { type: v.readUInt8(0), major: v.readUInt8(1), minor: v.readUInt8(2) };
}

/** Option 97 (RFC 4578): type 0 followed by the 16-byte machine UUID, rendered as text. */
export function readUuid(opts: DhcpOptions): string | undefined {
  const v = opts.get(Opt.uuid);
  if (v === undefined || v.length !== 17 || v[0] !== 0) return undefined;
  const hex = v.subarray(1).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Encapsulated options (43 PXE, 175 iPXE) use the same code/length/value layout without a cookie. */
export function readEncapsulated(opts: DhcpOptions, code: number): DhcpOptions | undefined {
  const v = opts.get(code);
  if (v === undefined) return undefined;
  const out: DhcpOptions = new Map();
  let i = 0;
  while (i < v.length) {
    const sub = v[i] ?? 0;
    if (sub === Opt.pad) { i += 1; continue; }
    if (sub === Opt.end) break;
    const len = v[i + 1];
    if (len === undefined || i + 2 + len > v.length) return undefined;
    out.set(sub, Buffer.from(v.subarray(i + 2, i + 2 + len)));
    i += 2 + len;
  }
  return out;
}

// ---- builders -------------------------------------------------------------------------------

export function uint8(value: number): Buffer {
  return Buffer.from([value & 0xff]);
}

export function uint16(value: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(value);
  return out;
}

export function uint32(value: number): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new DhcpEncodeError(`not a 32-bit unsigned value: ${value}`);
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

export function ip(address: string): Buffer {
  return ipToBuffer(address);
}

/** An address given as its unsigned 32-bit number. */
export function ipNumber(value: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(value >>> 0);
  return out;
}

export function ipList(addresses: readonly string[]): Buffer {
  return Buffer.concat(addresses.map(ipToBuffer));
}

export function text(value: string): Buffer {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) throw new DhcpEncodeError(`option text must be printable ASCII: ${JSON.stringify(value)}`);
  }
  return Buffer.from(value, 'latin1');
}

/** RFC 3004 user class encoding (each class prefixed with its length). */
export function userClasses(classes: readonly string[]): Buffer {
  return Buffer.concat(classes.map((c) => Buffer.concat([uint8(c.length), text(c)])));
}

export function encapsulated(sub: DhcpOptions): Buffer {
  const parts: Buffer[] = [];
  for (const [code, value] of sub) {
    if (value.length > 255) throw new DhcpEncodeError(`encapsulated option ${code} longer than 255 bytes`);
    parts.push(Buffer.from([code, value.length]), value);
  }
  return Buffer.concat(parts);
}

/** Option 175 value `b0 01 01`: iPXE setting 176 = 1, "do not wait for ProxyDHCP". */
export function ipxeNoPxeDhcp(): Buffer {
  return encapsulated(new Map([[IPXE_NO_PXEDHCP, uint8(1)]]));
}
