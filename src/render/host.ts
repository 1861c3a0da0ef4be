import { createHash } from 'node:crypto';
import { capabilitiesOfType } from '../core/capabilities.ts';
import type { Host, ImageFile, Lab, OmniJoin, Profile } from '../model/types.ts';
import { credentialSlot } from './credential-slot.ts';
import type { DesiredHost } from '../core/host-state.ts';
import { imageFileName, type AgentUrls } from './urls.ts';
import { fillTemplate, TemplateError, type TemplateValues } from '../core/template.ts';
import { chainScript, installScript, UnsafeScriptError } from './ipxe.ts';
import { parseCidr, prefixToNetmask } from './net.ts';
import type { SourceRef } from '../core/source-ref.ts';
import type { ConvergeSpec } from '../converge/converge-spec.ts';
import { errorMessage } from '../core/errors.ts';
import { EVENT_SINK_KIND, mergeConfigDocuments, parseConfigDocuments, serializeConfigDocuments, TalosConfigError, type ConfigDocument } from './talos/index.ts';
import { talosRoleConfig, type TalosConfigInputs } from './talos-role-config.ts';
import type { TalosBase } from './talos/base.ts';

export interface RenderedHost {
  desired: DesiredHost;
  /** The iPXE script the host gets when it must (re)install; absent for hosts kept off. */
  script?: string;
  /** The wipe role's script for this host, when the host file carries a wipe token. */
  wipeScript?: string;
  cmdline?: string;
  config?: { name: string; content: string; secret: boolean };
}

export class RenderError extends Error {
  override readonly name = 'RenderError';
  constructor(readonly host: string, readonly ref: SourceRef | undefined, message: string) {
    super(`${ref ? `${ref.file}:${ref.line}:${ref.col}: ` : ''}host ${host}: ${message}`);
  }
}

export interface RenderContext {
  lab: Lab;
  urls: AgentUrls;
  revision: string;
  token: (host: string) => string;
  /** The roles' Talos bases (`boot.config.talosBase`) by file, decrypted by the agent; a base not here renders as its skeleton. */
  talosBases?: ReadonlyMap<string, TalosBase>;
  /** Output for people (`render`, `plan`): configs with every secret replaced by a placeholder. */
  redactConfigs?: boolean;
}

/** Whether a role's rendering carries the agent's Talos event sink (kernel line and config): it converges on talosEvents. */
export function carriesTalosEventSink(profile: Profile): boolean {
  return profile.converge.signals.some((s) => s.kind === 'talosEvents');
}

/** Renders everything one host needs at boot. Pure: same lab, same key, same output. */
export function renderHost(host: Host, ctx: RenderContext): RenderedHost {
  const rendered = renderRole(host, host.role, ctx);
  if (host.wipe === undefined) return rendered;
  const wipe = renderRole({ ...host, role: ctx.lab.site.wipe.profile }, ctx.lab.site.wipe.profile, ctx);
  const wipeTimeouts = wipe.desired.convergeTimeouts;
  return { ...rendered, desired: { ...rendered.desired, wipeToken: host.wipe, ...(wipeTimeouts ? { wipeTimeouts } : {}) }, ...(wipe.script ? { wipeScript: wipe.script } : {}) };
}

function renderRole(host: Host, role: string, ctx: RenderContext): RenderedHost {
  const profile = ctx.lab.profiles.get(role);
  if (!profile) throw new RenderError(host.name, host.refs['role'], `unknown role ${role}`);
  const { memoryGiB, cpus, disks } = profile.requires;
  const requires = { ...(memoryGiB !== undefined ? { memoryGiB } : {}), ...(cpus !== undefined ? { cpus } : {}), ...(disks !== undefined ? { disks } : {}) };
  const capabilities = { ...capabilitiesOfType(host.bmc.type) };
  const base = {
    name: host.name,
    role: host.role,
    power: host.power,
    afterInstall: profile.afterInstall,
    revision: ctx.revision,
    requires,
    // A BMC that can read the machine back is enrolled (power state and inventory) before anything else.
    enrollable: capabilities.powerState,
    capabilities,
    ...convergeTimeouts(profile.converge),
  };
  const boot = profile.boot;

  if (boot.kind === 'off') return { desired: { ...base, boot: 'off', digest: digestOf([host.role, 'off']) } };

  if (boot.kind === 'chain') {
    const script = refuseUnsafe(host, profile.refs['boot.chain'], () => chainScript(host.name, host.role, boot.url));
    return { desired: { ...base, boot: 'chain', digest: digestOf([host.role, script]) }, script };
  }

  const image = ctx.lab.images.get(boot.image);
  if (!image) throw new RenderError(host.name, profile.refs['boot.image'], `unknown image ${boot.image}`);
  // Validation refuses URLs whose file name does not decode; should one get here, it is this host's render error.
  const imageFile = (file: ImageFile, field: string): string => {
    try {
      return ctx.urls.imageFile(file);
    } catch (err) {
      if (err instanceof URIError) throw new RenderError(host.name, image.refs[field] ?? image.refs['initrd.url'] ?? image.refs[''], `cannot name the file of ${file.url}: ${err.message}`);
      throw err;
    }
  };
  const imageName = (file: ImageFile, field: string): string => {
    imageFile(file, field);
    return imageFileName(file);
  };
  const token = ctx.token(host.name);
  const site = ctx.lab.site;
  const { prefix } = parseCidr(site.network.subnet);
  const firstInitrd = image.initrds[0];
  const values: TemplateValues = {
    'host.name': host.name,
    'host.ip': host.ip,
    'host.mac': host.macs[0] ?? '',
    'host.role': host.role,
    'host.hostname': site.network.domain ? `${host.name}.${site.network.domain}` : host.name,
    'site.name': site.name,
    'site.gateway': site.network.gateway ?? '',
    'site.dns': site.network.dns.join(','),
    'site.domain': site.network.domain ?? '',
    'site.netmask': prefixToNetmask(prefix),
    'site.prefix': String(prefix),
    'agent.url': ctx.urls.base,
    'image.name': image.name,
    'urls.kernel': imageFile(image.kernel, 'kernel.url'),
    'urls.initrd': firstInitrd ? imageFile(firstInitrd, 'initrds.0.url') : '',
    'urls.config': boot.config ? ctx.urls.config(host, boot.config.name, token) : '',
    'urls.phoneHome': ctx.urls.phoneHome(),
    'urls.report': ctx.urls.installerReports(token),
    'urls.reportTarget': ctx.urls.installerReports(token, true),
    'urls.nocloud': ctx.urls.nocloud(host, token),
    token,
  };
  const fill = (text: string, field: string): string => {
    try {
      return fillTemplate(text, values);
    } catch (err) {
      if (err instanceof TemplateError) throw new RenderError(host.name, profile.refs[field], err.message);
      throw err;
    }
  };
  const talos = carriesTalosEventSink(profile);
  // Talos' event sink on the PXE line, and a PXE boot that finds Talos installed halts instead of installing again
  // (talos.halt_if_installed, Talos 1.8+). Kernel arguments do not survive the install: the config carries the sink too.
  const talosArgs = talos ? ` talos.events.sink=${ctx.urls.talosEventSink} talos.halt_if_installed=1` : '';
  if (boot.omni && talos) throw new RenderError(host.name, profile.refs['boot.omni'], 'an Omni-managed role publishes its events to Omni (omni.eventSink), not to forseti: converge it on tcpProbe or dhcpAfterInstall, not talosEvents');
  const cmdline = `${fill(boot.cmdline, 'boot.cmdline').trim()}${talosArgs}${boot.omni ? omniKernelArgs(boot.omni) : ''} forseti.callback=${ctx.urls.phoneHome()} forseti.token=${token}`;
  const filled = boot.config ? fill(boot.config.template, 'boot.config.template') : undefined;
  const talosInputs: TalosConfigInputs = { host, profile, ctx, hostname: values['host.hostname'] ?? host.name, prefix, eventSink: talos ? ctx.urls.talosEventSink : undefined };
  const served = boot.config && filled !== undefined
    ? boot.config.talosBase !== undefined
      ? { name: boot.config.name, ...talosConfigOrFail(talosInputs, boot.config.talosBase.file, filled), secret: true }
      : { name: boot.config.name, text: talos ? withEventSink(host, profile.refs['boot.config'], filled, ctx.urls.talosEventSink) : filled, secret: boot.config.secret }
    : undefined;
  const config = served && { name: served.name, content: ctx.redactConfigs && 'redacted' in served ? served.redacted : served.text, secret: served.secret };
  const initrds = image.initrds.map((f, i) => ({ url: imageFile(f, `initrds.${i}.url`), name: imageName(f, `initrds.${i}.url`) }));
  const script = refuseUnsafe(host, profile.refs['boot.cmdline'], () => installScript({ host: host.name, role: host.role, kernelUrl: imageFile(image.kernel, 'kernel.url'), initrds, cmdline }));
  const digest = digestOf([host.role, script, served?.name ?? '', served?.text ?? '']);
  return { desired: { ...base, boot: 'image', digest }, script, cmdline, ...(config ? { config } : {}) };
}

/**
 * Omni's join parameters as its "Copy Kernel Parameters" gives them: `siderolink.api=<api>?jointoken=<token>`,
 * `talos.events.sink=` and `talos.logging.kernel=` (Omni's own, over SideroLink). The token is a slot the boot
 * backend fills for the host's own script only.
 */
function omniKernelArgs(omni: OmniJoin): string {
  const sink = omni.eventSink !== undefined ? ` talos.events.sink=${omni.eventSink}` : '';
  const log = omni.kernelLog !== undefined ? ` talos.logging.kernel=${omni.kernelLog}` : '';
  return ` siderolink.api=${omni.api}?jointoken=${credentialSlot(omni.credential)}${sink}${log}`;
}

/** A script the builders refuse to write (a value would not stay in its place) is this host's render error. */
function refuseUnsafe(host: Host, ref: SourceRef | undefined, build: () => string): string {
  try {
    return build();
  } catch (err) {
    if (err instanceof UnsafeScriptError) throw new RenderError(host.name, ref, err.message);
    throw err;
  }
}

/** A Talos base's config, or this host's render error at the base's line (or the profile's talosBase field). */
function talosConfigOrFail(inputs: TalosConfigInputs, baseFile: string, patchText: string): { text: string; redacted: string } {
  try {
    return talosRoleConfig(inputs, baseFile, patchText);
  } catch (err) {
    if (err instanceof TalosConfigError) throw new RenderError(inputs.host.name, err.ref ?? inputs.profile.refs['boot.config.talosBase'], err.reason);
    throw err;
  }
}

/** The served Talos config with an EventSinkConfig document for the agent's sink, merged by Talos' rules. */
function withEventSink(host: Host, ref: SourceRef | undefined, text: string, endpoint: string): string {
  try {
    const sink: ConfigDocument = { key: EVENT_SINK_KIND, body: { apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint } };
    return serializeConfigDocuments(mergeConfigDocuments(parseConfigDocuments(text), [sink]));
  } catch (err) {
    throw new RenderError(host.name, ref, `converge: talosEvents needs a Talos machine config to add the event sink to: ${errorMessage(err)}`);
  }
}

function convergeTimeouts(spec: ConvergeSpec): Pick<DesiredHost, 'convergeTimeouts'> {
  const { stepTimeoutSeconds: step, provisionTimeoutSeconds: provision } = spec;
  if (step === undefined && provision === undefined) return {};
  return { convergeTimeouts: { ...(step !== undefined ? { stepMs: step * 1000 } : {}), ...(provision !== undefined ? { provisionMs: provision * 1000 } : {}) } };
}

function digestOf(parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${p.length}:${p}`);
  return h.digest('hex').slice(0, 16);
}
