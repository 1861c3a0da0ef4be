// Small IPv4 helpers shared by rendering and DHCP policy.

export function parseCidr(cidr: string): { network: string; prefix: number } {
  const [network = '', prefix = ''] = cidr.split('/');
  return { network, prefix: Number(prefix) };
}

export function prefixToNetmask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 0xff).join('.');
}
