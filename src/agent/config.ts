import { readFile } from 'node:fs/promises';
import { resolve, dirname } from 'node:path';
import { parseDocument } from 'yaml';
import type { BmcSettings } from '../bmc/driver-factory.ts';
import type { ServeSettings } from '../serve/boot-services.ts';
import { DEFAULT_BMC_MAX_CONCURRENT } from '../bmc/gate.ts';
import { DEFAULT_MAX_EVENT_STREAMS, DEFAULT_MAX_EVENT_STREAMS_PER_CLIENT } from '../serve/dashboard/status-stream.ts';
import { DEFAULT_HTTP_LIMITS } from '../serve/http/http-server.ts';
import { DEFAULT_CEILING, DEFAULT_DOWNLOAD, DOWNLOAD_KEYS, type DownloadSettings, type ImagePolicy } from '../render/image-limits.ts';
import { httpAllowProblem } from '../render/image-http-allow.ts';
import { labLimits, type LabLimits } from '../model/lab-limits.ts';
import { ipv4ToNumber } from '../model/ipv4.ts';
import type { TftpLimits } from '../serve/tftp/limits.ts';
import { parseWebhookSettings, type WebhookSettings } from '../source/webhook.ts';
import { errorMessage } from '../core/errors.ts';
import { DEFAULT_DHCP_MODES } from './dhcp-policy-check.ts';
import { parseForgeSettings, type DiscoveryForgeSettings } from '../discover/forge-settings.ts';
import { DEFAULT_TALOS_EVENTS_PORT } from '../render/urls.ts';
import type { TalosEventsSettings } from '../serve/converge-signals.ts';

/** The agent's own configuration: where the lab repository is and where the agent keeps its state. */
export interface AgentConfig {
  /** `limits`: what one commit may make the agent read and parse (src/model/lab-limits.ts); default DEFAULT_LAB_LIMITS. */
  lab: { url: string; branch: string; pollSeconds: number; credential?: string; limits?: LabLimits };
  status: { branch: string; batchSeconds: number; author: { name: string; email: string } };
  stateDir: string;
  secretsFile?: string;
  /** The age identity that opens the lab's `secrets.sops.yaml` (else env FORSETI_AGE_KEY_FILE). */
  ageKeyFile?: string;
  serve: ServeSettings;
  /** The loader always sets `maxConcurrent`; other builders of this object may leave it to the default. */
  bmc: BmcSettings;
  reconcileIntervalMs: number;
  /**
   * Image downloads: the directories file:// images may come from, default limits and the ceilings an image's own
   * `download:` may not pass. The loader always sets it; without it no file:// image is read and the defaults hold.
   */
  images?: ImagePolicy;
  /** Push webhooks from GitHub, Gitea or GitLab trigger a fetch at once; polling stays as the safety net. */
  webhook?: WebhookSettings;
  /** Discovery's forge: where pull requests for discovered machines are opened (the operator's, never the lab's). */
  discovery?: { forge?: DiscoveryForgeSettings };
}


export class AgentConfigError extends Error {
  override readonly name = 'AgentConfigError';
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
  }
}

type Raw = Record<string, unknown>;

export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new AgentConfigError(file, `cannot read: ${err.code ?? err.message}`);
  });
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new AgentConfigError(file, doc.errors.map((e) => e.message).join('; '));
  const raw = (doc.toJS() ?? {}) as Raw;
  const base = dirname(resolve(file));
  const section = (name: string): Raw => {
    const v = raw[name];
    if (v === undefined) return {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new AgentConfigError(file, `${name} must be a mapping`);
    return v as Raw;
  };
  const str = (o: Raw, key: string, where: string, fallback?: string): string => {
    const v = o[key] ?? fallback;
    if (typeof v !== 'string' || v === '') throw new AgentConfigError(file, `${where}.${key} must be a non-empty string`);
    return v;
  };
  const num = (o: Raw, key: string, where: string, fallback: number): number => {
    const v = o[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new AgentConfigError(file, `${where}.${key} must be a non-negative number`);
    return v;
  };
  const positiveInt = (o: Raw, key: string, where: string, fallback: number): number => {
    const v = o[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new AgentConfigError(file, `${where}.${key} must be a whole number of at least 1`);
    return v;
  };
  const bool = (o: Raw, key: string, where: string, fallback: boolean): boolean => {
    const v = o[key] ?? fallback;
    if (typeof v !== 'boolean') throw new AgentConfigError(file, `${where}.${key} must be true or false`);
    return v;
  };
  const lab = section('lab');
  const status = section('status');
  const author = (status['author'] ?? {}) as Raw;
  const serve = section('serve');
  const bmc = section('bmc');
  const http = serve['http'] ?? {};
  if (typeof http !== 'object' || http === null || Array.isArray(http)) throw new AgentConfigError(file, 'serve.http must be a mapping');
  const seconds = (key: string, fallbackMs: number): number => positiveInt(http as Raw, key, 'serve.http', fallbackMs / 1000) * 1000;
  const secretsFile = raw['secretsFile'];
  if (secretsFile !== undefined && typeof secretsFile !== 'string') throw new AgentConfigError(file, 'secretsFile must be a path');
  const credential = lab['credential'];
  if (credential !== undefined && typeof credential !== 'string') throw new AgentConfigError(file, 'lab.credential must be a credential name');
  return {
    lab: { url: str(lab, 'url', 'lab'), branch: str(lab, 'branch', 'lab', 'main'), pollSeconds: num(lab, 'pollSeconds', 'lab', 60), ...(credential ? { credential } : {}), limits: limitsOf(file, lab['limits']) },
    status: {
      branch: str(status, 'branch', 'status', 'forseti-status'),
      batchSeconds: num(status, 'batchSeconds', 'status', 2),
      author: { name: str(author, 'name', 'status.author', 'forseti'), email: str(author, 'email', 'status.author', 'forseti@localhost') },
    },
    stateDir: resolve(base, str(raw, 'stateDir', 'config', '/var/lib/forseti')),
    ...(secretsFile ? { secretsFile: resolve(base, secretsFile) } : {}),
    ...(typeof raw['ageKeyFile'] === 'string' ? { ageKeyFile: resolve(base, raw['ageKeyFile']) } : {}),
    serve: {
      bindAddress: str(serve, 'bindAddress', 'serve', '0.0.0.0'),
      dhcp: bool(serve, 'dhcp', 'serve', true),
      ...dhcpPolicy(file, serve),
      ...tftpSettings(file, serve['tftp']),
      talosEvents: talosEventsSettings(file, serve['talosEvents']),
      ipxeDir: resolve(base, str(serve, 'ipxeDir', 'serve', '/usr/lib/ipxe')),
      http: {
        maxConnections: positiveInt(http as Raw, 'maxConnections', 'serve.http', DEFAULT_HTTP_LIMITS.maxConnections),
        maxConnectionsPerClient: positiveInt(http as Raw, 'maxConnectionsPerClient', 'serve.http', DEFAULT_HTTP_LIMITS.maxConnectionsPerClient),
        maxEventStreams: positiveInt(http as Raw, 'maxEventStreams', 'serve.http', DEFAULT_MAX_EVENT_STREAMS),
        maxEventStreamsPerClient: positiveInt(http as Raw, 'maxEventStreamsPerClient', 'serve.http', DEFAULT_MAX_EVENT_STREAMS_PER_CLIENT),
        headersTimeoutMs: seconds('headersTimeoutSeconds', DEFAULT_HTTP_LIMITS.headersTimeoutMs),
        requestTimeoutMs: seconds('requestTimeoutSeconds', DEFAULT_HTTP_LIMITS.requestTimeoutMs),
        idleTimeoutMs: seconds('idleTimeoutSeconds', DEFAULT_HTTP_LIMITS.idleTimeoutMs),
      },
    },
    bmc: {
      minIntervalMs: num(bmc, 'minIntervalMs', 'bmc', 2000),
      timeoutMs: num(bmc, 'timeoutMs', 'bmc', 20000),
      retries: num(bmc, 'retries', 'bmc', 2),
      maxConcurrent: positiveInt(bmc, 'maxConcurrent', 'bmc', DEFAULT_BMC_MAX_CONCURRENT),
    },
    reconcileIntervalMs: num(raw, 'reconcileIntervalMs', 'config', 1000),
    images: imagePolicy(file, base, section('images')),
    ...webhookSettings(file, raw['webhook']),
    ...discoverySettings(file, raw['discovery']),
  };
}

/**
 * `serve.talosEvents: {port}`: where the Talos event sink listens (on serve.bindAddress) when a profile converges on
 * talosEvents; default port 4002. 0 takes an ephemeral port (tests): the rendered kernel line names the real one.
 */
function talosEventsSettings(file: string, raw: unknown): TalosEventsSettings {
  if (raw === undefined) return { port: DEFAULT_TALOS_EVENTS_PORT };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new AgentConfigError(file, 'serve.talosEvents must be a mapping with port');
  for (const key of Object.keys(raw)) if (key !== 'port') throw new AgentConfigError(file, `serve.talosEvents.${key} is not a setting (port)`);
  const port = (raw as Raw)['port'] ?? DEFAULT_TALOS_EVENTS_PORT;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw new AgentConfigError(file, 'serve.talosEvents.port must be a TCP port (0 for any free one)');
  return { port };
}

function limitsOf(file: string, raw: unknown): LabLimits {
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw))) throw new AgentConfigError(file, 'lab.limits must be a mapping');
  try {
    return labLimits((raw ?? {}) as Record<string, unknown>);
  } catch (err) {
    throw new AgentConfigError(file, `lab.limits: ${errorMessage(err)}`);
  }
}

/** `serve.tftp`: true, false, or a mapping of caps (which serves TFTP). */
function tftpSettings(file: string, raw: unknown): { tftp: boolean; tftpLimits?: Partial<TftpLimits> } {
  if (raw === undefined || typeof raw === 'boolean') return { tftp: raw ?? true };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new AgentConfigError(file, 'serve.tftp must be true, false or a mapping of maxTransfers, maxTransfersPerClient');
  const limits: Partial<TftpLimits> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key !== 'maxTransfers' && key !== 'maxTransfersPerClient') throw new AgentConfigError(file, `serve.tftp.${key} is not a setting (maxTransfers, maxTransfersPerClient)`);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new AgentConfigError(file, `serve.tftp.${key} must be a whole number of at least 1`);
    limits[key] = value;
  }
  return { tftp: true, tftpLimits: limits };
}

/**
 * `serve.interface` (the only NIC DHCP is served on), `serve.dhcpModes` (default [proxy]) and `serve.dhcpRelays`
 * (default none): see README, "Security model".
 */
function dhcpPolicy(file: string, serve: Raw): Pick<ServeSettings, 'interface' | 'dhcpModes' | 'dhcpRelays'> {
  const nic = serve['interface'];
  if (nic !== undefined && (typeof nic !== 'string' || !/^[A-Za-z0-9_.:@-]{1,15}$/.test(nic))) throw new AgentConfigError(file, 'serve.interface must be a network interface name (e.g. eno2)');
  const modes = serve['dhcpModes'] ?? DEFAULT_DHCP_MODES;
  if (!Array.isArray(modes) || modes.some((m) => m !== 'full' && m !== 'proxy')) throw new AgentConfigError(file, 'serve.dhcpModes must be a list of full, proxy');
  const relays = serve['dhcpRelays'] ?? [];
  if (!Array.isArray(relays) || relays.some((r) => typeof r !== 'string' || ipv4ToNumber(r) === undefined || r === '0.0.0.0')) {
    throw new AgentConfigError(file, 'serve.dhcpRelays must be a list of IPv4 addresses (each relay\'s giaddr)');
  }
  return { ...(nic !== undefined ? { interface: nic } : {}), dhcpModes: modes as Array<'full' | 'proxy'>, dhcpRelays: relays as string[] };
}

/** `discovery: {forge: {type, api, repository, credential, labels}}`. */
function discoverySettings(file: string, raw: unknown): { discovery?: { forge?: DiscoveryForgeSettings } } {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new AgentConfigError(file, 'discovery must be a mapping (forge)');
  const unknown = Object.keys(raw).filter((k) => k !== 'forge');
  if (unknown.length > 0) throw new AgentConfigError(file, `discovery.${unknown[0]} is not a setting (forge); what discovery does is site.yaml's discovery section`);
  const forgeRaw = (raw as Record<string, unknown>)['forge'];
  if (forgeRaw === undefined) return { discovery: {} };
  const { forge, problems } = parseForgeSettings(forgeRaw);
  if (!forge) throw new AgentConfigError(file, problems.join('; '));
  return { discovery: { forge } };
}

function webhookSettings(file: string, raw: unknown): { webhook?: WebhookSettings } {
  try {
    const webhook = parseWebhookSettings(raw);
    return webhook ? { webhook } : {};
  } catch (err) {
    throw new AgentConfigError(file, errorMessage(err));
  }
}

/**
 * `images:` of the agent config. A ceiling left out is the built-in one, raised to the operator's default where that
 * is higher, so a larger default alone never makes the agent refuse its own setting.
 */
function imagePolicy(file: string, base: string, raw: Raw): ImagePolicy {
  const roots = raw['fileRoots'] ?? [];
  if (!Array.isArray(roots) || roots.some((r) => typeof r !== 'string' || r === '')) throw new AgentConfigError(file, 'images.fileRoots must be a list of directories');
  const settings = (name: 'download' | 'ceiling', fallback: Readonly<DownloadSettings>): DownloadSettings => {
    const v = raw[name] ?? {};
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new AgentConfigError(file, `images.${name} must be a mapping`);
    const out = { ...fallback };
    for (const [key, value] of Object.entries(v)) {
      if (!(DOWNLOAD_KEYS as readonly string[]).includes(key)) throw new AgentConfigError(file, `images.${name}.${key} is not a setting (${DOWNLOAD_KEYS.join(', ')})`);
      if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new AgentConfigError(file, `images.${name}.${key} must be a positive number`);
      out[key as keyof DownloadSettings] = value;
    }
    return out;
  };
  const download = settings('download', DEFAULT_DOWNLOAD);
  const raised = { ...DEFAULT_CEILING };
  for (const key of DOWNLOAD_KEYS) raised[key] = Math.max(DEFAULT_CEILING[key], download[key]);
  const ceiling = settings('ceiling', raised);
  for (const key of DOWNLOAD_KEYS) {
    if (download[key] > ceiling[key]) throw new AgentConfigError(file, `images.download.${key} ${download[key]} is above images.ceiling.${key} ${ceiling[key]}`);
  }
  const httpAllow = raw['httpAllow'] ?? [];
  if (!Array.isArray(httpAllow) || httpAllow.some((e) => typeof e !== 'string')) throw new AgentConfigError(file, 'images.httpAllow must be a list of URL prefixes, host names, addresses or networks');
  const badEntry = (httpAllow as string[]).map(httpAllowProblem).find((p) => p !== null);
  if (badEntry) throw new AgentConfigError(file, `images.httpAllow: ${badEntry}`);
  return { fileRoots: (roots as string[]).map((r) => resolve(base, r)), ...(httpAllow.length > 0 ? { httpAllow: httpAllow as string[] } : {}), download, ceiling };
}
