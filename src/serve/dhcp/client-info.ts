// What kind of client sent a request: the facts the product's policy decides on.
import {
  Opt, readClientArchs, readClientId, readIp, readMessageType, readParamRequestList, readString,
  readUserClasses, readUuid, type ClientId, type MessageTypeName,
} from './options.ts';
import { hardwareAddress, hasBroadcastFlag, type DhcpPacket } from './packet.ts';

export type FirmwareKind = 'bios' | 'uefi-x64' | 'uefi-http' | 'arm64-uefi' | 'unknown';

/**
 * Where in the boot chain the client is: a firmware boot ROM (PXE or UEFI HTTP boot), iPXE
 * (already chainloaded), or an installed/booting OS's DHCP client (udhcpc, dhclient, ...).
 */
export type BootStage = 'firmware' | 'ipxe' | 'os';

export interface ClientInfo {
  /** Lower-case colon-separated hardware address from chaddr. */
  mac: string;
  /**
   * Who the client is for a lease (RFC 2131 4.2): its client identifier (option 61) when it sends one,
   * as `id:` and the hex of the option (type byte first), else its MAC. An identifier of type 1 that
   * is just chaddr again (iPXE, most firmware) is the MAC, so such a machine is the same client with
   * and without the option. Reservations from Git do not use it: they stay by MAC.
   */
  leaseKey: string;
  xid: number;
  messageType: MessageTypeName;
  requestedIp?: string;
  serverId?: string;
  /** Zero address when the client has none yet. */
  ciaddr: string;
  /** Relay agent address; zero when the request came straight from the segment. */
  giaddr: string;
  broadcastFlag: boolean;
  hostname?: string;
  vendorClass?: string;
  userClasses: string[];
  clientId?: ClientId;
  /** First architecture type from option 93, as RFC 4578 lists them. */
  clientArch?: number;
  firmware: FirmwareKind;
  uuid?: string;
  paramRequestList: number[];
  /** User class "iPXE" or iPXE's encapsulated option 175 present. */
  isIpxe: boolean;
  /** Vendor class starts with "PXEClient"; note iPXE sends that too, so see `bootStage`. */
  isPxeRom: boolean;
  isHttpBoot: boolean;
  bootStage: BootStage;
}

/** Classifies a BOOTREQUEST; `undefined` when it lacks a DHCP message type (plain BOOTP). */
export function classifyClient(packet: DhcpPacket): ClientInfo | undefined {
  const opts = packet.options;
  const messageType = readMessageType(opts);
  if (messageType === undefined) return undefined;
  const vendorClass = readString(opts, Opt.vendorClass);
  const userClasses = readUserClasses(opts);
  const clientArch = readClientArchs(opts)[0];
  const isIpxe = userClasses.includes('iPXE') || opts.has(Opt.ipxeEncap);
  const isPxeRom = vendorClass?.startsWith('PXEClient') ?? false;
  const isHttpBoot = vendorClass?.startsWith('HTTPClient') ?? false;
  const mac = hardwareAddress(packet);
  return {
    mac,
    leaseKey: leaseKey(opts.get(Opt.clientId), packet, mac),
    xid: packet.xid,
    messageType,
    ciaddr: packet.ciaddr,
    giaddr: packet.giaddr,
    broadcastFlag: hasBroadcastFlag(packet),
    userClasses,
    firmware: firmwareKind(clientArch, isHttpBoot),
    paramRequestList: readParamRequestList(opts),
    isIpxe,
    isPxeRom,
    isHttpBoot,
    bootStage: isIpxe ? 'ipxe' : isPxeRom || isHttpBoot ? 'firmware' : 'os',
    requestedIp: readIp(opts, Opt.requestedIp),
    serverId: readIp(opts, Opt.serverId),
    hostname: readString(opts, Opt.hostname),
    vendorClass,
    clientId: readClientId(opts),
    clientArch,
    uuid: readUuid(opts),
  };
}

function leaseKey(clientId: Buffer | undefined, packet: DhcpPacket, mac: string): string {
  // RFC 2132 9.14: at least two bytes (a type and something); anything shorter is no identifier.
  if (clientId === undefined || clientId.length < 2) return mac;
  const isChaddr = clientId[0] === packet.htype && clientId.length - 1 === packet.hlen
    && clientId.compare(packet.chaddr, 0, packet.hlen, 1) === 0;
  return isChaddr ? mac : `id:${clientId.toString('hex')}`;
}

/** RFC 4578 / IANA processor architecture types. */
function firmwareKind(arch: number | undefined, isHttpBoot: boolean): FirmwareKind {
  switch (arch) {
    case 0: return 'bios';
    case 7: case 9: return 'uefi-x64';
    case 11: return 'arm64-uefi';
    case 16: return isHttpBoot ? 'uefi-http' : 'unknown';
    default: return 'unknown';
  }
}
