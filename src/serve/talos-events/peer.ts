import { isIP } from 'node:net';

/**
 * The IP address in a gRPC peer string: grpc-js gives `address:port` (`::ffff:10.0.0.5:51234` on a dual-stack
 * socket, no brackets), other forms write `[v6]:port`. An IPv4-mapped IPv6 address becomes plain IPv4, so a host's
 * reserved IPv4 address matches whichever way the socket was bound. Undefined when no address can be read.
 */
export function peerAddress(peer: string): string | undefined {
  let address = peer.trim();
  if (address.startsWith('ipv4:') || address.startsWith('ipv6:')) address = address.slice(5);
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) address = bracketed[1] ?? '';
  else if (isIP(address) === 0) {
    const port = /:\d{1,5}$/.exec(address);
    if (port) address = address.slice(0, port.index);
  }
  return normaliseAddress(address);
}

/** `::ffff:a.b.c.d` (any case) as `a.b.c.d`; any other valid address unchanged; undefined for what is no address. */
export function normaliseAddress(address: string): string | undefined {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped && isIP(mapped[1] ?? '') === 4) return mapped[1];
  return isIP(address) === 0 ? undefined : address.toLowerCase();
}
