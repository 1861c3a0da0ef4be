// RFC 2131 section 4.3 (full) and PXE 2.1 proxyDHCP: which reply (if any) a request deserves. Pure, no I/O.
import type { ClientInfo } from './client-info.ts';
import { hasAddress } from './ipv4.ts';
import type { BootAnswer, DhcpAnswer, DhcpPolicy, IgnoreReason, NakReason, ProxyDhcpPolicy } from './types.ts';

export type Decision =
  | { action: 'offer' | 'ack' | 'inform-ack'; answer: DhcpAnswer }
  | { action: 'nak'; reason: NakReason; answer: DhcpAnswer }
  | { action: 'ignored'; reason: IgnoreReason }
  | { action: 'released' | 'declined' };

export function decideReply(client: ClientInfo, serverIp: string, policy: DhcpPolicy): Decision {
  // A serverId naming someone else means the client picked (or talks to) another server.
  if (client.serverId !== undefined && client.serverId !== serverIp) return { action: 'ignored', reason: 'other-server' };
  switch (client.messageType) {
    case 'discover': {
      const answer = policy.answer(client);
      return answer === null ? { action: 'ignored', reason: 'policy-refused' } : { action: 'offer', answer };
    }
    case 'request': return decideRequest(client, policy);
    case 'inform': {
      const answer = policy.answer(client);
      return answer === null ? { action: 'ignored', reason: 'policy-refused' } : { action: 'inform-ack', answer };
    }
    // RFC 2131 4.4.4/4.4.6: both MUST name the server; without it we cannot tell they are meant for us.
    case 'release': return client.serverId === undefined ? { action: 'ignored', reason: 'no-server-id' } : { action: 'released' };
    case 'decline': return client.serverId === undefined ? { action: 'ignored', reason: 'no-server-id' } : { action: 'declined' };
    default: return { action: 'ignored', reason: 'not-a-request' };
  }
}

/**
 * SELECTING and INIT-REBOOT carry the address in option 50; RENEWING and REBINDING in ciaddr.
 * Either way the client wants one specific address: ACK if it is the one the policy gives, else NAK.
 */
function decideRequest(client: ClientInfo, policy: DhcpPolicy): Decision {
  const wanted = client.requestedIp ?? (hasAddress(client.ciaddr) ? client.ciaddr : undefined);
  if (wanted === undefined) return { action: 'ignored', reason: 'no-address-in-request' };
  // RFC 2131 4.3.2: with no record of the client, remain silent rather than NAK.
  const answer = policy.answer(client);
  if (answer === null) return { action: 'ignored', reason: 'policy-refused' };
  return wanted === answer.ip ? { action: 'ack', answer } : { action: 'nak', reason: 'wrong-address', answer };
}

export type ProxyDecision =
  | { action: 'offer' | 'ack'; answer: BootAnswer }
  | { action: 'ignored'; reason: IgnoreReason };

/**
 * A proxyDHCP server (PXE 2.1 section 2.2.2) never hands out addresses and talks only to boot clients
 * (vendor class PXEClient, which iPXE sends too, or HTTPClient). On port 67 it answers the DISCOVER
 * with a boot offer (and a REQUEST that names it, which some ROMs send); on the PXE port 4011 the
 * client, now holding an address from the real server, REQUESTs (or INFORMs) the boot file directly.
 */
export function decideProxyReply(client: ClientInfo, serverIp: string, policy: ProxyDhcpPolicy, onPxePort: boolean): ProxyDecision {
  if (!client.isPxeRom && !client.isHttpBoot) return { action: 'ignored', reason: 'not-a-boot-client' };
  if (client.serverId !== undefined && client.serverId !== serverIp) return { action: 'ignored', reason: 'other-server' };
  let action: 'offer' | 'ack';
  if (onPxePort) {
    if (client.messageType !== 'request' && client.messageType !== 'inform') return { action: 'ignored', reason: 'not-a-request' };
    action = 'ack';
  } else if (client.messageType === 'discover') {
    action = 'offer';
  } else if (client.messageType === 'request' && client.serverId === serverIp) {
    action = 'ack';
  } else {
    // REQUESTs for the real server's address, RELEASE, DECLINE, INFORM: not ours to answer.
    return { action: 'ignored', reason: client.messageType === 'request' ? 'other-server' : 'not-a-request' };
  }
  const answer = policy.boot(client);
  return answer === null ? { action: 'ignored', reason: 'policy-refused' } : { action, answer };
}
