import type { Logger } from '../log.ts';
import type { Host } from '../model/types.ts';
import { bootAnswer } from '../plan/decide.ts';
import type { ProvisionStep } from '../plan/types.ts';
import type { Generation } from '../render/generation.ts';
import { autoexecScript, chainEntryScript, diskScript, exitScript } from '../render/ipxe.ts';
import { hostToken, tokenMatches } from '../render/token.ts';
import type { BootBackend } from '../serve/boot-http.ts';
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

  scriptFor(mac: string, _remoteIp: string): { script: string; host?: string; answer: string } {
    const gen = this.current();
    const name = gen?.byMac.get(mac);
    const rendered = name ? gen?.hosts.get(name) : undefined;
    const host = name ? gen?.lab.hosts.get(name) : undefined;
    if (!gen || !name || !rendered || !host) return { script: exitScript(`no host is declared with MAC ${mac}`), answer: 'unknown' };
    const answer = bootAnswer(rendered.desired, this.tracker.get(name));
    switch (answer) {
      case 'install':
      case 'chain':
        this.step(name, 'script');
        return { script: rendered.script ?? exitScript(`nothing to boot for ${name}`), host: name, answer };
      case 'wipe':
        this.step(name, 'script');
        return { script: rendered.wipeScript ?? exitScript(`no wipe role rendered for ${name}`), host: name, answer };
      case 'disk':
        return { script: diskScript(name, rendered.desired.role, host.hardware.firmware), host: name, answer };
      case 'exit':
        return { script: exitScript(`${name} is declared off (role ${rendered.desired.role})`), host: name, answer };
    }
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
    const host = this.hostAt(remoteIp);
    if (host) {
      const role = this.tracker.get(host.name).phase === 'Wiping' ? gen.lab.site.wipe.profile : host.role;
      const profile = gen.lab.profiles.get(role);
      const image = profile?.boot.kind === 'image' ? gen.lab.images.get(profile.boot.image) : undefined;
      if (image?.kernel.sha256 === sha256) this.step(host.name, 'kernel');
      else if (image?.initrds.some((f) => f.sha256 === sha256)) this.step(host.name, 'initrd');
    }
    return this.images.pathOf(sha256);
  }

  /**
   * The token travels on the host's kernel command line, in a script anyone who knows the MAC can fetch, so
   * the token alone does not hand out the config's secrets (a Talos PKI, a join token): the request must also
   * come from the host's own address, its reservation.
   */
  config(hostName: string, name: string, token: string, remoteIp: string): { status: 'ok'; content: string } | { status: 'forbidden'; reason: string } | { status: 'missing' } {
    const gen = this.current();
    const rendered = gen?.hosts.get(hostName);
    if (!rendered?.config || rendered.config.name !== name) return { status: 'missing' };
    if (!tokenMatches(hostToken(this.agentKey, hostName), token)) return { status: 'forbidden', reason: 'wrong token' };
    const ip = gen?.lab.hosts.get(hostName)?.ip;
    if (remoteIp !== ip) return { status: 'forbidden', reason: `asked from ${remoteIp}, not from the host's address ${ip ?? '(none)'}` };
    return { status: 'ok', content: rendered.config.content };
  }

  phoneHome(token: string, fields: Record<string, string>, remoteIp: string): { status: number; message: string } {
    const gen = this.current();
    const name = gen ? [...gen.hosts.keys()].find((h) => tokenMatches(hostToken(this.agentKey, h), token)) : undefined;
    if (!name) {
      this.log.warn({ remote: remoteIp, mac: fields['mac'] }, 'phone-home with an unknown token refused');
      return { status: 403, message: 'unknown token' };
    }
    const role = fields['role'] ?? '';
    this.log.info({ host: name, role, mac: fields['mac'], ip: fields['ip'] ?? remoteIp }, 'phone-home');
    this.extras.sightings?.phoneHome(name, role);
    void this.tracker.record(name, { kind: 'phone-home', role }).catch((err: unknown) => this.log.error({ err, host: name }, 'cannot record phone-home'));
    return { status: 200, message: `ok ${name}` };
  }

  statusJson(): unknown {
    const gen = this.current();
    return {
      revision: gen?.revision ?? null,
      generation: gen?.id ?? null,
      hosts: Object.fromEntries([...(gen?.hosts.keys() ?? [])].map((h) => [h, { role: gen?.hosts.get(h)?.desired.role, ...this.tracker.get(h) }])),
    };
  }

  /** A machine was seen by DHCP or TFTP. */
  seen(mac: string, step: ProvisionStep): void {
    const name = this.current()?.byMac.get(mac);
    if (!name) return;
    if (step === 'dhcp') this.extras.sightings?.dhcp(name);
    this.step(name, step);
  }

  /** The host whose reserved address this is, in the current generation. */
  private hostAt(ip: string): Host | undefined {
    const gen = this.current();
    return gen ? [...gen.lab.hosts.values()].find((h) => h.ip === ip) : undefined;
  }

  private step(host: string, step: ProvisionStep): void {
    void this.tracker.record(host, { kind: 'step', step }).catch((err: unknown) => this.log.error({ err, host }, 'cannot record step'));
  }
}
