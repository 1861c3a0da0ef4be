// `forseti doctor`'s look at the provisioning network: one DHCPDISCOVER from a made-up, locally administered MAC,
// broadcast from port 68 on the lab's interface only (SO_BINDTODEVICE), as PXE firmware would send it; every
// OFFER that comes back within the wait says who else answers DHCP there. An OFFER binds nothing: no lease is
// taken and no REQUEST follows.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { bindSocketToDevice } from '../../serve/dhcp/bind-device.ts';
import { BootOp, BROADCAST_FLAG, emptyPacket, encodeDhcpPacket, MessageType, Opt, parseDhcpPacket, type DhcpPacket } from '../../serve/dhcp/index.ts';
import { result, type CheckResult } from './doctor-checks.ts';

export interface DhcpOffer {
  server: string;
  /** The address offered; 0.0.0.0 for a proxyDHCP offer (boot information only). */
  yiaddr: string;
  nextServer: string;
  bootFile: string;
}

export interface ProbeOptions {
  interface: string;
  waitMs: number;
}

/** Offers to one DISCOVER; throws when the probe cannot be sent (no privilege for port 68, no interface). */
export async function probeDhcp(options: ProbeOptions): Promise<DhcpOffer[]> {
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  const offers: DhcpOffer[] = [];
  const mac = Buffer.concat([Buffer.from([0x02]), randomBytes(5)]);
  const xid = randomBytes(4).readUInt32BE();
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(68, '0.0.0.0', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    bindSocketToDevice(68, '0.0.0.0', options.interface);
    socket.setBroadcast(true);
    socket.on('message', (msg) => {
      let packet: DhcpPacket;
      try {
        packet = parseDhcpPacket(msg);
      } catch {
        return;
      }
      if (packet.op !== BootOp.reply || packet.xid !== xid || packet.options.get(Opt.messageType)?.[0] !== MessageType.offer) return;
      const server = packet.options.get(Opt.serverId);
      const tftp = packet.options.get(Opt.tftpServer)?.toString('latin1');
      offers.push({
        server: server?.length === 4 ? [...server].join('.') : packet.siaddr,
        yiaddr: packet.yiaddr,
        nextServer: tftp ?? packet.siaddr,
        bootFile: packet.options.get(Opt.bootFile)?.toString('latin1').replace(/\0.*$/, '') ?? packet.file,
      });
    });
    const discover = emptyPacket(BootOp.request);
    discover.xid = xid;
    discover.flags = BROADCAST_FLAG;
    mac.copy(discover.chaddr);
    discover.options.set(Opt.messageType, Buffer.from([MessageType.discover]));
    discover.options.set(Opt.paramRequestList, Buffer.from([Opt.subnetMask, Opt.router, Opt.dns, Opt.tftpServer, Opt.bootFile]));
    // As BIOS PXE firmware: servers that answer PXE clients differently show it.
    discover.options.set(Opt.vendorClass, Buffer.from('PXEClient:Arch:00000:UNDI:002001'));
    discover.options.set(Opt.clientArch, Buffer.from([0, 0]));
    await new Promise<void>((resolve, reject) => socket.send(encodeDhcpPacket(discover), 67, '255.255.255.255', (err) => (err ? reject(err) : resolve())));
    await new Promise((r) => setTimeout(r, options.waitMs));
  } finally {
    socket.close();
  }
  return offers;
}

/** What the offers mean for the site's DHCP mode; `agent` is the agent's address (its own answers do not count). */
export function judgeDhcp(mode: 'full' | 'proxy' | 'off', offers: DhcpOffer[], agent: string, iface: string, waitMs: number): CheckResult {
  const others = offers.filter((o) => o.server !== agent);
  const addressing = others.filter((o) => o.yiaddr !== '0.0.0.0');
  const proxies = others.filter((o) => o.yiaddr === '0.0.0.0');
  const describe = (list: DhcpOffer[]): string => [...new Set(list.map((o) => (o.yiaddr === '0.0.0.0' ? `${o.server} (proxyDHCP)` : `${o.server} (offered ${o.yiaddr})`)))].join(', ');
  const name = 'dhcp';
  if (mode === 'full') {
    if (others.length > 0) return result(name, 'fail', `dhcp.mode full, but ${describe(others)} also answer on ${iface}: turn that server off on this network, or set dhcp.mode: proxy`);
    return result(name, 'ok', `no other DHCP server answered on ${iface} within ${waitMs / 1000} s`);
  }
  if (proxies.length > 0) return result(name, 'fail', `another proxyDHCP server answers PXE clients on ${iface}: ${describe(proxies)}; two would race`);
  if (addressing.length === 0) return result(name, 'fail', `dhcp.mode ${mode} needs another DHCP server on ${iface} to hand out addresses; none answered within ${waitMs / 1000} s`);
  if (mode === 'proxy') return result(name, 'ok', `${describe(addressing)} hands out addresses; forseti adds the boot answers`);
  const toAgent = addressing.some((o) => o.nextServer === agent || o.bootFile.includes(agent));
  if (!toAgent) return result(name, 'warn', `${describe(addressing)} hands out addresses but does not send PXE clients to ${agent} (see forseti render --dnsmasq)`);
  return result(name, 'ok', `${describe(addressing)} sends PXE clients to the agent`);
}
