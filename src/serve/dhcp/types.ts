import type { ClientInfo } from './client-info.ts';

/** The product's decision for one client; `null` means stay silent. */
export interface DhcpPolicy {
  answer(client: ClientInfo): DhcpAnswer | null;
}

export interface DhcpAnswer {
  ip: string;
  leaseSeconds: number;
  /** Prefix of the client's subnet; defaults to the server's. Needed for relayed (giaddr) subnets. */
  prefix?: number;
  router?: string;
  dns?: string[];
  hostname?: string;
  domain?: string;
  /** Goes into the BOOTP `file` field (when it fits) and option 67. */
  bootFile?: string;
  /** siaddr and option 66; defaults to the server's own address. */
  nextServer?: string;
  /** Adds option 175 with iPXE setting 176=1 so iPXE does not wait for a ProxyDHCP offer. */
  ipxeNoProxyDhcp?: boolean;
}

/** pino-compatible subset. */
export interface DhcpLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export type DhcpAction = 'offer' | 'ack' | 'nak' | 'ignored' | 'released' | 'declined';

export type IgnoreReason =
  | 'policy-refused'
  | 'other-server'
  | 'no-address-in-request'
  | 'not-a-request'
  | 'bootp-without-dhcp'
  | 'invalid-answer';

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
  answer?: DhcpAnswer;
  from: Endpoint;
  sentTo?: Endpoint;
}

export interface DhcpServerOptions {
  /** Our address on the provisioning subnet: server id (54) and default siaddr. */
  serverIp: string;
  subnet: { network: string; prefix: number };
  /** Default 67. */
  port?: number;
  /** Default `port + 1`. */
  clientPort?: number;
  /** Default 0.0.0.0: broadcasts from address-less clients only reach a wildcard socket. */
  bindAddress?: string;
  policy: DhcpPolicy;
  log?: DhcpLogger;
  onExchange?: (exchange: DhcpExchange) => void;
}

export interface DhcpServer {
  start(): Promise<void>;
  stop(): Promise<void>;
}
