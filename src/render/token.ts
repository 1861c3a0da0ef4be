import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The per-host token a booted OS presents when it phones home or fetches its secret config.
 * Derived from the agent's own key, so it is never stored in Git and survives agent restarts.
 */
export function hostToken(agentKey: Buffer, hostName: string): string {
  return createHmac('sha256', agentKey).update(`host-token:${hostName}`).digest('hex').slice(0, 32);
}

export function tokenMatches(expected: string, presented: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
