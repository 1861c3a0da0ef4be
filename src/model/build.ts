// Turns schema-valid document values into model entities, applying defaults and normalising
// MACs and checksums. Input has passed the JSON Schema, so shapes are trusted here.

import { parseAlertsConfig } from './site-alerts.ts';
import { parseDiscoverySettings } from './site-discovery.ts';
import { parseDriftPolicy, type DriftMode } from './site-drift.ts';
import type { Host, HostDisk, Image, ImageDownload, ImageFile, Profile, OmniJoin, ProfileBoot, ProfileRequirements, Site } from './types.ts';
import type { FieldRefs } from '../core/source-ref.ts';
import { DEFAULT_CONVERGE, parseConvergeSpec, type ConvergeSpec } from '../converge/converge-spec.ts';

// Shapes as the schemas guarantee them (defaults not yet applied).
interface SiteDoc {
  name: string;
  network: { interface: string; subnet: string; gateway?: string; dns?: string[]; domain?: string };
  dhcp?: { mode?: Site['dhcp']['mode']; leaseSeconds?: number; proxyBootFileIn?: Site['dhcp']['proxyBootFileIn']; relays?: string[]; pool?: { start: string; end: string } };
  agent: { address: string; httpPort?: number; tftpPort?: number };
  policies?: { provisionTimeoutSeconds?: number; stepTimeoutSeconds?: number; afterConverged?: 'disk' };
  wipe?: { profile?: string };
  rollout?: Site['rollout'];
  schedules?: Site['schedules'];
  maintenance?: Site['maintenance'];
  drift?: unknown;
  alerts?: unknown;
  discovery?: unknown;
}

interface HostDoc {
  name: string;
  description?: string;
  macs: string[];
  ip: string;
  bmc: Host['bmc'];
  enclosure?: { name: string; bay: number };
  hardware?: { model?: string; cpus?: number; cores?: number; memoryGiB?: number; disks?: HostDisk[]; firmware?: 'bios' | 'uefi'; arch?: 'x86_64' | 'arm64' };
  role: string;
  power?: 'on' | 'off';
  wipe?: string;
  drift?: DriftMode;
  labels?: Record<string, string | number | boolean>;
}

interface ProfileDoc {
  name: string;
  description?: string;
  boot: {
    image?: string;
    cmdline?: string;
    config?: { name: string; template?: string; file?: string; secret?: boolean; talosBase?: string };
    omni?: OmniJoin;
    chain?: string;
    off?: true;
  };
  afterInstall?: 'disk' | 'pxe';
  converge?: unknown;
  requires?: ProfileRequirements;
}

interface ImageDoc {
  name: string;
  kernel: ImageFile;
  initrd?: ImageFile;
  initrds?: ImageFile[];
  download?: ImageDownload;
}

export function normaliseMac(mac: string): string {
  return mac.toLowerCase().replaceAll('-', ':');
}

export function buildSite(value: unknown, refs: FieldRefs): Site {
  const doc = value as SiteDoc;
  const { gateway, domain } = doc.network;
  return {
    name: doc.name,
    network: {
      interface: doc.network.interface,
      subnet: doc.network.subnet,
      ...(gateway !== undefined && { gateway }),
      dns: doc.network.dns ?? [],
      ...(domain !== undefined && { domain }),
    },
    dhcp: {
      mode: doc.dhcp?.mode ?? 'full',
      leaseSeconds: doc.dhcp?.leaseSeconds ?? 3600,
      ...(doc.dhcp?.proxyBootFileIn && { proxyBootFileIn: doc.dhcp.proxyBootFileIn }),
      ...(doc.dhcp?.relays?.length && { relays: [...doc.dhcp.relays] }),
      ...(doc.dhcp?.pool && { pool: { start: doc.dhcp.pool.start, end: doc.dhcp.pool.end } }),
    },
    agent: { address: doc.agent.address, httpPort: doc.agent.httpPort ?? 8080, tftpPort: doc.agent.tftpPort ?? 69 },
    policies: {
      provisionTimeoutSeconds: doc.policies?.provisionTimeoutSeconds ?? 900,
      stepTimeoutSeconds: doc.policies?.stepTimeoutSeconds ?? 300,
      afterConverged: doc.policies?.afterConverged ?? 'disk',
    },
    wipe: { profile: doc.wipe?.profile ?? 'wipe' },
    rollout: { groups: (doc.rollout?.groups ?? []).map((g) => ({ ...g })) },
    schedules: (doc.schedules ?? []).map((s) => ({ ...s })),
    maintenance: { windows: (doc.maintenance?.windows ?? []).map((w) => ({ ...w })) },
    drift: parseDriftPolicy(doc.drift).policy,
    alerts: parseAlertsConfig(doc.alerts).config,
    discovery: parseDiscoverySettings(doc.discovery).settings,
    refs,
  };
}

export function buildHost(value: unknown, refs: FieldRefs): Host {
  const doc = value as HostDoc;
  const hw = doc.hardware ?? {};
  return {
    name: doc.name,
    ...(doc.description !== undefined && { description: doc.description }),
    macs: doc.macs.map(normaliseMac),
    ip: doc.ip,
    bmc: { ...doc.bmc, ...(doc.bmc.tls && { tls: { ...doc.bmc.tls } }) },
    ...(doc.enclosure && { enclosure: { name: doc.enclosure.name, bay: doc.enclosure.bay } }),
    hardware: {
      ...(hw.model !== undefined && { model: hw.model }),
      ...(hw.cpus !== undefined && { cpus: hw.cpus }),
      ...(hw.cores !== undefined && { cores: hw.cores }),
      ...(hw.memoryGiB !== undefined && { memoryGiB: hw.memoryGiB }),
      disks: (hw.disks ?? []).map((d) => ({ ...d })),
      firmware: hw.firmware ?? 'bios',
      arch: hw.arch ?? 'x86_64',
    },
    role: doc.role,
    power: doc.power ?? 'on',
    ...(doc.wipe !== undefined && { wipe: doc.wipe }),
    ...(doc.drift !== undefined && { drift: doc.drift }),
    labels: Object.fromEntries(Object.entries(doc.labels ?? {}).map(([k, v]) => [k, String(v)])),
    refs,
  };
}

/** `readConfigFile` supplies the text of `boot.config.file` (undefined if it could not be read). */
export function buildProfile(value: unknown, refs: FieldRefs, readConfigFile: (path: string) => string | undefined): Profile {
  const doc = value as ProfileDoc;
  return {
    name: doc.name,
    ...(doc.description !== undefined && { description: doc.description }),
    boot: buildBoot(doc.boot, readConfigFile),
    afterInstall: doc.afterInstall ?? 'disk',
    converge: buildConverge(doc.converge),
    requires: { ...doc.requires },
    refs,
  };
}

/** The schema has checked the shape; the parser's own checks (a signal listed twice) are reported by validation. */
function buildConverge(value: unknown): ConvergeSpec {
  if (value === undefined) return { ...DEFAULT_CONVERGE, signals: [...DEFAULT_CONVERGE.signals] };
  const parsed = parseConvergeSpec(value);
  return parsed.ok ? parsed.spec : { ...DEFAULT_CONVERGE, signals: [...DEFAULT_CONVERGE.signals] };
}

function buildBoot(boot: ProfileDoc['boot'], readConfigFile: (path: string) => string | undefined): ProfileBoot {
  if (boot.chain !== undefined) return { kind: 'chain', url: boot.chain };
  if (boot.off) return { kind: 'off' };
  const config = boot.config;
  return {
    kind: 'image',
    image: boot.image ?? '',
    cmdline: boot.cmdline ?? '',
    ...(boot.omni && { omni: { ...boot.omni } }),
    ...(config && {
      config: {
        name: config.name,
        template: config.template ?? (config.file !== undefined ? readConfigFile(config.file) : undefined) ?? '',
        ...(config.file !== undefined && { file: config.file }),
        secret: config.secret ?? true,
        ...(config.talosBase !== undefined && { talosBase: { file: config.talosBase, text: readConfigFile(config.talosBase) ?? '' } }),
      },
    }),
  };
}

export function buildImage(value: unknown, refs: FieldRefs): Image {
  const doc = value as ImageDoc;
  const file = (f: ImageFile): ImageFile => ({ url: f.url, sha256: f.sha256.toLowerCase() });
  return {
    name: doc.name,
    kernel: file(doc.kernel),
    initrds: (doc.initrds ?? (doc.initrd ? [doc.initrd] : [])).map(file),
    ...(doc.download && { download: { ...doc.download } }),
    refs,
  };
}
