import { readFile } from 'node:fs/promises';
import { resolve, dirname } from 'node:path';
import { parseDocument } from 'yaml';
import { DEFAULT_BMC_MAX_CONCURRENT } from '../bmc/gate.ts';
import { DEFAULT_MAX_EVENT_STREAMS, DEFAULT_MAX_EVENT_STREAMS_PER_CLIENT } from '../serve/dashboard/status-stream.ts';
import { DEFAULT_HTTP_LIMITS } from '../serve/http/http-server.ts';
import { DEFAULT_CEILING, DEFAULT_DOWNLOAD, DOWNLOAD_KEYS, type DownloadSettings, type ImagePolicy } from '../render/image-limits.ts';
import { labLimits, type LabLimits } from '../model/lab-limits.ts';
import type { TftpLimits } from '../serve/tftp/limits.ts';
import { parseWebhookSettings, type WebhookSettings } from '../source/webhook.ts';

/** The agent's own configuration: where the lab repository is and where the agent keeps its state. */
export interface AgentConfig {
  /** `limits`: what one commit may make the agent read and parse (src/model/lab-limits.ts); default DEFAULT_LAB_LIMITS. */
  lab: { url: string; branch: string; pollSeconds: number; credential?: string; limits?: LabLimits };
  status: { branch: string; batchSeconds: number; author: { name: string; email: string } };
  stateDir: string;
  secretsFile?: string;
  /** The age identity that opens the lab's `secrets.sops.yaml` (else env FORSETI_AGE_KEY_FILE). */
  ageKeyFile?: string;
  serve: {
    /** Address the HTTP and TFTP services bind; default all addresses. */
    bindAddress: string;
    dhcp: boolean;
    tftp: boolean;
    /** Caps on concurrent TFTP transfers, from `serve.tftp: {maxTransfers, maxTransfersPerClient}`; unset ones default (serve/tftp/limits.ts). */
    tftpLimits?: Partial<TftpLimits>;
    /** Where the iPXE binaries for non-iPXE firmware are found (Debian's `ipxe` package). */
    ipxeDir: string;
    /** Caps and timeouts of the agent's HTTP server; the loader always sets them, other builders may leave defaults. */
    http?: AgentHttpSettings;
  };
  /**
   * `maxConcurrent`: BMC exchanges in flight at once over all BMCs (src/bmc/gate.ts); the loader always sets it,
   * other builders of this object may leave it to the default.
   */
  bmc: { minIntervalMs: number; timeoutMs: number; retries: number; maxConcurrent?: number };
  reconcileIntervalMs: number;
  /**
   * Image downloads: the directories file:// images may come from, default limits and the ceilings an image's own
   * `download:` may not pass. The loader always sets it; without it no file:// image is read and the defaults hold.
   */
  images?: ImagePolicy;
  /** Push webhooks from GitHub, Gitea or GitLab trigger a fetch at once; polling stays as the safety net. */
  webhook?: WebhookSettings;
}

/** `serve.http` of agent.yaml. */
export interface AgentHttpSettings {
  maxConnections: number;
  maxConnectionsPerClient: number;
  maxEventStreams: number;
  maxEventStreamsPerClient: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
}

export class AgentConfigError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'AgentConfigError';
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
      ...tftpSettings(file, serve['tftp']),
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
  };
}

function limitsOf(file: string, raw: unknown): LabLimits {
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw))) throw new AgentConfigError(file, 'lab.limits must be a mapping');
  try {
    return labLimits((raw ?? {}) as Record<string, unknown>);
  } catch (err) {
    throw new AgentConfigError(file, `lab.limits: ${err instanceof Error ? err.message : String(err)}`);
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

function webhookSettings(file: string, raw: unknown): { webhook?: WebhookSettings } {
  try {
    const webhook = parseWebhookSettings(raw);
    return webhook ? { webhook } : {};
  } catch (err) {
    throw new AgentConfigError(file, err instanceof Error ? err.message : String(err));
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
  return { fileRoots: (roots as string[]).map((r) => resolve(base, r)), download, ceiling };
}
