// The local checks of `forseti doctor`: ports, capabilities, iPXE binaries, the interface, the clock. Each
// returns one result; none changes anything (a port is bound and released at once).
import { createSocket } from 'node:dgram';
import { accessSync, constants, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  check: string;
  status: CheckStatus;
  message: string;
}

export const result = (check: string, status: CheckStatus, message: string): CheckResult => ({ check, status, message });

export interface PortSpec {
  protocol: 'udp' | 'tcp';
  port: number;
  /** What uses it: "DHCP", "TFTP", ... */
  use: string;
}

/** Binds the port as the agent would and lets it go; a port in use names the process that holds it. */
export async function checkPort(address: string, spec: PortSpec): Promise<CheckResult> {
  const name = `port ${spec.protocol}/${spec.port}`;
  const error = await tryBind(address, spec);
  if (!error) return result(name, 'ok', `${spec.use}: free on ${address}`);
  if (error.code === 'EADDRINUSE') {
    const holder = socketHolder(spec.protocol, spec.port);
    return result(name, 'fail', `${spec.use}: held by ${holder ?? 'another process'}; stop it, or change the port`);
  }
  if (error.code === 'EACCES' || error.code === 'EPERM') return result(name, 'fail', `${spec.use}: not allowed to bind (needs CAP_NET_BIND_SERVICE or root)`);
  if (error.code === 'EADDRNOTAVAIL') return result(name, 'fail', `${spec.use}: ${address} is not an address of this machine (serve.bindAddress)`);
  return result(name, 'fail', `${spec.use}: ${error.code ?? error.message}`);
}

function tryBind(address: string, spec: PortSpec): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    if (spec.protocol === 'udp') {
      const socket = createSocket('udp4');
      socket.once('error', (err: NodeJS.ErrnoException) => {
        socket.close();
        resolve(err);
      });
      socket.bind(spec.port, address, () => socket.close(() => resolve(undefined)));
    } else {
      const server = createServer();
      server.once('error', (err: NodeJS.ErrnoException) => resolve(err));
      server.listen(spec.port, address, () => server.close(() => resolve(undefined)));
    }
  });
}

/** "dnsmasq (pid 812)": the process with a socket on that local port, found through /proc. */
export function socketHolder(protocol: 'udp' | 'tcp', port: number): string | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of [`/proc/net/${protocol}`, `/proc/net/${protocol}6`]) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is field 1 (ADDR:PORT); for TCP only listening sockets (state 0A) hold a port.
      if (fields[1]?.endsWith(`:${hexPort}`) && (protocol === 'udp' || fields[3] === '0A') && fields[9]) inodes.add(fields[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target = '';
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && inodes.has(inode)) {
        const comm = (() => {
          try {
            return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
          } catch {
            return 'a process';
          }
        })();
        return `${comm} (pid ${pid})`;
      }
    }
  }
  return 'a process this user cannot see';
}

const CAP_NET_BIND_SERVICE = 10;
const CAP_NET_RAW = 13;

/** Root, or the two capabilities the unit grants (CapEff of /proc/self/status). */
export function checkCapabilities(status = safeRead('/proc/self/status')): CheckResult {
  if (process.geteuid?.() === 0) return result('capabilities', 'ok', 'running as root (the systemd unit runs the agent as forseti with CAP_NET_BIND_SERVICE and CAP_NET_RAW only)');
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  const eff = hex ? BigInt(`0x${hex}`) : 0n;
  const missing = [[CAP_NET_BIND_SERVICE, 'CAP_NET_BIND_SERVICE'], [CAP_NET_RAW, 'CAP_NET_RAW']].filter(([bit]) => (eff & (1n << BigInt(bit as number))) === 0n).map(([, name]) => name as string);
  if (missing.length === 0) return result('capabilities', 'ok', 'CAP_NET_BIND_SERVICE and CAP_NET_RAW are effective');
  return result('capabilities', 'fail', `missing ${missing.join(' and ')}: DHCP (67) and TFTP (69) are privileged ports and SO_BINDTODEVICE needs CAP_NET_RAW; run as the systemd unit does (AmbientCapabilities) or as root`);
}

/** The iPXE binaries firmware without iPXE is given (DHCP, TFTP and UEFI HTTP boot). */
export function checkIpxeBinaries(dir: string, required: readonly string[], optional: readonly string[]): CheckResult {
  const missing: string[] = [];
  for (const name of required) {
    try {
      accessSync(join(dir, name), constants.R_OK);
      if (statSync(join(dir, name)).size === 0) missing.push(`${name} (empty)`);
    } catch {
      missing.push(name);
    }
  }
  if (missing.length > 0) return result('ipxe', 'fail', `${dir} lacks ${missing.join(', ')}: firmware that is not iPXE cannot chainload (Debian: apt install ipxe)`);
  const absent = optional.filter((n) => {
    try {
      accessSync(join(dir, n), constants.R_OK);
      return false;
    } catch {
      return true;
    }
  });
  return result('ipxe', absent.length ? 'warn' : 'ok', `${required.join(', ')} in ${dir}${absent.length ? `; no ${absent.join(', ')} (UEFI NICs without an iPXE driver)` : ''}`);
}

/** site.yaml's network.interface exists here and holds the agent's address. */
export function checkInterface(name: string, agentAddress: string): CheckResult {
  const nics = networkInterfaces();
  const addrs = nics[name];
  if (!addrs) return result('interface', 'fail', `${name} (site.yaml network.interface) is not an interface of this machine; it has ${Object.keys(nics).join(', ')}`);
  if (!addrs.some((a) => a.family === 'IPv4' && a.address === agentAddress)) {
    return result('interface', 'fail', `${name} does not hold ${agentAddress} (site.yaml agent.address); it has ${addrs.filter((a) => a.family === 'IPv4').map((a) => a.cidr).join(', ') || 'no IPv4 address'}`);
  }
  return result('interface', 'ok', `${name} holds ${agentAddress}`);
}

const MAX_SKEW_S = 300;

/** The clock against a server's Date header (TLS certificates, status timestamps and schedules need it right). */
export function checkClock(now: Date, serverDate: string | undefined, server: string): CheckResult {
  if (now.getUTCFullYear() < 2024) return result('clock', 'fail', `the clock says ${now.toISOString()}: set the time (NTP) before the first start`);
  if (!serverDate) return result('clock', 'warn', `${now.toISOString()}; no server told its time to compare with`);
  const theirs = Date.parse(serverDate);
  if (Number.isNaN(theirs)) return result('clock', 'warn', `${now.toISOString()}; ${server} sent an unreadable Date header`);
  const skew = Math.round((now.getTime() - theirs) / 1000);
  if (Math.abs(skew) > MAX_SKEW_S) return result('clock', 'fail', `${Math.abs(skew)} s ${skew > 0 ? 'ahead of' : 'behind'} ${server}: enable NTP (systemd-timesyncd, chrony)`);
  return result('clock', 'ok', `within ${Math.max(1, Math.abs(skew))} s of ${server}`);
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
