// Dotted quads and 32-bit numbers. Hand-written parsing: these run several times per packet, and a
// regular expression plus split/map/join cost more than the rest of a reply.
import { DhcpEncodeError } from './errors.ts';

export const ZERO_IP = '0.0.0.0';

/** The address as an unsigned 32-bit number, or -1 when `text` is not a dotted quad (1-3 digits, each <= 255). */
export function parseIpv4(text: string): number {
  const len = text.length;
  if (len < 7 || len > 15) return -1;
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (++digits > 3) return -1;
      part = part * 10 + (c - 48);
    } else if (c === 46 && digits > 0 && dots < 3) {
      if (part > 255) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1;
  return value * 256 + part;
}

export function isIpv4(text: string): boolean {
  return parseIpv4(text) !== -1;
}

/** Dotted quad to an unsigned 32-bit number. */
export function ipToInt(text: string): number {
  const n = parseIpv4(text);
  if (n === -1) throw new DhcpEncodeError(`not an IPv4 address: ${JSON.stringify(text)}`);
  return n;
}

export function intToIp(value: number): string {
  return `${(value >>> 24) & 0xff}.${(value >>> 16) & 0xff}.${(value >>> 8) & 0xff}.${value & 0xff}`;
}

export function ipToBuffer(text: string): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(ipToInt(text));
  return out;
}

export function ipFromBuffer(buf: Buffer, offset = 0): string {
  return `${buf[offset] ?? 0}.${buf[offset + 1] ?? 0}.${buf[offset + 2] ?? 0}.${buf[offset + 3] ?? 0}`;
}

export function prefixToMaskInt(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function prefixToMask(prefix: number): string {
  return intToIp(prefixToMaskInt(prefix));
}

export function isValidPrefix(prefix: number): boolean {
  return Number.isInteger(prefix) && prefix >= 0 && prefix <= 32;
}

export function directedBroadcast(network: string, prefix: number): string {
  return intToIp((ipToInt(network) | ~prefixToMaskInt(prefix)) >>> 0);
}

export function inSubnet(ip: string, network: string, prefix: number): boolean {
  const mask = prefixToMaskInt(prefix);
  return ((ipToInt(ip) & mask) >>> 0) === ((ipToInt(network) & mask) >>> 0);
}

export function hasAddress(ip: string): boolean {
  return ip !== ZERO_IP;
}
