// A DHCP load generator: DISCOVERs with distinct MACs, broadcast from port 68, keeping a fixed
// number outstanding; counts the OFFERs that come back for them. Run inside a namespace that has
// no other DHCP traffic. Prints one JSON line with the result.
//
//   node --import tsx bench/lib/dhcp-load.ts '{"count":5000,"concurrency":32,"macs":1000}'
import { createSocket } from 'node:dgram';
import { readdirSync, statSync } from 'node:fs';

export interface LoadConfig {
  /** DISCOVERs to send in all. */
  count: number;
  /** DISCOVERs outstanding at once. */
  concurrency: number;
  /** Distinct MACs, used in turn: 02:00:00:00:00:00 + i. */
  macs: number;
  /** These MACs instead, used in turn. */
  macList?: string[];
  /** A DISCOVER unanswered this long counts as lost. Default 1000. */
  timeoutMs?: number;
  /** Sent as PXE firmware (vendor class PXEClient, arch 0). */
  pxe?: boolean;
  /** Where to send. Default 255.255.255.255:67. */
  to?: string;
  port?: number;
}

export interface LoadResult {
  sent: number;
  offers: number;
  lost: number;
  seconds: number;
  offersPerSecond: number;
  /** One OFFER per MAC (the last seen): MAC, offered address and boot file. */
  offered: Record<string, { ip: string; file: string }>;
}

export function macOf(i: number): string {
  const hex = (0x020000000000 + i).toString(16).padStart(12, '0');
  return hex.match(/../g)?.join(':') ?? hex;
}

export function discover(xid: number, mac: string, pxe: boolean): Buffer {
  return clientMessage(1, xid, mac, pxe, []);
}

/** A REQUEST for the address `ip` offered by `serverId` (RFC 2131 4.3.2, SELECTING), broadcast like the DISCOVER. */
export function request(xid: number, mac: string, pxe: boolean, ip: string, serverId: string): Buffer {
  const addr = (a: string): number[] => a.split('.').map(Number);
  return clientMessage(3, xid, mac, pxe, [50, 4, ...addr(ip), 54, 4, ...addr(serverId)]);
}

function clientMessage(type: number, xid: number, mac: string, pxe: boolean, extra: number[]): Buffer {
  const buf = Buffer.alloc(240);
  buf[0] = 1; // BOOTREQUEST
  buf[1] = 1; // Ethernet
  buf[2] = 6;
  buf.writeUInt32BE(xid >>> 0, 4);
  buf.writeUInt16BE(0x8000, 10); // broadcast flag: we have no address to receive a unicast on
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(buf, 28);
  buf.writeUInt32BE(0x63825363, 236);
  const opts: number[] = [53, 1, type, ...extra, 55, 6, 1, 3, 6, 15, 66, 67];
  if (pxe) {
    const vc = Buffer.from('PXEClient:Arch:00000:UNDI:002001');
    opts.push(60, vc.length, ...vc, 93, 2, 0, 0, 94, 3, 1, 2, 1);
  }
  opts.push(255);
  const out = Buffer.concat([buf, Buffer.from(opts)]);
  return out.length >= 300 ? out : Buffer.concat([out, Buffer.alloc(300 - out.length)]);
}

/** xid, message type, offered address, next server, server identifier and boot file of a reply, or undefined if it is not one. */
export function parseReply(msg: Buffer): { xid: number; type: number; ip: string; siaddr: string; serverId: string; file: string } | undefined {
  if (msg.length < 241 || msg[0] !== 2 || msg.readUInt32BE(236) !== 0x63825363) return undefined;
  let type = 0;
  let serverId = '';
  let file = msg.toString('latin1', 108, 236).replace(/\0.*$/s, '');
  for (let i = 240; i < msg.length;) {
    const code = msg[i] ?? 255;
    if (code === 255) break;
    if (code === 0) { i++; continue; }
    const len = msg[i + 1] ?? 0;
    if (code === 53) type = msg[i + 2] ?? 0;
    if (code === 54 && len === 4) serverId = [2, 3, 4, 5].map((o) => msg[i + o]).join('.');
    if (code === 67) file = msg.toString('latin1', i + 2, i + 2 + len).replace(/\0.*$/s, ''); // dnsmasq sends the NUL too
    i += 2 + len;
  }
  return { xid: msg.readUInt32BE(4), type, ip: [16, 17, 18, 19].map((o) => msg[o]).join('.'), siaddr: [20, 21, 22, 23].map((o) => msg[o]).join('.'), serverId, file };
}

export function runLoad(config: LoadConfig): Promise<LoadResult> {
  const timeoutMs = config.timeoutMs ?? 1000;
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  const pending = new Map<number, { mac: string; at: number }>();
  const offered: LoadResult['offered'] = {};
  let sent = 0;
  let offers = 0;
  let lost = 0;
  let started = 0;
  return new Promise((resolve, reject) => {
    const finish = (): void => {
      clearInterval(sweep);
      const seconds = (performance.now() - started) / 1000;
      socket.close(() => resolve({ sent, offers, lost, seconds, offersPerSecond: offers / seconds, offered }));
    };
    const next = (): void => {
      if (sent >= config.count) {
        if (pending.size === 0) finish();
        return;
      }
      const xid = 0x10000000 + sent;
      const mac = config.macList?.[sent % config.macList.length] ?? macOf(sent % config.macs);
      sent++;
      pending.set(xid, { mac, at: performance.now() });
      socket.send(discover(xid, mac, config.pxe ?? false), config.port ?? 67, config.to ?? '255.255.255.255');
    };
    const sweep = setInterval(() => {
      const now = performance.now();
      for (const [xid, p] of pending) {
        if (now - p.at < timeoutMs) continue;
        pending.delete(xid);
        lost++;
        next();
      }
    }, 20);
    socket.on('message', (msg) => {
      const reply = parseReply(msg);
      if (!reply || reply.type !== 2) return;
      const p = pending.get(reply.xid);
      if (!p) return;
      pending.delete(reply.xid);
      offers++;
      offered[p.mac] = { ip: reply.ip, file: reply.file };
      next();
    });
    socket.once('error', reject);
    socket.bind(68, '0.0.0.0', () => {
      socket.setBroadcast(true);
      socket.setRecvBufferSize(4 * 1024 * 1024);
      started = performance.now();
      for (let i = 0; i < config.concurrency; i++) next();
    });
  });
}

/** True when this process runs in a named network namespace (one of /run/netns, as `ip netns add` makes them). */
function inNamedNetns(): boolean {
  try {
    const self = statSync('/proc/self/ns/net').ino;
    return readdirSync('/run/netns').some((name) => statSync(`/run/netns/${name}`).ino === self);
  } catch {
    return false;
  }
}

/**
 * The main of a tool that broadcasts DHCP: never onto a real network, only inside a namespace a test or
 * benchmark made. Runs `main` on the JSON argument and prints its result as one JSON line.
 */
export async function broadcastingMain<C>(tool: string, main: (config: C) => Promise<unknown>): Promise<void> {
  if (!inNamedNetns()) {
    process.stderr.write(`${tool}: refusing to broadcast DHCP outside a network namespace (run it with ip netns exec)\n`);
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(await main(JSON.parse(process.argv[2] ?? '{}') as C))}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) await broadcastingMain('dhcp-load', runLoad);
