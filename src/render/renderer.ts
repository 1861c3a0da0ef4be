// Renders a lab commit after commit, rendering again only the hosts whose inputs changed. A host's rendering is a
// pure function of its own entity, its role's profile and image, the wipe role's (when it carries a wipe token),
// the site, the agent-side values its rendering reads (the agent's URL; the Talos event sink, whose port is the
// agent config's, for a role that carries it), and its token (fixed per renderer). The loader keeps the same
// objects for unchanged files, so comparing those inputs by identity tells exactly which hosts to render again; a
// lab loaded from scratch simply renders everything.

import type { Host, Image, Lab, Profile } from '../model/types.ts';
import { RenderFailedError } from './render-failed-error.ts';
import { carriesTalosEventSink, renderHost, RenderError, type RenderedHost } from './host.ts';
import { AgentUrls } from './urls.ts';
import type { TalosBase } from './talos/base.ts';

type TalosBases = ReadonlyMap<string, TalosBase>;

function talosBaseOf(profile: Profile | undefined, bases: TalosBases): TalosBase | undefined {
  const file = profile?.boot.kind === 'image' ? profile.boot.config?.talosBase?.file : undefined;
  return file === undefined ? undefined : bases.get(file);
}

export interface RenderResult {
  hosts: Map<string, RenderedHost>;
  /** Boot-NIC and other MACs (lower-case, colon form) to host name. */
  byMac: Map<string, string>;
  /** Hosts rendered by this call (the others were reused). */
  rendered: number;
}

/** A host's rendering and what it depends on besides its token, compared by identity to tell whether it still holds. */
class Entry {
  readonly host: Host;
  private readonly site: Lab['site'];
  /** The agent-side values the rendering read (agentInputs): not from the lab, so compared by value. */
  private readonly agent: string;
  private readonly profile: Profile | undefined;
  private readonly image: Image | undefined;
  private readonly wipe: Profile | undefined;
  private readonly wipeImage: Image | undefined;
  /** The role's Talos base as resolved (decrypted) for this rendering: the committed text alone does not tell. */
  private readonly talosBase: TalosBase | undefined;
  /** `rendered` at the revision of the last call. */
  current: RenderedHost;

  /** `rendered.desired.revision` is that of the call that rendered it. */
  constructor(host: Host, lab: Lab, agentInputs: AgentInputs, talosBases: TalosBases, readonly rendered: RenderedHost) {
    this.host = host;
    this.site = lab.site;
    this.profile = lab.profiles.get(host.role);
    this.image = imageOf(lab, this.profile);
    this.wipe = host.wipe !== undefined ? lab.profiles.get(lab.site.wipe.profile) : undefined;
    this.wipeImage = imageOf(lab, this.wipe);
    this.agent = agentInputs(this.profile, this.wipe);
    this.talosBase = talosBaseOf(this.profile, talosBases);
    this.current = rendered;
  }

  matches(host: Host, lab: Lab, agentInputs: AgentInputs, talosBases: TalosBases): boolean {
    if (host !== this.host || lab.site !== this.site) return false;
    const profile = lab.profiles.get(host.role);
    if (profile !== this.profile || imageOf(lab, profile) !== this.image || talosBaseOf(profile, talosBases) !== this.talosBase) return false;
    if (host.wipe !== undefined) {
      const wipe = lab.profiles.get(lab.site.wipe.profile);
      if (wipe !== this.wipe || imageOf(lab, wipe) !== this.wipeImage) return false;
    }
    return agentInputs(this.profile, this.wipe) === this.agent;
  }
}

export class LabRenderer {
  private readonly cache = new Map<string, Entry>();
  private byMac: Map<string, string> | null = null;
  /** Hosts rendered again or gone since `clearChanges`: what a generation writer must write anew. */
  private readonly pending = new Set<string>();

  /** `token` must be the same function of the host name for the renderer's lifetime (one agent key). */
  constructor(private readonly token: (host: string) => string) {}

  /** Names of the hosts whose artifacts changed (or that are gone) since the last `clearChanges`. */
  get changes(): ReadonlySet<string> {
    return this.pending;
  }

  clearChanges(): void {
    this.pending.clear();
  }

  /** Renders every host of `lab`; throws RenderFailedError naming each host that fails. */
  /** `talosBases`: the roles' Talos bases, decrypted (src/render/talos/base.ts); a base not given renders as its skeleton. */
  render(lab: Lab, revision: string, urls: AgentUrls = new AgentUrls(lab.site), talosBases: TalosBases = new Map()): RenderResult {
    const ctx = { lab, urls, revision, token: this.token, talosBases };
    const inputs = agentInputsOf(urls);
    const hosts = new Map<string, RenderedHost>();
    const errors: RenderError[] = [];
    const renderedNow: Entry[] = [];
    const replaced: Entry[] = [];
    for (const host of lab.hosts.values()) {
      let entry = this.cache.get(host.name);
      if (!entry || !entry.matches(host, lab, inputs, talosBases)) {
        try {
          const rendered = renderHost(host, ctx);
          if (entry) replaced.push(entry);
          entry = new Entry(host, lab, inputs, talosBases, rendered);
          this.cache.set(host.name, entry);
          this.pending.add(host.name);
          renderedNow.push(entry);
        } catch (err) {
          if (err instanceof RenderError) {
            errors.push(err);
            continue;
          }
          throw err;
        }
      } else if (entry.current.desired.revision !== revision) {
        entry.current = { ...entry.rendered, desired: { ...entry.rendered.desired, revision } };
      }
      hosts.set(host.name, entry.current);
    }
    if (errors.length > 0) {
      this.byMac = null; // entries changed without a matching MAC table
      throw new RenderFailedError(errors);
    }
    const gone: Entry[] = [];
    if (this.cache.size > hosts.size) {
      for (const [name, entry] of this.cache) {
        if (hosts.has(name)) continue;
        this.cache.delete(name);
        this.pending.add(name);
        gone.push(entry);
      }
    }
    this.byMac = this.macTable(lab, renderedNow, [...replaced, ...gone]);
    return { hosts, byMac: this.byMac, rendered: renderedNow.length };
  }

  /** The previous table with the changed hosts' MACs taken out and put back (a new Map: a generation never changes). */
  private macTable(lab: Lab, renderedNow: readonly Entry[], old: readonly Entry[]): Map<string, string> {
    if (!this.byMac || renderedNow.length + old.length > lab.hosts.size / 4) {
      const byMac = new Map<string, string>();
      for (const host of lab.hosts.values()) for (const mac of host.macs) byMac.set(mac, host.name);
      return byMac;
    }
    const byMac = new Map(this.byMac);
    for (const { host } of old) for (const mac of host.macs) if (byMac.get(mac) === host.name) byMac.delete(mac);
    for (const { host } of renderedNow) for (const mac of host.macs) byMac.set(mac, host.name);
    return byMac;
  }
}

/** What of AgentUrls the rendering of a host with a role (and a wipe role) reads, as one comparable string. */
type AgentInputs = (profile: Profile | undefined, wipe: Profile | undefined) => string;

/**
 * AgentInputs for `urls`: the URL base (every booting host's URLs), and the Talos event sink only for the roles that
 * carry it, so a new sink port renders those hosts alone again. Made once per render call and kept per pair of
 * roles: 10,000 hosts share a handful, and a string made per host cost ~20 ms of every commit.
 */
function agentInputsOf(urls: AgentUrls): AgentInputs {
  const sink = (p: Profile | undefined): string | null => (p !== undefined && carriesTalosEventSink(p) ? urls.talosEventSink : null);
  const made = new Map<Profile | undefined, Map<Profile | undefined, string>>();
  return (profile, wipe) => {
    let byWipe = made.get(profile);
    if (!byWipe) made.set(profile, (byWipe = new Map()));
    let text = byWipe.get(wipe);
    if (text === undefined) byWipe.set(wipe, (text = JSON.stringify([urls.base, sink(profile), sink(wipe)])));
    return text;
  };
}

function imageOf(lab: Lab, profile: Profile | undefined): Image | undefined {
  return profile?.boot.kind === 'image' ? lab.images.get(profile.boot.image) : undefined;
}

