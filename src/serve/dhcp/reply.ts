// Building BOOTREPLY packets and choosing where they go (RFC 2131 section 4.1 and 4.3).
import { DhcpEncodeError } from './errors.ts';
import { directedBroadcast, hasAddress, inSubnet, ipToInt, isValidPrefix, parseIpv4, prefixToMaskInt, ZERO_IP } from './ipv4.ts';
import * as O from './options.ts';
import { Opt, MessageType } from './options.ts';
import { BootOp, BROADCAST_FLAG, type DhcpPacket } from './packet.ts';
import type { BootAnswer, DhcpAnswer, Endpoint, IgnoreReason } from './types.ts';

export interface ReplyContext {
  serverIp: string;
  subnet: { network: string; prefix: number };
  /**
   * Where replies to address-less clients go: 255.255.255.255 when the socket is bound to the
   * interface (RFC 2131 4.1; EDK2's own PXE client drops anything else while it has no address),
   * else the subnet's directed broadcast, which a wildcard socket can route without a default route.
   */
  broadcast?: string;
  serverPort: number;
  clientPort: number;
  /** The giaddr of every relay whose requests are answered; none when absent. */
  relays?: ReadonlySet<string>;
}

export type ReplyKind = 'offer' | 'ack' | 'inform-ack' | 'nak';

export type ReflectionRefusal = Extract<IgnoreReason, 'undeclared-relay' | 'ciaddr-off-subnet'>;

const FILE_FIELD_MAX = 127;
const INFINITE_LEASE = 0xffffffff;

export function buildReply(request: DhcpPacket, kind: ReplyKind, answer: DhcpAnswer, ctx: ReplyContext): DhcpPacket {
  const reply = replyTo(request, ZERO_IP);
  const options = reply.options;
  const messageType = kind === 'offer' ? MessageType.offer : kind === 'nak' ? MessageType.nak : MessageType.ack;
  options.set(Opt.messageType, O.uint8(messageType));
  options.set(Opt.serverId, O.ip(ctx.serverIp));
  // RFC 6842: echo the client identifier so clients that match on it accept the reply.
  const clientId = request.options.get(Opt.clientId);

  if (kind !== 'nak') {
    const { ip, prefix } = checkAnswer(answer, request, ctx);
    if (kind === 'inform-ack') {
      reply.ciaddr = request.ciaddr;
    } else {
      reply.yiaddr = answer.ip;
      setLease(options, answer.leaseSeconds);
    }
    reply.siaddr = answer.nextServer ?? ctx.serverIp;
    const mask = prefixToMaskInt(prefix);
    options.set(Opt.subnetMask, O.ipNumber(mask));
    options.set(Opt.broadcast, O.ipNumber((ip | ~mask) >>> 0));
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
    if (answer.vendorClass !== undefined) options.set(Opt.vendorClass, O.text(answer.vendorClass));
    if (answer.ipxeNoProxyDhcp === true) options.set(Opt.ipxeEncap, IPXE_NO_PXEDHCP);
  }
  if (clientId !== undefined) options.set(Opt.clientId, clientId);
  // RFC 2131 4.3.2: a relayed NAK asks the relay to broadcast, the client may have no address.
  if (kind === 'nak' && hasAddress(request.giaddr)) reply.flags |= BROADCAST_FLAG;
  return reply;
}

/** A BOOTREPLY with the request's transaction fields and nothing else yet. */
function replyTo(request: DhcpPacket, ciaddr: string): DhcpPacket {
  return {
    op: BootOp.reply, htype: request.htype, hlen: request.hlen, hops: 0, xid: request.xid, secs: 0, flags: request.flags,
    ciaddr, yiaddr: ZERO_IP, siaddr: ZERO_IP, giaddr: request.giaddr, chaddr: request.chaddr,
    sname: '', file: '', options: new Map(),
  };
}

/** Option 175 value `b0 01 01`: the same bytes in every reply, encoded once. */
const IPXE_NO_PXEDHCP = O.ipxeNoPxeDhcp();

/** PXE 2.1 table 2-1, PXE_DISCOVERY_CONTROL bit 3: boot the file named in this offer; no menu, no boot-server discovery. */
const PXE_DISCOVERY_CONTROL = 6;
const USE_BOOT_FILE_IN_OFFER = 0x08;
const PXE_VENDOR_OPTIONS = Buffer.concat([O.encapsulated(new Map([[PXE_DISCOVERY_CONTROL, O.uint8(USE_BOOT_FILE_IN_OFFER)]])), Buffer.from([Opt.end])]);

/**
 * A proxyDHCP OFFER or ACK: yiaddr stays 0 (the real DHCP server gives the address), the boot file and
 * next server are set, option 60 repeats the client's kind, and for PXE ROMs option 43 tells them to
 * take the boot file as it is. Option 97 is echoed: the PXE spec has clients match replies on it.
 *
 * Without `withBootFile` (an OFFER to a PXE ROM when the boot file is given on the PXE port only) the
 * offer says PXEClient and names us, nothing more: no file, no option 43, siaddr ourselves. That is what
 * sends a real client to the PXE port after the real server's ACK: iPXE asks there when the proxy offer
 * lacks next-server plus file and a boot menu (dhcp_has_pxeopts), EDK2 when it lacks option 43's
 * discovery options (a "BINL" offer, whose siaddr is where it asks).
 */
export function buildProxyReply(
  request: DhcpPacket, kind: 'offer' | 'ack', answer: BootAnswer, ctx: ReplyContext, httpClient: boolean, withBootFile = true,
): DhcpPacket {
  const reply = replyTo(request, request.ciaddr);
  const options = reply.options;
  options.set(Opt.messageType, O.uint8(kind === 'offer' ? MessageType.offer : MessageType.ack));
  options.set(Opt.serverId, O.ip(ctx.serverIp));
  options.set(Opt.vendorClass, O.text(answer.vendorClass ?? (httpClient ? 'HTTPClient' : 'PXEClient')));
  if (withBootFile) {
    reply.siaddr = answer.nextServer ?? ctx.serverIp;
    if (!httpClient) options.set(Opt.vendorSpecific, PXE_VENDOR_OPTIONS);
    if (answer.nextServer !== undefined) options.set(Opt.tftpServer, O.text(answer.nextServer));
    options.set(Opt.bootFile, O.text(answer.bootFile));
    if (answer.bootFile.length <= FILE_FIELD_MAX) reply.file = answer.bootFile;
  } else {
    reply.siaddr = ctx.serverIp;
  }
  const uuid = request.options.get(Opt.uuid);
  if (uuid !== undefined) options.set(Opt.uuid, uuid);
  const clientId = request.options.get(Opt.clientId);
  if (clientId !== undefined) options.set(Opt.clientId, clientId);
  return reply;
}

function setLease(options: O.DhcpOptions, seconds: number): void {
  options.set(Opt.leaseTime, O.uint32(seconds));
  if (seconds === INFINITE_LEASE) return;
  options.set(Opt.renewalTime, O.uint32(Math.floor(seconds / 2)));
  options.set(Opt.rebindingTime, O.uint32(Math.floor((seconds * 7) / 8)));
}

/** The answer's address as a number and the client's prefix; throws DhcpEncodeError for an answer that would misconfigure it. */
function checkAnswer(answer: DhcpAnswer, request: DhcpPacket, ctx: ReplyContext): { ip: number; prefix: number } {
  const ip = parseIpv4(answer.ip);
  if (ip === -1 || ip === 0) throw new DhcpEncodeError(`answer ip ${JSON.stringify(answer.ip)} is not a usable IPv4 address`);
  if (!Number.isInteger(answer.leaseSeconds) || answer.leaseSeconds <= 0) throw new DhcpEncodeError(`leaseSeconds must be a positive integer, got ${answer.leaseSeconds}`);
  if (answer.prefix !== undefined) {
    if (!isValidPrefix(answer.prefix)) throw new DhcpEncodeError(`answer prefix ${answer.prefix} is not 0..32`);
    return { ip, prefix: answer.prefix };
  }
  const mask = prefixToMaskInt(ctx.subnet.prefix);
  if (((ip & mask) >>> 0) !== ((ipToInt(ctx.subnet.network) & mask) >>> 0)) {
    const where = hasAddress(request.giaddr) ? `relayed via ${request.giaddr}; give answer.prefix` : 'on the served subnet';
    throw new DhcpEncodeError(`answer ip ${answer.ip} is outside ${ctx.subnet.network}/${ctx.subnet.prefix} (${where})`);
  }
  return { ip, prefix: ctx.subnet.prefix };
}

/**
 * Where a reply goes (RFC 2131 4.1): to the relay, to a client's existing address, else broadcast.
 * Unicast to yiaddr would need an ARP entry Node cannot insert. Broadcast is `ctx.broadcast`: the
 * limited broadcast when the socket is bound to the provisioning interface, else the subnet's
 * directed broadcast (routed out of the interface holding the subnet, sent to ff:ff:ff:ff:ff:ff;
 * iPXE, udhcpc and dhclient accept it, EDK2's native PXE client does not).
 */
export function replyDestination(request: DhcpPacket, kind: ReplyKind, ctx: ReplyContext): Endpoint {
  if (hasAddress(request.giaddr)) return { address: request.giaddr, port: ctx.serverPort };
  if (kind !== 'nak' && hasAddress(request.ciaddr)) return { address: request.ciaddr, port: ctx.clientPort };
  return { address: ctx.broadcast ?? directedBroadcast(ctx.subnet.network, ctx.subnet.prefix), port: ctx.clientPort };
}

/**
 * Why a request must not be answered where RFC 2131 4.1 sends its reply, or null (the relay half, asked before the
 * policy so that a dropped request takes no pool address). giaddr and ciaddr are the request's
 * own words, and anyone on the network can forge a request: taken as they are, they make the server send to an
 * address of the sender's choice (reflection). So a relayed request is answered only through a declared relay, and
 * a unicast to ciaddr goes only to an address inside the served subnet or to the very address this reply gives the
 * client (`answerIp`; an INFORM's answer echoes ciaddr, so it does not count there).
 */
export function relayRefusal(request: DhcpPacket, ctx: ReplyContext): ReflectionRefusal | null {
  return hasAddress(request.giaddr) && !ctx.relays?.has(request.giaddr) ? 'undeclared-relay' : null;
}

/** The ciaddr half of `relayRefusal`'s rule, once the answer is known; a relayed request goes to giaddr instead. */
export function ciaddrRefusal(request: DhcpPacket, kind: ReplyKind, answerIp: string | undefined, ctx: ReplyContext): ReflectionRefusal | null {
  if (hasAddress(request.giaddr) || kind === 'nak' || !hasAddress(request.ciaddr)) return null;
  if (inSubnet(request.ciaddr, ctx.subnet.network, ctx.subnet.prefix)) return null;
  return kind !== 'inform-ack' && request.ciaddr === answerIp ? null : 'ciaddr-off-subnet';
}

/**
 * Where a proxy reply goes. On port 67 like any reply. On the PXE port the client already has its
 * address and listens where it sent from, so the ACK goes back to that source (PXE 2.1 section 2.2.4).
 */
export function proxyDestination(request: DhcpPacket, from: Endpoint, onPxePort: boolean, ctx: ReplyContext): Endpoint {
  if (onPxePort && hasAddress(from.address) && !hasAddress(request.giaddr)) return { address: from.address, port: from.port };
  return replyDestination(request, 'ack', ctx);
}
