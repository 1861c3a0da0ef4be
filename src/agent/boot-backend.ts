import type { Logger } from '../log.ts';
import type { Host } from '../model/types.ts';
import { bootAnswer } from '../plan/decide.ts';
import type { ObservedHost, ProvisionStep } from '../plan/types.ts';
import type { Generation } from '../render/generation.ts';
import { autoexecScript, chainEntryScript, diskScript, exitScript } from '../render/ipxe.ts';
import { attemptToken, fillTokenSlot, tokenMatches } from '../render/token.ts';
import type { BootBackend, BootScript } from '../serve/boot-http.ts';
import type { ImageCache } from '../render/image-cache.ts';
import type { HostTracker } from './host-tracker.ts';
import type { HostSightings } from '../observe/drift-sightings.ts';
import type { RecentEvents } from '../serve/dashboard/recent-events.ts';
import type { Drift } from '../observe/drift.ts';
import type { HostAction, ReconcileRecord } from '../status/activity.ts';
import type { StatusView } from '../status/status-view.ts';
import { siteSyncHealth, syncAndHealth, syncHealthInput } from '../status/sync-health.ts';

/** What the status document shows beyond the hosts' phases; all optional so the backend stands alone in tests. */
export interface BackendExtras {
  sightings?: HostSightings;
  events?: RecentEvents;
  site?: () => { revision: string | null; rejected: { revision: string; errors: string[] } | null; reconciles?: ReconcileRecord[] };
  /** The drift measured now: shown one line each, and it decides sync and health with the phase. */
  drifts?: (host: string) => readonly Drift[];
  /** The host's last actions with their timings. */
  actions?: (host: string) => HostAction[];
  /** Why the agent is wedged (a commit apply or a fetch past its bound), or null. */
  health?: () => string | null;
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
   * The status document: per host its phase, sync and health (decided by src/status/sync-health.ts from the
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
      hosts[name] = {
        ...syncAndHealth(syncHealthInput(rendered.desired, state, drifts)),
        role: rendered.desired.role,
        phase: state.phase,
        ...(state.step ? { step: state.step } : {}),
        ...(state.appliedRole ? { appliedRole: state.appliedRole } : {}),
        ...(state.appliedRevision ? { appliedRevision: state.appliedRevision } : {}),
        ...(state.attemptRevision ? { attemptRevision: state.attemptRevision } : {}),
        since: state.since,
        ...(state.lastError ? { lastError: state.lastError } : {}),
        ...(host?.enclosure ? { enclosure: host.enclosure } : {}),
        labels: host?.labels ?? {},
        drift: drifts.map((d) => d.message),
        events: this.extras.events?.forHost(name) ?? [],
        ...(actions.length > 0 ? { actions } : {}),
      };
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
   * carry nothing and go to anyone.
   */
  scriptFor(mac: string, remoteIp: string): BootScript {
    const gen = this.current();
    const name = gen?.byMac.get(mac);
    const rendered = name ? gen?.hosts.get(name) : undefined;
    const host = name ? gen?.lab.hosts.get(name) : undefined;
    if (!gen || !name || !rendered || !host) return { script: exitScript(`no host is declared with MAC ${mac}`), answer: 'unknown' };
    const state = this.tracker.get(name);
    const answer = bootAnswer(rendered.desired, state);
    if (answer === 'disk') return { script: diskScript(name, rendered.desired.role, host.hardware.firmware), host: name, answer };
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
    this.step(name, 'script');
    return { script: fillTokenSlot(script, this.tokenOf(name, state)), host: name, answer };
  }

  /**
   * Files generated from the current generation for TFTP, by the name asked for: `boot.ipxe`, the entry script (for
   * a DHCP server that hands iPXE a TFTP file name), and `autoexec.ipxe`, which ipxe.efi fetches from the TFTP
   * server it was loaded from before anything else: the asking host's own script, the host found by its address
   * (its reservation); an address no host has gets the entry script, which finds the host by MAC. null: not a
   * generated name, so the TFTP root answers.
   */
  tftpFile(name: string, remoteIp: string): { content: string; host?: string } | null {
    if (name === 'boot.ipxe') return { content: this.entryScript() };
    if (name !== 'autoexec.ipxe') return null;
    const host = this.hostAt(remoteIp);
    const mac = host?.macs[0];
    if (!host || !mac) return { content: autoexecScript(this.entryScript()) };
    return { content: autoexecScript(this.scriptFor(mac, remoteIp).script), host: host.name };
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
  config(hostName: string, name: string, token: string, remoteIp: string): { status: 'ok'; content: string } | { status: 'forbidden'; reason: string } | { status: 'missing' } {
    const gen = this.current();
    const rendered = gen?.hosts.get(hostName);
    if (!rendered?.config || rendered.config.name !== name) return { status: 'missing' };
    const expected = this.tokenOf(hostName, this.tracker.get(hostName));
    if (expected === '') return { status: 'forbidden', reason: 'no provisioning attempt has given this host a token' };
    if (!tokenMatches(expected, token)) return { status: 'forbidden', reason: 'wrong token' };
    const ip = gen?.lab.hosts.get(hostName)?.ip;
    if (remoteIp !== ip) return { status: 'forbidden', reason: `asked from ${remoteIp}, not from the host's address ${ip ?? '(none)'}` };
    return { status: 'ok', content: fillTokenSlot(rendered.config.content, expected) };
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
    void this.tracker.record(host.name, { kind: 'phone-home', role }).catch((err: unknown) => this.log.error({ err, host: host.name }, 'cannot record phone-home'));
    return { status: 200, message: `ok ${host.name}` };
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

/** The observed state without the attempt nonce, which stays inside the agent. */
function withoutNonce(state: ObservedHost): Omit<ObservedHost, 'attemptNonce'> {
  const { attemptNonce: _nonce, ...rest } = state;
  return rest;
}

/** A field a client sent, short enough for a log line and a reply. */
function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}
