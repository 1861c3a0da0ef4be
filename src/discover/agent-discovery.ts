// Discovery as the agent runs it (issue 14): a machine whose MAC no host declares, PXE-booting while site.yaml's
// `discovery.enabled` holds, gets the inventory image's script; the image POSTs what it found to
// /v1/discovery/inventory/<mac>; a valid report, within the rate limit and for a MAC not proposed before, becomes a
// proposed host file on the branch forseti/discovered/<mac> of the lab's remote and, where agent.yaml names a forge,
// a pull request. Nothing here writes to the lab's branch, and the image never writes a disk.
//
// Which machine is speaking: an unknown machine has no reserved address and no provisioning attempt, so its script
// carries a token bound to the MAC it was served for and the address that asked (HMAC of the agent key; it lasts
// one to two hours). A report counts only with that token, from that address, for that MAC, and must list a NIC with
// that MAC: a report can only ever propose the MAC its script was issued to. Where forseti's own DHCP hands out the
// pool, the script is served only to an address the pool has leased to that MAC.
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { readFileIfExists, writeJsonAtomic } from '../core/atomic-file.ts';
import type { Logger } from '../log.ts';
import { DEFAULT_DISCOVERY, type DiscoverySettings } from '../model/site-discovery.ts';
import type { Site } from '../model/types.ts';
import type { Generation } from '../render/generation.ts';
import { exitScript, installScript } from '../render/ipxe.ts';
import { tokenMatches } from '../render/token.ts';
import { AgentUrls, imageFileName } from '../render/urls.ts';
import type { GitCredentials } from '../source/auth.ts';
import type { ForgeClient } from '../source/forge/types.ts';
import { factsFromInventory } from './from-inventory.ts';
import { InventoryReader, InventoryReportError, normalizeMac } from './inventory-report.ts';
import { discoveredBranch, ProposalBranchPublisher } from './proposal-branch.ts';
import { ProposalPolicy, type ProposalMemory, type ProposalStore } from './proposal-policy.ts';
import { pullRequestText } from './pull-request-text.ts';

export const INVENTORY_PATH_PREFIX = '/v1/discovery/inventory/';
/** A token is valid in the window it was issued in and the next: one to two hours. */
const TOKEN_WINDOW_MS = 3600_000;
/** Reports read per minute at most (each up to 1 MiB of JSON to parse and validate), whatever their token. */
const MAX_REPORTS_PER_MINUTE = 60;
/** Kernel arguments every inventory boot gets besides forseti's: a serial console and the screen. */
const CONSOLE_ARGS = 'console=tty0 console=ttyS0,115200n8';

export interface AgentDiscoveryOptions {
  /** stateDir/discovery: the proposal memory and the publisher's repository. */
  dir: string;
  agentKey: Buffer;
  lab: { url: string; branch: string; auth?: GitCredentials };
  author: { name: string; email: string };
  /** From agent.yaml discovery.forge, its token resolved; none: branches are pushed, no pull request. */
  forge?: { client: ForgeClient; labels: string[] };
  /** The addresses forseti's DHCP pool has leased to a MAC; null where forseti hands out no pool addresses. */
  leasedTo?: (mac: string) => string[] | null;
  log: Logger;
  now?: () => number;
  /** The publisher's backoff between push races (tests shorten it). */
  backoffMs?: number;
}

export interface DiscoveryScript {
  script: string;
  answer: 'inventory' | 'refused';
  refused?: string;
}

export interface DiscoveryAnswer {
  status: number;
  message: string;
  /** Seconds, for a 429. */
  retryAfter?: number;
}

/** What became of one report's proposal, for the log and the tests. */
export type ProposalOutcome =
  | { kind: 'pushed'; branch: string; file: string; pullRequest?: { number?: number; url?: string; kind: string } }
  | { kind: 'exists' | 'declared' | 'refused' | 'failed'; branch: string; why: string };

export class AgentDiscovery {
  private readonly reader = new InventoryReader();
  private readonly publisher: ProposalBranchPublisher;
  private readonly store: ProposalStore;
  private readonly now: () => number;
  private policy: { limits: string; policy: ProposalPolicy } | null = null;
  /** MACs whose proposal runs now, and the work itself (stop() waits for it). */
  private readonly inFlight = new Map<string, Promise<ProposalOutcome>>();
  private readonly reads: number[] = [];

  constructor(private readonly options: AgentDiscoveryOptions) {
    this.now = options.now ?? Date.now;
    this.publisher = new ProposalBranchPublisher({
      url: options.lab.url,
      baseBranch: options.lab.branch,
      dir: join(options.dir, 'proposals'),
      author: options.author,
      ...(options.lab.auth ? { auth: options.lab.auth } : {}),
      ...(options.backoffMs !== undefined ? { backoffMs: options.backoffMs } : {}),
    });
    const file = join(options.dir, 'proposed.json');
    this.store = {
      load: async () => {
        const text = await readFileIfExists(file);
        return text === undefined ? undefined : (JSON.parse(text) as unknown);
      },
      save: (memory: ProposalMemory) => writeJsonAtomic(file, memory),
    };
  }

  /**
   * The script for a MAC no host declares, or null when the site does not discover (the caller then says no host
   * is declared). Refused (an exit script saying why): no such image, an address the pool did not lease to this
   * MAC, a MAC proposed already.
   */
  scriptFor(mac: string, remoteIp: string, gen: Generation): DiscoveryScript | null {
    const site = gen.lab.site;
    const settings = site.discovery;
    if (!settings.enabled || settings.image === undefined) return null;
    const refuse = (why: string): DiscoveryScript => ({ script: exitScript(`unknown machine ${mac}: ${why}`), answer: 'refused', refused: why });
    const image = gen.lab.images.get(settings.image);
    if (!image) return refuse(`the discovery image ${settings.image} is not in the lab`);
    const leased = this.options.leasedTo?.(mac) ?? null;
    if (leased !== null && !leased.includes(remoteIp)) return refuse(`the inventory image is served only to the address the DHCP pool leased to ${mac}${leased.length > 0 ? ` (${leased.join(', ')})` : ' (none)'}, not to ${remoteIp}`);
    const decided = this.policy?.policy.decide(mac, this.now());
    if (decided?.kind === 'already-proposed') return refuse(`proposed already${decided.branch ? ` on ${decided.branch}` : ''}; merge or close its pull request (forseti proposes a machine once)`);
    if (this.inFlight.has(mac)) return refuse('its proposal is being pushed');
    const urls = new AgentUrls(site);
    const report = `${urls.base}${INVENTORY_PATH_PREFIX}${mac.replace(/:/g, '-')}`;
    const cmdline = `forseti.mode=inventory forseti.report=${report} forseti.token=${this.token(mac, remoteIp, this.window())} forseti.poweroff=${settings.afterReport === 'poweroff' ? 1 : 0} ${CONSOLE_ARGS}`;
    const script = installScript({
      host: `unknown-${mac.replace(/:/g, '-')}`,
      role: 'discovery',
      kernelUrl: urls.imageFile(image.kernel),
      initrds: image.initrds.map((f) => ({ url: urls.imageFile(f), name: imageFileName(f) })),
      cmdline,
    });
    return { script, answer: 'inventory' };
  }

  /**
   * A report POSTed to /v1/discovery/inventory/<mac>: checked (token, address, MAC, size, schema), then the proposal
   * is started and the answer given at once (202); what became of it is logged.
   */
  async receive(rawMac: string, token: string, body: Uint8Array, remoteIp: string, gen: Generation | null): Promise<DiscoveryAnswer> {
    const mac = normalizeMac(rawMac);
    const log = this.options.log;
    const refuse = (status: number, reason: string, extra: Partial<DiscoveryAnswer> = {}): DiscoveryAnswer => {
      log.warn({ mac, remote: remoteIp, status, reason }, 'inventory report refused; nothing is proposed');
      return { status, message: `refused: ${reason}`, ...extra };
    };
    if (!gen || !gen.lab.site.discovery.enabled) return refuse(404, 'discovery is not enabled on this site');
    if (gen.byMac.has(mac)) return refuse(409, `MAC ${mac} is declared by host ${gen.byMac.get(mac)}: nothing to discover`);
    if (!this.tokenHolds(token, mac, remoteIp)) return refuse(403, `not the token of an inventory script served for ${mac} to ${remoteIp} (or it has expired)`);
    const now = this.now();
    while (this.reads.length > 0 && now - this.reads[0]! >= 60_000) this.reads.shift();
    if (this.reads.length >= MAX_REPORTS_PER_MINUTE) return refuse(429, `more than ${MAX_REPORTS_PER_MINUTE} reports in a minute`, { retryAfter: 60 });
    this.reads.push(now);
    if (this.inFlight.has(mac)) return { status: 200, message: `being proposed: ${discoveredBranch(mac)}` };
    let report;
    try {
      report = this.reader.read(body, { from: remoteIp, bootedMac: mac });
    } catch (err) {
      if (err instanceof InventoryReportError) return refuse(400, err.message);
      throw err;
    }
    const site = gen.lab.site;
    const policy = await this.policyFor(site.discovery.rateLimit);
    const decision = await policy.begin(mac, now);
    if (decision.kind === 'already-proposed') {
      log.info({ mac, remote: remoteIp, branch: decision.branch }, 'inventory report of a machine proposed already; nothing to do');
      return { status: 200, message: `proposed already${decision.branch ? `: ${decision.branch}` : ''}` };
    }
    if (decision.kind === 'rate-limited') return refuse(429, `rate limit: ${decision.why}`, { retryAfter: Math.max(1, Math.ceil((decision.retryAt - now) / 1000)) });
    const facts = factsFromInventory(report, { bootedMac: mac, ...(site.discovery.bmcCredential ? { bmcCredential: site.discovery.bmcCredential } : {}) });
    const work = this.propose(mac, facts, site, policy).finally(() => this.inFlight.delete(mac));
    this.inFlight.set(mac, work);
    log.info({ mac, remote: remoteIp, branch: discoveredBranch(mac) }, 'inventory report accepted; proposing');
    return { status: 202, message: `accepted: proposing ${discoveredBranch(mac)}` };
  }

  /** Reads the memory of machines proposed before (stateDir/discovery/proposed.json). */
  async start(site?: Site): Promise<void> {
    const { rateLimit } = site?.discovery ?? DEFAULT_DISCOVERY;
    await this.policyFor(rateLimit);
  }

  /** The proposal started for this MAC, if one runs (tests await it). */
  proposalOf(mac: string): Promise<ProposalOutcome> | undefined {
    return this.inFlight.get(normalizeMac(mac));
  }

  /** Resolves once no proposal runs. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()]);
  }

  running(): string[] {
    return [...this.inFlight.keys()].map((mac) => `proposing ${discoveredBranch(mac)}`);
  }

  private async propose(mac: string, facts: ReturnType<typeof factsFromInventory>, site: Site, policy: ProposalPolicy): Promise<ProposalOutcome> {
    const log = this.options.log;
    const branch = discoveredBranch(mac);
    try {
      const result = await this.publisher.propose(facts, { namePattern: site.discovery.namePattern, fallbackPattern: site.discovery.fallbackPattern, command: 'the forseti agent (discovery)' });
      if (result.kind === 'exists') {
        await policy.remember(mac, this.now(), branch);
        log.info({ mac, branch }, 'discovered machine: its branch exists already; not proposed again');
        return { kind: 'exists', branch, why: 'the branch exists on the remote' };
      }
      if (result.kind === 'declared') {
        log.info({ mac, host: result.host, why: result.why }, 'discovered machine is declared in the lab already; nothing proposed');
        return { kind: 'declared', branch, why: result.why };
      }
      if (result.kind === 'refused') {
        log.warn({ mac, branch, why: result.why, problems: result.problems }, 'discovered machine not proposed');
        return { kind: 'refused', branch, why: result.why };
      }
      await policy.remember(mac, this.now(), branch);
      log.info({ mac, branch, file: result.file, commit: result.commit }, 'discovered machine proposed');
      const forge = this.options.forge;
      if (!forge) return { kind: 'pushed', branch, file: result.file };
      const text = pullRequestText({ name: result.name, file: result.file, branch, document: result.document }, facts);
      try {
        const pr = await forge.client.openPullRequest({ head: branch, base: this.publisher.baseBranch, ...text, labels: forge.labels });
        log.info({ mac, branch, pullRequest: pr.number, url: pr.url, kind: pr.kind, labelProblem: pr.labelProblem }, 'pull request for the discovered machine');
        return { kind: 'pushed', branch, file: result.file, pullRequest: { kind: pr.kind, ...(pr.number !== undefined ? { number: pr.number } : {}), ...(pr.url !== undefined ? { url: pr.url } : {}) } };
      } catch (err) {
        // The branch is pushed and remembered: a human can open the pull request from it.
        log.error({ err, mac, branch }, 'the pull request for the discovered machine could not be opened; the branch is pushed');
        return { kind: 'pushed', branch, file: result.file };
      }
    } catch (err) {
      log.error({ err, mac, branch }, 'proposing the discovered machine failed; its next report tries again');
      return { kind: 'failed', branch, why: err instanceof Error ? err.message : String(err) };
    }
  }

  /** The policy with the site's current limits (reopened from its saved memory when a commit changes them). */
  private async policyFor({ proposals, intervalSeconds }: DiscoverySettings['rateLimit']): Promise<ProposalPolicy> {
    const limits = `${proposals}/${intervalSeconds}`;
    if (this.policy?.limits !== limits) this.policy = { limits, policy: await ProposalPolicy.open(this.store, { maxProposals: proposals, intervalSeconds }) };
    return this.policy.policy;
  }

  /**
   * The token was served for this MAC to this address; or, where forseti's pool leases addresses, to another address
   * the pool leased to this MAC while the report comes from one it leased to it too (iPXE and the image's DHCP client
   * may identify themselves differently, and so hold two leases).
   */
  private tokenHolds(token: string, mac: string, remoteIp: string): boolean {
    if (token === '') return false;
    const leased = this.options.leasedTo?.(mac) ?? null;
    const addresses = leased?.includes(remoteIp) ? [remoteIp, ...leased] : [remoteIp];
    const window = this.window();
    return addresses.some((ip) => tokenMatches(this.token(mac, ip, window), token) || tokenMatches(this.token(mac, ip, window - 1), token));
  }

  private window(): number {
    return Math.floor(this.now() / TOKEN_WINDOW_MS);
  }

  private token(mac: string, ip: string, window: number): string {
    return createHmac('sha256', this.options.agentKey).update(`discovery-token:${mac}:${ip}:${window}`).digest('hex').slice(0, 32);
  }
}
