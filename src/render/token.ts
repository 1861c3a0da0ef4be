import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * What rendering writes where a host's token goes (kernel command line, config URL, `{{ token }}` in templates).
 * Generations never hold a token: the boot backend puts the token of the host's current provisioning attempt
 * in this slot when it serves the host, at its own address (src/serve/boot-backend.ts).
 */
export const TOKEN_SLOT = '@@forseti-token@@';

/** A fresh attempt nonce: minted when a provisioning or wipe starts, kept in the journal. Not secret by itself. */
export function newAttemptNonce(): string {
  return randomBytes(16).toString('hex');
}

/**
 * The token of one provisioning attempt of one host: what its booted OS presents when it phones home or fetches
 * its config. Derived from the agent's own key, so it is never stored and cannot be computed from the nonce
 * alone; a new attempt (new nonce) voids the previous one.
 */
export function attemptToken(agentKey: Buffer, hostName: string, nonce: string): string {
  return createHmac('sha256', agentKey).update(`attempt-token:${hostName}:${nonce}`).digest('hex').slice(0, 32);
}

/** Puts `token` into every slot of a rendered script or config. */
export function fillTokenSlot(text: string, token: string): string {
  return text.replaceAll(TOKEN_SLOT, token);
}

export function tokenMatches(expected: string, presented: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
