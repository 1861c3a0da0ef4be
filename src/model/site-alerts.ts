// The `alerts:` section of site.yaml: where forseti sends drift, failures, rejected commits and recoveries.
// ALERTS_SCHEMA is schemas/site.schema.json's property `alerts` (test/model-schemas.test.ts holds them equal);
// parseAlertsConfig applies defaults and the checks the schema cannot make. Credentials stay names here: the agent
// resolves them (src/alerts/config.ts).
import { isRecord } from '../core/objects.ts';

export const ALERT_KINDS = ['drift-detected', 'drift-healed', 'provisioning-failed', 'host-converged', 'commit-rejected', 'bmc-unreachable'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export type SinkConfig =
  | {
      type: 'webhook';
      name: string;
      url: string;
      /** Credential whose password is the HMAC key for X-Forseti-Signature. */
      signingCredential?: string;
      events?: AlertKind[];
    }
  | {
      type: 'slack';
      name: string;
      /** Credential whose password is the incoming-webhook URL (the URL is the secret). */
      urlCredential: string;
      events?: AlertKind[];
    }
  | {
      type: 'commit-status';
      name: string;
      /** `https://api.github.com`, `https://gitea.example.lan/api/v1`, `https://ghe.example/api/v3`. */
      api: string;
      /** `owner/name` of the lab repository. */
      repository: string;
      /** Credential whose password is the API token. */
      credential: string;
      /** Status context; hosts get `<context>/<host>`. */
      context: string;
      targetUrl?: string;
      events?: AlertKind[];
    };

export interface AlertsConfig {
  /** The same (host, reason, revision) is not alerted again within this window. */
  dedupSeconds: number;
  retry: { maxAttempts: number; initialSeconds: number; maxSeconds: number };
  sinks: SinkConfig[];
}

const EVENTS_SCHEMA = { type: 'array', items: { enum: [...ALERT_KINDS] }, uniqueItems: true, description: 'Events this sink gets (default: all but host-converged; commit-status: commit-rejected, provisioning-failed, host-converged).' };
const NAME_SCHEMA = { type: 'string', pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' };
const CREDENTIAL_SCHEMA = { type: 'string', minLength: 1, description: 'Name of a credential in the agent\'s secrets; its password is used.' };
const HTTP_URL_SCHEMA = { type: 'string', pattern: '^https?://[^\\s]+$' };

/** JSON Schema (draft-07) of site.yaml's `alerts` property. */
export const ALERTS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  description: 'Where forseti sends drift, failures, rejected commits and recoveries.',
  properties: {
    dedupSeconds: { type: 'integer', minimum: 0, default: 3600, description: 'The same problem (host, reason, revision) is alerted once within this window.' },
    retry: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxAttempts: { type: 'integer', minimum: 1, maximum: 100, default: 8 },
        initialSeconds: { type: 'number', exclusiveMinimum: 0, default: 5 },
        maxSeconds: { type: 'number', exclusiveMinimum: 0, default: 600 },
      },
    },
    sinks: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        required: ['name', 'type'],
        properties: { type: { enum: ['webhook', 'slack', 'commit-status'] } },
        oneOf: [
          {
            additionalProperties: false,
            required: ['url'],
            properties: { name: NAME_SCHEMA, type: { const: 'webhook' }, url: HTTP_URL_SCHEMA, signingCredential: CREDENTIAL_SCHEMA, events: EVENTS_SCHEMA },
          },
          {
            additionalProperties: false,
            required: ['urlCredential'],
            properties: { name: NAME_SCHEMA, type: { const: 'slack' }, urlCredential: CREDENTIAL_SCHEMA, events: EVENTS_SCHEMA },
          },
          {
            additionalProperties: false,
            required: ['repository', 'credential'],
            properties: {
              name: NAME_SCHEMA,
              type: { const: 'commit-status' },
              api: { ...HTTP_URL_SCHEMA, default: 'https://api.github.com', description: 'GitHub: https://api.github.com; Gitea: https://<host>/api/v1' },
              repository: { type: 'string', pattern: '^[^/\\s]+/[^/\\s]+$' },
              credential: CREDENTIAL_SCHEMA,
              context: { type: 'string', minLength: 1, default: 'forseti' },
              targetUrl: HTTP_URL_SCHEMA,
              events: EVENTS_SCHEMA,
            },
          },
        ],
      },
    },
  },
} as const;

export const DEFAULT_ALERTS: AlertsConfig = { dedupSeconds: 3600, retry: { maxAttempts: 8, initialSeconds: 5, maxSeconds: 600 }, sinks: [] };

export interface AlertsProblem {
  /** Dotted path under site.yaml, e.g. `alerts.sinks.1.url`, for the model's refs. */
  path: string;
  code: 'alerts';
  message: string;
}

type Raw = Record<string, unknown>;

/** site.yaml's `alerts` value with defaults applied, and every problem found. */
export function parseAlertsConfig(raw: unknown): { config: AlertsConfig; problems: AlertsProblem[] } {
  const problems: AlertsProblem[] = [];
  const bad = (path: string, message: string): void => void problems.push({ path, code: 'alerts', message });
  const config: AlertsConfig = { ...DEFAULT_ALERTS, retry: { ...DEFAULT_ALERTS.retry }, sinks: [] };
  if (raw === undefined || raw === null) return { config, problems };
  if (!isRecord(raw)) {
    bad('alerts', 'alerts must be a mapping');
    return { config, problems };
  }
  if (raw['dedupSeconds'] !== undefined) {
    if (isInt(raw['dedupSeconds'], 0)) config.dedupSeconds = raw['dedupSeconds'];
    else bad('alerts.dedupSeconds', 'dedupSeconds must be a whole number >= 0');
  }
  const retry = raw['retry'];
  if (retry !== undefined) {
    if (!isRecord(retry)) bad('alerts.retry', 'retry must be a mapping');
    else {
      if (retry['maxAttempts'] !== undefined) {
        if (isInt(retry['maxAttempts'], 1)) config.retry.maxAttempts = retry['maxAttempts'];
        else bad('alerts.retry.maxAttempts', 'maxAttempts must be a whole number >= 1');
      }
      for (const key of ['initialSeconds', 'maxSeconds'] as const) {
        const v = retry[key];
        if (v === undefined) continue;
        if (typeof v === 'number' && v > 0) config.retry[key] = v;
        else bad(`alerts.retry.${key}`, `${key} must be a positive number`);
      }
      if (config.retry.initialSeconds > config.retry.maxSeconds) bad('alerts.retry', 'initialSeconds must not exceed maxSeconds');
    }
  }
  const sinks = raw['sinks'];
  if (sinks !== undefined && !Array.isArray(sinks)) bad('alerts.sinks', 'sinks must be a list');
  const names = new Map<string, number>();
  for (const [i, sink] of (Array.isArray(sinks) ? sinks : []).entries()) {
    const at = `alerts.sinks.${i}`;
    if (!isRecord(sink)) {
      bad(at, 'a sink must be a mapping with name and type');
      continue;
    }
    const parsed = parseSink(sink, at, bad);
    const name = sink['name'];
    if (typeof name === 'string') {
      const earlier = names.get(name);
      if (earlier !== undefined) bad(`${at}.name`, `sink name ${name} is used twice (also alerts.sinks.${earlier})`);
      else names.set(name, i);
    }
    if (parsed) config.sinks.push(parsed);
  }
  return { config, problems };
}

function parseSink(o: Raw, at: string, bad: (path: string, message: string) => void): SinkConfig | null {
  const name = o['name'];
  if (typeof name !== 'string' || !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) {
    bad(`${at}.name`, 'sink name must be a lower-case DNS label');
    return null;
  }
  const events = parseEvents(o['events'], `${at}.events`, bad);
  const str = (key: string, required: boolean, check: (v: string) => string | null = () => null): string | undefined => {
    const v = o[key];
    if (v === undefined) {
      if (required) bad(`${at}.${key}`, `sink ${name} needs ${key}`);
      return undefined;
    }
    const problem = typeof v !== 'string' || v === '' ? `${key} must be a non-empty string` : check(v);
    if (problem) {
      bad(`${at}.${key}`, `sink ${name}: ${problem}`);
      return undefined;
    }
    return v as string;
  };
  const httpUrl = (v: string): string | null => (/^https?:\/\/\S+$/.test(v) ? null : 'must be an http(s) URL');
  const allowed = (keys: string[]): void => {
    for (const key of Object.keys(o)) if (!['name', 'type', 'events', ...keys].includes(key)) bad(`${at}.${key}`, `sink ${name}: unknown setting ${key}`);
  };
  switch (o['type']) {
    case 'webhook': {
      allowed(['url', 'signingCredential']);
      const url = str('url', true, httpUrl);
      const signingCredential = str('signingCredential', false);
      if (url === undefined) return null;
      return { type: 'webhook', name, url, ...(signingCredential !== undefined && { signingCredential }), ...(events && { events }) };
    }
    case 'slack': {
      allowed(['urlCredential']);
      const urlCredential = str('urlCredential', true);
      if (urlCredential === undefined) return null;
      return { type: 'slack', name, urlCredential, ...(events && { events }) };
    }
    case 'commit-status': {
      allowed(['api', 'repository', 'credential', 'context', 'targetUrl']);
      const api = str('api', false, httpUrl) ?? 'https://api.github.com';
      const repository = str('repository', true, (v) => (/^[^/\s]+\/[^/\s]+$/.test(v) ? null : 'repository must be owner/name'));
      const credential = str('credential', true);
      const context = str('context', false) ?? 'forseti';
      const targetUrl = str('targetUrl', false, httpUrl);
      if (repository === undefined || credential === undefined) return null;
      return { type: 'commit-status', name, api, repository, credential, context, ...(targetUrl !== undefined && { targetUrl }), ...(events && { events }) };
    }
    default:
      bad(`${at}.type`, `sink ${name}: type must be webhook, slack or commit-status`);
      return null;
  }
}

function parseEvents(v: unknown, path: string, bad: (path: string, message: string) => void): AlertKind[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) {
    bad(path, 'events must be a list');
    return undefined;
  }
  const events: AlertKind[] = [];
  for (const e of v) {
    if ((ALERT_KINDS as readonly unknown[]).includes(e)) events.push(e as AlertKind);
    else bad(path, `unknown event ${JSON.stringify(e)}; known: ${ALERT_KINDS.join(', ')}`);
  }
  return events;
}


function isInt(v: unknown, min: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min;
}
