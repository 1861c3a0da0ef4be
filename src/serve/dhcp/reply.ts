// Building BOOTREPLY packets and choosing where they go (RFC 2131 section 4.1 and 4.3).
import { DhcpEncodeError } from './errors.ts';
import { directedBroadcast, hasAddress, inSubnet, isIpv4, isValidPrefix, prefixToMask, ZERO_IP } from './ipv4.ts';
import * as O from './options.ts';
import { Opt, MessageType } from './options.ts';
import { BootOp, BROADCAST_FLAG, emptyPacket, type DhcpPacket } from './packet.ts';
import type { DhcpAnswer, Endpoint } from './types.ts';

export interface ReplyContext {
  serverIp: string;
  subnet: { network: string; prefix: number };
  serverPort: number;
  clientPort: number;
}

export type ReplyKind = 'offer' | 'ack' | 'inform-ack' | 'nak';

const FILE_FIELD_MAX = 127;
const INFINITE_LEASE = 0xffffffff;

export function buildReply(request: DhcpPacket, kind: ReplyKind, answer: DhcpAnswer, ctx: ReplyContext): DhcpPacket {
  const reply = emptyPacket(BootOp.reply);
  Object.assign(reply, {
    htype: request.htype, hlen: request.hlen, xid: request.xid, flags: request.flags,
    giaddr: request.giaddr, chaddr: Buffer.from(request.chaddr),
  });
  const options = reply.options;
  const messageType = kind === 'offer' ? MessageType.offer : kind === 'nak' ? MessageType.nak : MessageType.ack;
  options.set(Opt.messageType, O.uint8(messageType));
  options.set(Opt.serverId, O.ip(ctx.serverIp));
  // RFC 6842: echo the client identifier so clients that match on it accept the reply.
  const clientId = request.options.get(Opt.clientId);

  if (kind !== 'nak') {
    const prefix = checkAnswer(answer, request, ctx);
    if (kind === 'inform-ack') {
      reply.ciaddr = request.ciaddr;
    } else {
      reply.yiaddr = answer.ip;
      setLease(options, answer.leaseSeconds);
    }
    reply.siaddr = answer.nextServer ?? ctx.serverIp;
    options.set(Opt.subnetMask, O.ip(prefixToMask(prefix)));
    options.set(Opt.broadcast, O.ip(directedBroadcast(answer.ip, prefix)));
    if (answer.router !== undefined) options.set(Opt.router, O.ip(answer.router));
    if (answer.dns !== undefined && answer.dns.length > 0) options.set(Opt.dns, O.ipList(answer.dns));
    if (answer.hostname !== undefined) options.set(Opt.hostname, O.text(answer.hostname));
    if (answer.domain !== undefined) options.set(Opt.domain, O.text(answer.domain));
    if (answer.nextServer !== undefined) options.set(Opt.tftpServer, O.text(answer.nextServer));
    if (answer.bootFile !== undefined) {
      options.set(Opt.bootFile, O.text(answer.bootFile));
      // Long URLs only fit option 67; PXE ROMs need `file`, but their paths are short.
      if (answer.bootFile.length <= FILE_FIELD_MAX) reply.file = answer.bootFile;
    }
    if (answer.ipxeNoProxyDhcp === true) options.set(Opt.ipxeEncap, O.ipxeNoPxeDhcp());
  }
  if (clientId !== undefined) options.set(Opt.clientId, clientId);
  // RFC 2131 4.3.2: a relayed NAK asks the relay to broadcast, the client may have no address.
  if (kind === 'nak' && hasAddress(request.giaddr)) reply.flags |= BROADCAST_FLAG;
  return reply;
}

function setLease(options: O.DhcpOptions, seconds: number): void {
  options.set(Opt.leaseTime, O.uint32(seconds));
  if (seconds === INFINITE_LEASE) return;
  options.set(Opt.renewalTime, O.uint32(Math.floor(seconds / 2)));
  options.set(Opt.rebindingTime, O.uint32(Math.floor((seconds * 7) / 8)));
}

/** Returns the client's prefix; throws DhcpEncodeError for an answer that would misconfigure it. */
function checkAnswer(answer: DhcpAnswer, request: DhcpPacket, ctx: ReplyContext): number {
  if (!isIpv4(answer.ip) || answer.ip === ZERO_IP) throw new DhcpEncodeError(`answer ip ${JSON.stringify(answer.ip)} is not a usable IPv4 address`);
  if (!Number.isInteger(answer.leaseSeconds) || answer.leaseSeconds <= 0) throw new DhcpEncodeError(`leaseSeconds must be a positive integer, got ${answer.leaseSeconds}`);
  if (answer.prefix !== undefined) {
    if (!isValidPrefix(answer.prefix)) throw new DhcpEncodeError(`answer prefix ${answer.prefix} is not 0..32`);
    return answer.prefix;
  }
  if (!inSubnet(answer.ip, ctx.subnet.network, ctx.subnet.prefix)) {
    const where = hasAddress(request.giaddr) ? `relayed via ${request.giaddr}; give answer.prefix` : 'on the served subnet';
    throw new DhcpEncodeError(`answer ip ${answer.ip} is outside ${ctx.subnet.network}/${ctx.subnet.prefix} (${where})`);
  }
  return ctx.subnet.prefix;
}

/**
 * Where a reply goes. A client without an address cannot receive unicast here: Node can neither
 * bind a socket to one interface nor insert the ARP entry a unicast to yiaddr would need, and
 * 255.255.255.255 needs a default route and may leave by the wrong NIC. The subnet's directed
 * broadcast is routed out of the interface holding that subnet and sent to ff:ff:ff:ff:ff:ff,
 * which raw-socket clients (PXE ROMs, iPXE, udhcpc, dhclient) accept.
 */
export function replyDestination(request: DhcpPacket, kind: ReplyKind, ctx: ReplyContext): Endpoint {
  if (hasAddress(request.giaddr)) return { address: request.giaddr, port: ctx.serverPort };
  if (kind !== 'nak' && hasAddress(request.ciaddr)) return { address: request.ciaddr, port: ctx.clientPort };
  return { address: directedBroadcast(ctx.subnet.network, ctx.subnet.prefix), port: ctx.clientPort };
}
