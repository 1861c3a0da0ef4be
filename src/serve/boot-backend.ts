import { createHash } from 'node:crypto';
import type { Logger } from '../log.ts';
import type { Host } from '../model/types.ts';
import { bootAnswer } from '../plan/decide.ts';
import type { ObservedHost, ProvisionStep } from '../core/host-state.ts';
import type { Generation } from '../render/generation.ts';
import { autoexecScript, chainEntryScript, diskScript, exitScript } from '../render/ipxe.ts';
import { attemptToken, fillTokenSlot, tokenMatches } from '../render/token.ts';
import { fillCredentialSlots } from '../render/credential-slot.ts';
import type { BootBackend, BootScript, SecretFileAnswer } from './boot-http.ts';
import type { ImageCache } from '../render/image-cache.ts';
import type { HostTracker } from '../observe/host-tracker.ts';
import type { HostSightings } from '../observe/drift-sightings.ts';
import type { RecentEvents } from './dashboard/recent-events.ts';
import type { Drift } from '../observe/drift.ts';
import type { HostAction, ReconcileRecord } from '../observe/activity.ts';
import type { RejectedRevision } from '../status/site-status.ts';
import { hostView, type StatusView } from '../status/status-view.ts';
import { siteSyncHealth } from '../observe/sync-health.ts';
import type { AgentDiscovery, DiscoveryAnswer } from '../discover/agent-discovery.ts';
import { DEFAULT_CONVERGE } from '../converge/converge-spec.ts';
import type { ConvergeSignals } from './converge-signals.ts';

/** What the status document shows beyond the hosts' phases; all optional so the backend stands alone in tests. */
export interface BackendExtras {
  sightings?: HostSightings;
  events?: RecentEvents;
  site?: () => { revision: string | null; rejected: RejectedRevision | null; reconciles?: ReconcileRecord[] };
  /** The drift measured now: shown one line each, and it decides sync and health with the phase. */
  drifts?: (host: string) => readonly Drift[];
  /** The host's last actions with their timings. */
  actions?: (host: string) => HostAction[];
  /** Why the agent is wedged (a commit apply or a fetch past its bound), or null. */
  health?: () => string | null;
  /** Unknown machines: the inventory script, and their reports (src/discover/agent-discovery.ts). */
  discovery?: Pick<AgentDiscovery, 'scriptFor' | 'receive'>;
  /** The converge signals of roles that declare them (src/serve/converge-signals.ts). */
  converge?: ConvergeSignals;
  /** A credential's password for a slot of a host's own script (Omni's join token); undefined when not held. */
  credential?: (name: string) => string | undefined;
}

/**
 * Answers booting machines from the current generation and the observed state of their host, and turns what
 * they fetch into lifecycle steps.
 */
export class AgentBootBackend implements BootBackend {
  constructor(
    private readonly current: () => Generation | null,
    private readonly tracker: HostTracker,
    private readonly images: ImageCache,
    private readonly agentKey: Buffer,
    private readonly log: Logger,
    private readonly extras: BackendExtras = {},
  ) {
    tracker.onChange(() => this.changed());
  }

  private readonly listeners: Array<() => void> = [];

  onStatusChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Something the status document shows changed: event streams push at once. */
  changed(): void {
    for (const listener of this.listeners) listener();
  }

  ready(): boolean {
    return this.current() !== null;
  }

  health(): string | null {
    return this.extras.health?.() ?? null;
  }

  /**
   * The status document: per host its phase, sync and health (decided by src/observe/sync-health.ts from the
   * desired state, the observed one and the drift, exactly as on the status branch), last events and actions;
   * for the site the revisions, the aggregate and the last commit applies.
   */
  statusView(): StatusView {
    const gen = this.current();
    const hosts: StatusView['hosts'] = {};
    for (const [name, rendered] of gen?.hosts ?? []) {
      const host = gen?.lab.hosts.get(name);
      const state = this.tracker.get(name);
      const drifts = this.extras.drifts?.(name) ?? [];
      const actions = this.extras.actions?.(name) ?? [];
      hosts[name] = hostView({ desired: rendered.desired, state, ...(host ? { host } : {}), drifts, events: this.extras.events?.forHost(name) ?? [], actions });
    }
    const site = this.extras.site?.() ?? { revision: gen?.revision ?? null, rejected: null };
    const aggregate = siteSyncHealth(
      Object.values(hosts).map((h) => ({ sync: h.sync ?? 'Unknown', health: h.health ?? 'Missing' })),
      { revision: site.revision, rejected: site.rejected !== null },
    );
    return {
      revision: gen?.revision ?? null,
      generation: gen?.id ?? null,
      site: { ...site, ...aggregate },
      hosts,
      events: this.extras.events?.forSite() ?? [],
    };
  }

  entryScript(): string {
    const gen = this.current();
    const site = gen?.lab.site;
    return chainEntryScript(site ? `http://${site.agent.address}:${site.agent.httpPort}` : '');
  }

  /**
   * The script a machine asking with this MAC gets. Its own script (install, chain, wipe), which carries the
   * token of its provisioning attempt, goes only to the host's reserved address, and only that fetch is its
   * `script` step; any other address is told to exit, with the reason for the log. "Boot from disk" and "exit"
   * carry nothing and go to anyone. `countStep: false`: the caller counts the step itself once the script is
   * delivered (TFTP, whose source address a request can forge: only the ACKs of the transfer prove it).
   */
  scriptFor(mac: string, remoteIp: string, countStep = true): BootScript {
    const gen = this.current();
    const name = gen?.byMac.get(mac);
    const rendered = name ? gen?.hosts.get(name) : undefined;
    const host = name ? gen?.lab.hosts.get(name) : undefined;
    if (!gen || !name || !rendered || !host) {
      const inventory = gen && !name ? this.extras.discovery?.scriptFor(mac, remoteIp, gen) : null;
      if (inventory) return { script: inventory.script, answer: inventory.answer, ...(inventory.refused ? { refused: inventory.refused } : {}) };
      return { script: exitScript(`no host is declared with MAC ${mac}`), answer: 'unknown' };
    }
    const state = this.tracker.get(name);
    const answer = bootAnswer(rendered.desired, state);
    if (answer === 'disk') {
      if (state.phase === 'Provisioning') this.extras.converge?.diskAnswered(host);
      return { script: diskScript(name, rendered.desired.role, host.hardware.firmware), host: name, answer };
    }
    if (answer === 'exit') return { script: exitScript(`${name} is declared off (role ${rendered.desired.role})`), host: name, answer };
    if (remoteIp !== host.ip) {
      return {
        script: exitScript(`the boot script of ${name} is served only to its reserved address ${host.ip}, not to ${remoteIp}`),
        host: name,
        answer: 'refused',
        refused: `asked from ${remoteIp}, not from the host's reserved address ${host.ip}: refused, not counted as a step`,
      };
    }
    const script = answer === 'wipe'
      ? (rendered.wipeScript ?? exitScript(`no wipe role rendered for ${name}`))
      : (rendered.script ?? exitScript(`nothing to boot for ${name}`));
    const filled = fillCredentialSlots(fillTokenSlot(script, this.tokenOf(name, state)), (n) => this.extras.credential?.(n));
    if ('missing' in filled) {
      const reason = `credential "${filled.missing}" of its kernel line is not held by the agent`;
      return { script: exitScript(`${name}: ${reason}`), host: name, answer: 'refused', refused: reason };
    }
    if (countStep) this.step(name, 'script');
    if (answer === 'chain') this.extras.converge?.menuServed(host);
    else this.extras.converge?.scriptServed(host);
    return { script: filled.text, host: name, answer, ownScript: true };
  }

  /**
   * Files generated from the current generation for TFTP, by the name asked for: `boot.ipxe`, the entry script (for
   * a DHCP server that hands iPXE a TFTP file name), and `autoexec.ipxe`, which ipxe.efi fetches from the TFTP
   * server it was loaded from before anything else: the asking host's own script, the host found by its address
   * (its reservation); an address no host has gets the entry script, which finds the host by MAC. null: not a
   * generated name, so the TFTP root answers. `scriptOf`: the host whose own script this is; it counts as that
   * host's `script` step only once the transfer completed (`scriptDelivered`), since a TFTP request's source
   * address can be forged and only the client's ACKs prove it.
   */
  tftpFile(name: string, remoteIp: string): { content: string; host?: string; scriptOf?: string } | null {
    if (name === 'boot.ipxe') return { content: this.entryScript() };
    if (name !== 'autoexec.ipxe') return null;
    const host = this.hostAt(remoteIp);
    const mac = host?.macs[0];
    if (!host || !mac) return { content: autoexecScript(this.entryScript()) };
    const answer = this.scriptFor(mac, remoteIp, false);
    return { content: autoexecScript(answer.script), host: host.name, ...(answer.ownScript ? { scriptOf: host.name } : {}) };
  }

  /** A host's own script went out over TFTP and the client acknowledged all of it: its `script` step. */
  scriptDelivered(host: string): void {
    this.step(host, 'script');
  }

  imagePath(sha256: string, remoteIp: string): string | null {
    const gen = this.current();
    if (!gen) return null;
    let known = false;
    for (const image of gen.lab.images.values()) {
      if (image.kernel.sha256 === sha256 || image.initrds.some((f) => f.sha256 === sha256)) known = true;
    }
    if (!known) return null;
    const step = this.imageStep(sha256, remoteIp);
    if (step) this.step(step.host, step.step);
    else this.log.info({ remote: remoteIp, sha256 }, 'image file served; not a provisioning step of the host at this address');
    return this.images.pathOf(sha256);
  }

  /**
   * A host's config (a Talos machine config with its PKI, cloud-init with a join token): with the token of its
   * current attempt, from its reserved address, the only address its script (and so the token) was served to.
   */
  config(hostName: string, name: string, token: string, remoteIp: string): SecretFileAnswer {
    const rendered = this.current()?.hosts.get(hostName);
    if (!rendered?.config || rendered.config.name !== name) return { status: 'missing' };
    const access = this.secretAccess(hostName, token, remoteIp);
    if (access.status !== 'ok') return access;
    return { status: 'ok', content: fillTokenSlot(rendered.config.content, access.token) };
  }

  /**
   * cloud-init's NoCloud seed (`ds=nocloud-net;s=<base>/`) of a host whose config is named `user-data`: that config,
   * `meta-data` naming the instance (a new attempt is a new instance, so cloud-init runs as on a first boot), and an
   * empty `vendor-data` (cloud-init's datasources/nocloud.rst). Served like the config: with the attempt's token (in
   * the path, as cloud-init appends the file names to the seed URL), to the host's reserved address only.
   */
  nocloud(hostName: string, file: string, token: string, remoteIp: string): SecretFileAnswer {
    if (file === 'user-data') return this.config(hostName, 'user-data', token, remoteIp);
    if (file !== 'meta-data' && file !== 'vendor-data') return { status: 'missing' };
    if (this.current()?.hosts.get(hostName)?.config?.name !== 'user-data') return { status: 'missing' };
    const access = this.secretAccess(hostName, token, remoteIp);
    if (access.status !== 'ok') return access;
    if (file === 'vendor-data') return { status: 'ok', content: '' };
    const instance = createHash('sha256').update(access.token).digest('hex').slice(0, 16);
    return { status: 'ok', content: `instance-id: forseti-${hostName}-${instance}\nlocal-hostname: ${hostName}\n` };
  }

  /** Whether a secret file of the host may go to this request: the attempt's token, from the host's reserved address. */
  private secretAccess(hostName: string, token: string, remoteIp: string): { status: 'ok'; token: string } | { status: 'forbidden'; reason: string } {
    const expected = this.tokenOf(hostName, this.tracker.get(hostName));
    if (expected === '') return { status: 'forbidden', reason: 'no provisioning attempt has given this host a token' };
    if (!tokenMatches(expected, token)) return { status: 'forbidden', reason: 'wrong token' };
    const ip = this.current()?.lab.hosts.get(hostName)?.ip;
    if (remoteIp !== ip) return { status: 'forbidden', reason: `asked from ${remoteIp}, not from the host's address ${ip ?? '(none)'}` };
    return { status: 'ok', token: expected };
  }

  /**
   * Counts only when it comes from a host's reserved address with the token of that host's provisioning (or wipe)
   * under way, for the role being installed and one of the host's MACs. Anything else changes nothing: 403 and
   * one warn line with the reason. The token dies with its attempt, so a replay after convergence changes nothing.
   */
  phoneHome(token: string, fields: Record<string, string>, remoteIp: string): { status: number; message: string } {
    const gen = this.current();
    const host = this.hostAt(remoteIp);
    const role = fields['role'] ?? '';
    const mac = fields['mac'];
    const refuse = (reason: string): { status: number; message: string } => {
      this.log.warn({ remote: remoteIp, host: host?.name, role: clip(role), mac: mac === undefined ? undefined : clip(mac), reason }, 'phone-home refused; nothing changes');
      return { status: 403, message: `refused: ${reason}` };
    };
    if (!gen || !host) return refuse(`${remoteIp} is no host's reserved address`);
    const state = this.tracker.get(host.name);
    const expected = this.tokenOf(host.name, state);
    if (expected === '' || !tokenMatches(expected, token)) return refuse(`not the token of ${host.name}'s provisioning attempt`);
    if (state.phase !== 'Provisioning' && state.phase !== 'Wiping') return refuse(`no provisioning of ${host.name} is under way (${state.phase}); its token ended with it`);
    if (mac !== undefined && !host.macs.includes(mac.toLowerCase().replace(/-/g, ':'))) return refuse(`MAC ${clip(mac)} is not one of ${host.name}'s`);
    const wanted = state.phase === 'Wiping' ? gen.lab.site.wipe.profile : (state.attemptRole ?? '');
    if (role !== wanted && !(state.phase === 'Wiping' && role === '')) return refuse(`role ${clip(role) || '(none)'} is not the role being installed, ${wanted}`);
    this.log.info({ host: host.name, role, mac, remote: remoteIp }, 'phone-home');
    this.extras.sightings?.phoneHome(host.name, role);
    const spec = this.extras.converge?.specNow(host, state);
    if (spec && !isDefaultConverge(spec)) {
      // The role converges on its declared signals: the phone-home is one of them, or only a sighting.
      this.extras.converge?.phoneHome(host);
      return { status: 200, message: `ok ${host.name}` };
    }
    void this.tracker.record(host.name, { kind: 'phone-home', role }).catch((err: unknown) => this.log.error({ err, host: host.name }, 'cannot record phone-home'));
    return { status: 200, message: `ok ${host.name}` };
  }

  /** An unknown machine's inventory report (discovery); 404 when the agent does not discover. */
  inventory(mac: string, token: string, body: Uint8Array, remoteIp: string): Promise<DiscoveryAnswer> {
    if (!this.extras.discovery) return Promise.resolve({ status: 404, message: 'discovery is not enabled' });
    return this.extras.discovery.receive(mac, token, body, remoteIp, this.current());
  }

  /**
   * An installer progress report (curtin, subiquity, cloud-init webhooks) POSTed to /v1/report/<token>[/target]:
   * these clients send no headers of their own, so the attempt's token is in the path. Counts only from the host's
   * reserved address with the token of its provisioning or wipe under way (the wipe image reports each disk);
   * anything else is refused and changes nothing.
   */
  installerReport(token: string, target: boolean, body: string, remoteIp: string): { status: number; message: string } {
    const host = this.hostAt(remoteIp);
    const refuse = (reason: string): { status: number; message: string } => {
      this.log.warn({ remote: remoteIp, host: host?.name, reason }, 'installer report refused; nothing changes');
      return { status: 403, message: `refused: ${reason}` };
    };
    if (!host || !this.extras.converge) return refuse(`${remoteIp} is no host's reserved address`);
    const state = this.tracker.get(host.name);
    const expected = this.tokenOf(host.name, state);
    if (expected === '' || !tokenMatches(expected, token)) return refuse(`not the token of ${host.name}'s provisioning attempt`);
    if (state.phase !== 'Provisioning' && state.phase !== 'Wiping') return refuse(`no provisioning or wipe of ${host.name} is under way (${state.phase}); its token ended with it`);
    return this.extras.converge.installerReport(host, body, target);
  }

  statusJson(): unknown {
    const gen = this.current();
    return {
      revision: gen?.revision ?? null,
      generation: gen?.id ?? null,
      hosts: Object.fromEntries([...(gen?.hosts.keys() ?? [])].map((h) => [h, { role: gen?.hosts.get(h)?.desired.role, ...withoutNonce(this.tracker.get(h)) }])),
    };
  }

  /** A machine was seen by DHCP or TFTP. */
  seen(mac: string, step: ProvisionStep): void {
    const name = this.current()?.byMac.get(mac);
    if (!name) return;
    if (step === 'dhcp') this.extras.sightings?.dhcp(name);
    this.step(name, step);
  }

  /** Every DHCP request (answered or not) with its firmware markers: the dhcpAfterInstall signal's input. */
  dhcpRequest(mac: string, markers: { vendorClass?: string; userClass: string }): void {
    const gen = this.current();
    const name = gen?.byMac.get(mac);
    const host = name ? gen?.lab.hosts.get(name) : undefined;
    if (host) this.extras.converge?.dhcp(host, markers);
  }

  /** A host's reserved address: the HTTP server's cap of connections in all does not apply to it. */
  isHostAddress(ip: string): boolean {
    return this.hostAt(ip) !== undefined;
  }

  /** The host whose reserved address this is, in the current generation. */
  private hostAt(ip: string): Host | undefined {
    const gen = this.current();
    return gen ? [...gen.lab.hosts.values()].find((h) => h.ip === ip) : undefined;
  }

  /** The step an image file fetch is: a file of the image the host at this address boots now. */
  private imageStep(sha256: string, remoteIp: string): { host: string; step: 'kernel' | 'initrd' } | null {
    const gen = this.current();
    const host = this.hostAt(remoteIp);
    if (!gen || !host) return null;
    const role = this.tracker.get(host.name).phase === 'Wiping' ? gen.lab.site.wipe.profile : host.role;
    const profile = gen.lab.profiles.get(role);
    const image = profile?.boot.kind === 'image' ? gen.lab.images.get(profile.boot.image) : undefined;
    if (image?.kernel.sha256 === sha256) return { host: host.name, step: 'kernel' };
    if (image?.initrds.some((f) => f.sha256 === sha256)) return { host: host.name, step: 'initrd' };
    return null;
  }

  /** The token of the host's current (or last) attempt; '' before its first. */
  private tokenOf(host: string, state: ObservedHost): string {
    return state.attemptNonce ? attemptToken(this.agentKey, host, state.attemptNonce) : '';
  }

  private step(host: string, step: ProvisionStep): void {
    void this.tracker.record(host, { kind: 'step', step }).catch((err: unknown) => this.log.error({ err, host }, 'cannot record step'));
  }
}

function isDefaultConverge(spec: { mode: string; signals: ReadonlyArray<{ kind: string }> }): boolean {
  return spec.signals.length === 1 && spec.signals[0]?.kind === DEFAULT_CONVERGE.signals[0]?.kind;
}

/** The observed state without the attempt nonce, which stays inside the agent. */
function withoutNonce(state: ObservedHost): Omit<ObservedHost, 'attemptNonce'> {
  const { attemptNonce: _nonce, ...rest } = state;
  return rest;
}

/** A field a client sent, short enough for a log line and a reply. */
function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}
