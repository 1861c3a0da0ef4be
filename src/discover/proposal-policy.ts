// Whether a discovered machine is proposed now: at most `maxProposals` proposals are started per `intervalSeconds`
// (a sliding window), and a machine proposed once (by its boot MAC) is never proposed again, across restarts. The
// decision is a pure function of the memory, the MAC and the time; ProposalPolicy keeps the memory and writes it
// through a store its owner (the agent) gives it, before answering, so a crash cannot forget a proposal made.
import { normalizeMac } from './inventory-report.ts';

export interface ProposalLimits {
  /** Proposals started per interval; >= 1. */
  maxProposals: number;
  intervalSeconds: number;
  /** Machines remembered at most; the oldest are forgotten first (their branches still stop a second proposal). */
  maxRemembered?: number;
}

/** What is persisted. Times are milliseconds since the epoch. */
export interface ProposalMemory {
  version: 1;
  /** Machines proposed, by boot MAC: never again. */
  proposed: Array<{ mac: string; at: number; branch?: string }>;
  /** When proposals were started, for the rate limit (attempts count, whether they ended in a pull request or not). */
  started: number[];
}

export interface ProposalStore {
  /** The memory as last saved; undefined when there is none yet. */
  load(): Promise<unknown>;
  save(memory: ProposalMemory): Promise<void>;
}

export type ProposalDecision =
  | { kind: 'propose' }
  | { kind: 'already-proposed'; mac: string; at: number; branch?: string }
  | { kind: 'rate-limited'; retryAt: number; why: string };

export const DEFAULT_MAX_REMEMBERED = 4096;

/** The decision for `mac` at `now`, changing nothing. */
export function decideProposal(memory: ProposalMemory, mac: string, now: number, limits: ProposalLimits): ProposalDecision {
  const key = normalizeMac(mac);
  const known = memory.proposed.find((p) => p.mac === key);
  if (known) return { kind: 'already-proposed', mac: key, at: known.at, ...(known.branch !== undefined ? { branch: known.branch } : {}) };
  const windowMs = limits.intervalSeconds * 1000;
  // A start stamped in the future (the clock went back) counts as just now.
  const recent = memory.started.map((t) => Math.min(t, now)).filter((t) => now - t < windowMs).sort((a, b) => a - b);
  if (recent.length >= limits.maxProposals) {
    return { kind: 'rate-limited', retryAt: recent[recent.length - limits.maxProposals]! + windowMs, why: `${limits.maxProposals} proposal${limits.maxProposals === 1 ? '' : 's'} per ${limits.intervalSeconds} s already started` };
  }
  return { kind: 'propose' };
}

export class ProposalPolicy {
  private memory: ProposalMemory;

  private constructor(private readonly store: ProposalStore, private readonly limits: ProposalLimits, memory: ProposalMemory) {
    this.memory = memory;
  }

  /** The policy with the memory the store holds (what of it is well-formed; nothing when it holds nothing usable). */
  static async open(store: ProposalStore, limits: ProposalLimits): Promise<ProposalPolicy> {
    if (!Number.isInteger(limits.maxProposals) || limits.maxProposals < 1) throw new RangeError(`maxProposals must be a whole number >= 1, not ${limits.maxProposals}`);
    if (!(limits.intervalSeconds > 0)) throw new RangeError(`intervalSeconds must be > 0, not ${limits.intervalSeconds}`);
    return new ProposalPolicy(store, limits, wellFormed(await store.load()));
  }

  decide(mac: string, now: number): ProposalDecision {
    return decideProposal(this.memory, mac, now, this.limits);
  }

  /** The decision; when it is `propose`, the start is counted against the rate limit and saved first. */
  async begin(mac: string, now: number): Promise<ProposalDecision> {
    // Starts stamped in the future (the clock went back) are restamped now, so they leave the window an interval on.
    if (this.memory.started.some((t) => t > now)) await this.commit({ ...this.memory, started: this.memory.started.map((t) => Math.min(t, now)) });
    const decision = this.decide(mac, now);
    if (decision.kind !== 'propose') return decision;
    const windowMs = this.limits.intervalSeconds * 1000;
    await this.commit({ ...this.memory, started: [...this.memory.started.filter((t) => now - t < windowMs), now] });
    return decision;
  }

  /** The machine is proposed (its branch pushed, or found on the remote): never again, saved before returning. */
  async remember(mac: string, now: number, branch?: string): Promise<void> {
    const key = normalizeMac(mac);
    const others = this.memory.proposed.filter((p) => p.mac !== key);
    const proposed = [...others, { mac: key, at: now, ...(branch !== undefined ? { branch } : {}) }].sort((a, b) => a.at - b.at);
    await this.commit({ ...this.memory, proposed: proposed.slice(-(this.limits.maxRemembered ?? DEFAULT_MAX_REMEMBERED)) });
  }

  /** A human wants the machine proposed again (its branch deleted): forgotten. */
  async forget(mac: string): Promise<void> {
    const key = normalizeMac(mac);
    await this.commit({ ...this.memory, proposed: this.memory.proposed.filter((p) => p.mac !== key) });
  }

  snapshot(): ProposalMemory {
    return structuredClone(this.memory);
  }

  /** Saved first, then used: a store that fails leaves the policy as it was and the caller told. */
  private async commit(next: ProposalMemory): Promise<void> {
    await this.store.save(structuredClone(next));
    this.memory = next;
  }
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** More starts than any sensible limit allows in one window; a store holding more is cut to the newest. */
const MAX_STARTS = 10_000;

function wellFormed(value: unknown): ProposalMemory {
  const memory: ProposalMemory = { version: 1, proposed: [], started: [] };
  if (typeof value !== 'object' || value === null || (value as { version?: unknown }).version !== 1) return memory;
  const v = value as { proposed?: unknown; started?: unknown };
  for (const p of Array.isArray(v.proposed) ? v.proposed : []) {
    const entry = p as { mac?: unknown; at?: unknown; branch?: unknown };
    if (typeof entry.mac !== 'string' || !MAC.test(entry.mac) || typeof entry.at !== 'number' || !Number.isFinite(entry.at)) continue;
    if (memory.proposed.some((x) => x.mac === entry.mac)) continue;
    memory.proposed.push({ mac: entry.mac, at: entry.at, ...(typeof entry.branch === 'string' ? { branch: entry.branch } : {}) });
  }
  for (const t of Array.isArray(v.started) ? v.started.slice(-MAX_STARTS) : []) if (typeof t === 'number' && Number.isFinite(t)) memory.started.push(t);
  return memory;
}
