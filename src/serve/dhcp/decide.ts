// RFC 2131 section 4.3: which reply (if any) a request deserves. Pure, no I/O.
import type { ClientInfo } from './client-info.ts';
import { hasAddress } from './ipv4.ts';
import type { DhcpAnswer, DhcpPolicy, IgnoreReason, NakReason } from './types.ts';

export type Decision =
  | { action: 'offer' | 'ack' | 'inform-ack'; answer: DhcpAnswer }
  | { action: 'nak'; reason: NakReason; answer: DhcpAnswer }
  | { action: 'ignored'; reason: IgnoreReason }
  | { action: 'released' | 'declined' };

export function decide(client: ClientInfo, serverIp: string, policy: DhcpPolicy): Decision {
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
    case 'release': return { action: 'released' };
    case 'decline': return { action: 'declined' };
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
