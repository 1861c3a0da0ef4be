// The Wake-on-LAN magic packet: 6 bytes of 0xff, then the target MAC 16 times (102 bytes).

/** The MAC as 6 bytes; accepts "9c:8e:99:4a:10:01", "9C-8E-99-4A-10-01" or "9c8e994a1001". */
export function parseMac(mac: string): Buffer {
  const hex = mac.replace(/[:.-]/g, '');
  if (!/^[0-9a-fA-F]{12}$/.test(hex)) throw new RangeError(`"${mac}" is not a MAC address`);
  return Buffer.from(hex, 'hex');
}

export function magicPacket(mac: string): Buffer {
  const target = parseMac(mac);
  const packet = Buffer.alloc(6 + 16 * 6, 0xff);
  for (let i = 0; i < 16; i++) target.copy(packet, 6 + i * 6);
  return packet;
}
