import { readFile } from 'node:fs/promises';
import { resolve, dirname } from 'node:path';
import { parseDocument } from 'yaml';
import { DEFAULT_BMC_MAX_CONCURRENT } from '../bmc/gate.ts';
import type { TftpLimits } from '../serve/tftp/limits.ts';
import { parseWebhookSettings, type WebhookSettings } from '../source/webhook.ts';

/** The agent's own configuration: where the lab repository is and where the agent keeps its state. */
export interface AgentConfig {
  lab: { url: string; branch: string; pollSeconds: number; credential?: string };
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
  };
  /**
   * `maxConcurrent`: BMC exchanges in flight at once over all BMCs (src/bmc/gate.ts); the loader always sets it,
   * other builders of this object may leave it to the default.
   */
  bmc: { minIntervalMs: number; timeoutMs: number; retries: number; maxConcurrent?: number };
  reconcileIntervalMs: number;
  /** Push webhooks from GitHub, Gitea or GitLab trigger a fetch at once; polling stays as the safety net. */
  webhook?: WebhookSettings;
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
  const secretsFile = raw['secretsFile'];
  if (secretsFile !== undefined && typeof secretsFile !== 'string') throw new AgentConfigError(file, 'secretsFile must be a path');
  const credential = lab['credential'];
  if (credential !== undefined && typeof credential !== 'string') throw new AgentConfigError(file, 'lab.credential must be a credential name');
  return {
    lab: { url: str(lab, 'url', 'lab'), branch: str(lab, 'branch', 'lab', 'main'), pollSeconds: num(lab, 'pollSeconds', 'lab', 60), ...(credential ? { credential } : {}) },
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
    },
    bmc: {
      minIntervalMs: num(bmc, 'minIntervalMs', 'bmc', 2000),
      timeoutMs: num(bmc, 'timeoutMs', 'bmc', 20000),
      retries: num(bmc, 'retries', 'bmc', 2),
      maxConcurrent: positiveInt(bmc, 'maxConcurrent', 'bmc', DEFAULT_BMC_MAX_CONCURRENT),
    },
    reconcileIntervalMs: num(raw, 'reconcileIntervalMs', 'config', 1000),
    ...webhookSettings(file, raw['webhook']),
  };
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
