// Binding a Node UDP socket to one network interface (SO_BINDTODEVICE), which Node has no API for.
//
// Why: a wildcard socket on port 67 receives every client's broadcast on every NIC of the box, and the
// request carries nothing that tells the NICs apart (measured in test/dhcp-multinic.test.ts: a socket
// bound to the subnet's broadcast address or to our own address receives none of the clients'
// 255.255.255.255 DISCOVERs; wildcard and 255.255.255.255 sockets receive both sides' as 0.0.0.0:68).
// Directed-broadcast replies already leave by the provisioning NIC, but the server would still decide
// (and hand out pool leases) for machines on other networks. IP_PKTINFO is not exposed either.
//
// How: SO_BINDTODEVICE is an option of the socket, not of the descriptor, so any process holding a
// duplicate of the descriptor can set it. We find our socket's descriptor through /proc (its inode in
// /proc/net/udp, matched against /proc/self/fd), pass it to perl (Essential in Debian, so present on
// every Debian box and in the node:*-bookworm images) as fd 3, and perl sets the option and reads it
// back. Unprivileged processes may set it on Linux >= 5.7 when the socket is not bound to a device yet.
// A bound socket also sends by that NIC only, so replies can go to 255.255.255.255 without a default
// route: EDK2's own PXE client (OVMF, test/dhcp-proxy.test.ts) ignores the subnet's directed broadcast.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { endianness } from 'node:os';
import { childEnv } from '../../child-env.ts';
import { DhcpBindError } from './errors.ts';

const SOL_SOCKET = 1;
const SO_BINDTODEVICE = 25;
const IFNAMSIZ = 16;

const PERL = `
open(my $s, "+<&=", 3) or die "cannot open fd 3: $!\\n";
setsockopt($s, ${SOL_SOCKET}, ${SO_BINDTODEVICE}, $ARGV[0]) or die "setsockopt SO_BINDTODEVICE: $!\\n";
my $v = getsockopt($s, ${SOL_SOCKET}, ${SO_BINDTODEVICE}) or die "getsockopt SO_BINDTODEVICE: $!\\n";
$v =~ s/\\0.*//s; print $v;
`;

/** Binds the UDP socket already bound to `port` (and `address`) in this process to `device`. */
export function bindSocketToDevice(port: number, address: string, device: string): void {
  if (process.platform !== 'linux') throw new DhcpBindError(`binding the DHCP socket to interface ${device} needs Linux (SO_BINDTODEVICE)`);
  if (device.length === 0 || device.length >= IFNAMSIZ || device.includes('/') || !existsSync(`/sys/class/net/${device}`)) {
    throw new DhcpBindError(`interface ${JSON.stringify(device)} does not exist on this machine (site.yaml network.interface)`);
  }
  const fd = socketFd(port, address);
  const result = spawnSync('perl', ['-e', PERL, device], { stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8', env: childEnv() });
  if (result.error) throw new DhcpBindError(`cannot bind the DHCP socket on port ${port} to ${device}: perl: ${result.error.message}`, { cause: result.error });
  if (result.status !== 0 || result.stdout !== device) {
    throw new DhcpBindError(`cannot bind the DHCP socket on port ${port} to ${device}: ${result.stderr.trim() || `read back ${JSON.stringify(result.stdout)}`}`);
  }
}

/** The descriptor of this process's UDP socket bound to address:port. */
function socketFd(port: number, address: string): number {
  const local = `${hexAddress(address)}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[9] !== undefined) inodes.add(f[9]);
  }
  const fds: number[] = [];
  for (const entry of readdirSync('/proc/self/fd')) {
    let target: string;
    try { target = readlinkSync(`/proc/self/fd/${entry}`); } catch { continue; } // closed meanwhile
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode !== undefined && inodes.has(inode)) fds.push(Number(entry));
  }
  const [fd] = fds;
  if (fd === undefined || fds.length > 1) {
    throw new DhcpBindError(`cannot bind to an interface: found ${fds.length} UDP sockets of this process on ${address}:${port}, expected 1`);
  }
  return fd;
}

/** /proc/net/udp prints the address as the in-memory 32-bit word, so byte order follows the CPU. */
function hexAddress(address: string): string {
  const buf = Buffer.from(address.split('.').map(Number));
  return (endianness() === 'LE' ? buf.readUInt32LE(0) : buf.readUInt32BE(0)).toString(16).toUpperCase().padStart(8, '0');
}
