import type { ClientInfo } from './client-info.ts';

/** The boot part of an answer: all a proxyDHCP server gives (no address). */
export interface BootAnswer {
  /** Goes into the BOOTP `file` field (when it fits) and option 67. */
  bootFile: string;
  /** siaddr and option 66; defaults to the server's own address. */
  nextServer?: string;
  /**
   * Option 60 in the reply. UEFI HTTP boot only accepts an offer whose vendor class is "HTTPClient";
   * proxy replies default to the client's own class (PXEClient or HTTPClient).
   */
  vendorClass?: string;
}

/** The product's decision for one client in full mode; `null` means stay silent. */
export interface DhcpPolicy {
  answer(client: ClientInfo): DhcpAnswer | null;
  /** A DHCPRELEASE for `client.ciaddr`, addressed to this server. */
  release?(client: ClientInfo): void;
  /** A DHCPDECLINE: the client found `client.requestedIp` in use by someone else. */
  decline?(client: ClientInfo): void;
}

/** The product's decision in proxy mode: boot information for a PXE/HTTP boot client, or `null` for silence. */
export interface ProxyDhcpPolicy {
  boot(client: ClientInfo): BootAnswer | null;
}

export interface DhcpAnswer extends Partial<BootAnswer> {
  ip: string;
  leaseSeconds: number;
  /** Prefix of the client's subnet; defaults to the server's. Needed for relayed (giaddr) subnets. */
  prefix?: number;
  router?: string;
  dns?: string[];
  hostname?: string;
  domain?: string;
  /** Adds option 175 with iPXE setting 176=1 so iPXE does not wait for a ProxyDHCP offer. */
  ipxeNoProxyDhcp?: boolean;
}

/** pino-compatible subset. */
export interface DhcpLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
  /** When present, per-packet lines below the level are not even built (pino has it). */
  isLevelEnabled?(level: 'debug' | 'info'): boolean;
}

export type DhcpAction = 'offer' | 'ack' | 'nak' | 'ignored' | 'released' | 'declined';

export type IgnoreReason =
  | 'policy-refused'
  | 'other-server'
  | 'no-server-id'
  | 'no-address-in-request'
  | 'not-a-request'
  | 'not-a-boot-client'
  | 'bootp-without-dhcp'
  | 'invalid-answer'
  /** giaddr names a relay nobody declared (`relays`): the reply would go wherever a forged request says. */
  | 'undeclared-relay'
  /** ciaddr is outside the served subnet and not the address the answer gives: the reply would go there. */
  | 'ciaddr-off-subnet';

export type NakReason = 'wrong-address';

export interface Endpoint {
  address: string;
  port: number;
}

/** One handled request, reported whether or not it was answered. */
export interface DhcpExchange {
  client: ClientInfo;
  action: DhcpAction;
  reason?: IgnoreReason | NakReason;
  /** What was given: a full answer, or a proxy's boot answer (which never has an `ip`). */
  answer?: DhcpAnswer | (BootAnswer & { ip?: undefined });
  from: Endpoint;
  /** Our port the request arrived on: 67, or 4011 for a proxy's PXE boot-server requests. */
  port: number;
  sentTo?: Endpoint;
}

interface CommonServerOptions {
  /** Our address on the provisioning subnet: server id (54) and default siaddr. */
  serverIp: string;
  subnet: { network: string; prefix: number };
  /** Default 67. */
  port?: number;
  /** Default `port + 1`. */
  clientPort?: number;
  /** Default 0.0.0.0: broadcasts from address-less clients only reach a wildcard socket. */
  bindAddress?: string;
  /**
   * The provisioning interface. When set, the sockets receive only what arrives on it and send only
   * through it (SO_BINDTODEVICE, see bind-device.ts); start() fails if that cannot be arranged.
   */
  interface?: string;
  /**
   * The relays (DHCP relay agents) whose requests are answered: the giaddr they put in what they forward, which is
   * where the reply goes (RFC 2131 4.1). A request with any other giaddr is dropped, so a forged one cannot make the
   * server send to an address of its choice. Default: none, relayed requests are dropped.
   */
  relays?: readonly string[];
  log?: DhcpLogger;
  onExchange?: (exchange: DhcpExchange) => void;
}

export interface FullServerOptions extends CommonServerOptions {
  /** full (default): this server hands out addresses. */
  mode?: 'full';
  policy: DhcpPolicy;
}

export interface ProxyServerOptions extends CommonServerOptions {
  /** proxy: another server hands out addresses; this one only tells PXE clients what to boot (PXE spec 2.1). */
  mode: 'proxy';
  policy: ProxyDhcpPolicy;
  /** The PXE boot-server port clients send their ProxyDHCP REQUEST to. Default 4011. */
  pxePort?: number;
  /** Where PXE ROMs get the boot file; see `ProxyBootFileIn`. Default `offer`. */
  bootFileIn?: ProxyBootFileIn;
}

/**
 * `offer`: in the proxy OFFER on port 67 (with option 43 "boot the file in this offer"): one exchange.
 * `pxe-ack`: only in the ACK on the PXE port. The OFFER says PXEClient and nothing more, so after the
 * real server's ACK the firmware sends a ProxyDHCP REQUEST to `pxePort` (PXE 2.1's two-step exchange, as
 * Windows Deployment Services answers it). UEFI HTTP boot has no such step: its offer always has the URL.
 */
export type ProxyBootFileIn = 'offer' | 'pxe-ack';

export type DhcpServerOptions = FullServerOptions | ProxyServerOptions;

export interface DhcpServer {
  start(): Promise<void>;
  stop(): Promise<void>;
}
