// IPv4 arithmetic for the checks on the provisioning network; addresses as unsigned 32-bit numbers.

/** The address as a number, or undefined if it is not a dotted-quad IPv4 address. */
export function ipv4ToNumber(address: string): number | undefined {
  const parts = address.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    n = n * 256 + Number(part);
  }
  return n;
}

export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Ipv4Subnet {
  cidr: string;
  network: number;
  broadcast: number;
  prefix: number;
}

export function parseSubnet(cidr: string): Ipv4Subnet | undefined {
  const [address, prefixText] = cidr.split('/');
  const base = ipv4ToNumber(address ?? '');
  const prefix = Number(prefixText);
  if (base === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  const network = base - (base % size);
  return { cidr, network, broadcast: network + size - 1, prefix };
}

export function subnetContains(subnet: Ipv4Subnet, address: number): boolean {
  return address >= subnet.network && address <= subnet.broadcast;
}
