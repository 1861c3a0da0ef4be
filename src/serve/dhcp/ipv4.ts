import { DhcpEncodeError } from './errors.ts';

const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export const ZERO_IP = '0.0.0.0';

export function isIpv4(text: string): boolean {
  const m = DOTTED_QUAD.exec(text);
  return m !== null && m.slice(1).every((part) => Number(part) <= 255);
}

/** Dotted quad to an unsigned 32-bit number. */
export function ipToInt(text: string): number {
  if (!isIpv4(text)) throw new DhcpEncodeError(`not an IPv4 address: ${JSON.stringify(text)}`);
  return text.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

export function intToIp(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join('.');
}

export function ipToBuffer(text: string): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(ipToInt(text));
  return out;
}

export function ipFromBuffer(buf: Buffer, offset = 0): string {
  return intToIp(buf.readUInt32BE(offset));
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
