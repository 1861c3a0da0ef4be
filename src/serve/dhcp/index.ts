// Public surface of the DHCP module. It depends on node: builtins only.
export { createDhcpServer } from './server.ts';
export { classifyClient } from './client-info.ts';
export type { BootStage, ClientInfo, FirmwareKind } from './client-info.ts';
export { parseDhcpPacket, encodeDhcpPacket, emptyPacket, chaddrFromMac, hardwareAddress, hasBroadcastFlag, BootOp, BROADCAST_FLAG } from './packet.ts';
export type { DhcpPacket } from './packet.ts';
export { Opt, MessageType } from './options.ts';
export { directedBroadcast } from './ipv4.ts';
export * as dhcpOptions from './options.ts';
export type { DhcpOptions, MessageTypeName } from './options.ts';
export { DhcpParseError, DhcpEncodeError, DhcpConfigError, DhcpBindError, DhcpLeaseStoreError } from './errors.ts';
export { LeasePool } from './lease-pool.ts';
export type { Lease, LeaseClient, LeasePoolRange, PoolGrant } from './lease-pool.ts';
export { LeaseStore } from './lease-store.ts';
export type {
  BootAnswer, DhcpAction, DhcpAnswer, DhcpExchange, DhcpLogger, DhcpPolicy, DhcpServer, DhcpServerOptions, Endpoint, FullServerOptions,
  IgnoreReason, NakReason, ProxyBootFileIn, ProxyDhcpPolicy, ProxyServerOptions,
} from './types.ts';
