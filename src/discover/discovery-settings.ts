// The `discovery:` section of site.yaml (schemas/site-discovery.schema.json, to be merged into site.schema.json as
// the property `discovery`): defaults applied, and the checks a schema cannot make, each a problem at a dotted path
// under site.yaml (`discovery.forge.api`) that the model turns into file:line:col as it does for `drift` and
// `alerts` (src/model/check-site-sections.ts). Pure; it imports nothing of the model.
import type { ForgeConfig, ForgeType } from '../source/forge/types.ts';
import { NamePatternError, placeholdersOf } from './name-pattern.ts';

export interface DiscoveryForgeSettings {
  type: ForgeType;
  api: string;
  repository: string;
  /** The credential whose password is the API token. */
  credential: string;
  labels: string[];
}

export interface DiscoverySettings {
  enabled: boolean;
  /** images/<name>.yaml, booted in inventory mode. */
  image?: string;
  afterReport: 'poweroff' | 'stay';
  namePattern: string;
  /** For a machine the pattern has no value for (no serial): always `node-{mac}`. */
  fallbackPattern: string;
  bmcCredential?: string;
  rateLimit: { proposals: number; intervalSeconds: number };
  forge?: DiscoveryForgeSettings;
}

export interface DiscoveryProblem {
  /** Dotted path under site.yaml, `discovery.forge.api`, for the model's refs. */
  path: string;
  code: 'discovery';
  message: string;
}

export interface DiscoveryContext {
  /** The lab's image names: `image` must be one of them. Unknown (undefined): not checked. */
  images?: ReadonlySet<string>;
}

export const DISCOVERY_PLACEHOLDERS = ['serial', 'model', 'manufacturer', 'mac'] as const;
export const DEFAULT_DISCOVERY: DiscoverySettings = {
  enabled: false,
  afterReport: 'poweroff',
  namePattern: '{serial}',
  fallbackPattern: 'node-{mac}',
  rateLimit: { proposals: 10, intervalSeconds: 3600 },
};
const DEFAULT_API: Partial<Record<ForgeType, string>> = { github: 'https://api.github.com', gitlab: 'https://gitlab.com/api/v4' };
const FORGES: readonly ForgeType[] = ['github', 'gitea', 'gitlab'];
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const CREDENTIAL = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/i;

type Raw = Record<string, unknown>;

/** site.yaml's `discovery` value with defaults applied, and every problem found. */
export function parseDiscoverySettings(raw: unknown, context: DiscoveryContext = {}): { settings: DiscoverySettings; problems: DiscoveryProblem[] } {
  const problems: DiscoveryProblem[] = [];
  const bad = (path: string, message: string): void => void problems.push({ path: `discovery${path ? `.${path}` : ''}`, code: 'discovery', message });
  const settings: DiscoverySettings = { ...DEFAULT_DISCOVERY, rateLimit: { ...DEFAULT_DISCOVERY.rateLimit } };
  if (raw === undefined || raw === null) return { settings, problems };
  if (!isObject(raw)) {
    bad('', 'discovery must be a mapping');
    return { settings, problems };
  }
  unknownKeys(raw, ['enabled', 'image', 'afterReport', 'namePattern', 'bmcCredential', 'rateLimit', 'forge'], '', bad);

  if (raw['enabled'] !== undefined) {
    if (typeof raw['enabled'] === 'boolean') settings.enabled = raw['enabled'];
    else bad('enabled', 'enabled must be true or false');
  }
  const image = raw['image'];
  if (image !== undefined) {
    if (typeof image !== 'string' || !NAME.test(image)) bad('image', 'image must be the name of an image in images/ (a lower-case DNS label)');
    else if (context.images && !context.images.has(image)) bad('image', `no image ${image} in images/: discovery boots the forseti OS image declared there (images/${image}.yaml)`);
    else settings.image = image;
  } else if (settings.enabled) bad('image', 'discovery is enabled but names no image: set image to the forseti OS image in images/ that unknown machines boot in inventory mode');
  const after = raw['afterReport'];
  if (after !== undefined) {
    if (after === 'poweroff' || after === 'stay') settings.afterReport = after;
    else bad('afterReport', 'afterReport must be poweroff or stay');
  }
  const pattern = raw['namePattern'];
  if (pattern !== undefined) {
    if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > 100) bad('namePattern', 'namePattern must be a non-empty text of at most 100 characters');
    else {
      try {
        placeholdersOf(pattern, DISCOVERY_PLACEHOLDERS);
        settings.namePattern = pattern;
      } catch (err) {
        if (!(err instanceof NamePatternError)) throw err;
        bad('namePattern', err.message.replace(/^--name-pattern: /, 'namePattern: '));
      }
    }
  }
  const bmcCredential = raw['bmcCredential'];
  if (bmcCredential !== undefined) {
    if (typeof bmcCredential === 'string' && CREDENTIAL.test(bmcCredential)) settings.bmcCredential = bmcCredential;
    else bad('bmcCredential', 'bmcCredential must be the NAME of a credential the agent holds, never the secret itself');
  }
  parseRateLimit(raw['rateLimit'], settings, bad);
  if (raw['forge'] !== undefined) {
    const forge = parseForge(raw['forge'], bad);
    if (forge) settings.forge = forge;
  }
  return { settings, problems };
}

function parseRateLimit(raw: unknown, settings: DiscoverySettings, bad: (path: string, message: string) => void): void {
  if (raw === undefined) return;
  if (!isObject(raw)) return bad('rateLimit', 'rateLimit must be a mapping with proposals and intervalSeconds');
  unknownKeys(raw, ['proposals', 'intervalSeconds'], 'rateLimit', bad);
  const proposals = raw['proposals'];
  if (proposals !== undefined) {
    if (isInt(proposals, 1, 1000)) settings.rateLimit.proposals = proposals;
    else bad('rateLimit.proposals', 'proposals must be a whole number from 1 to 1000');
  }
  const interval = raw['intervalSeconds'];
  if (interval !== undefined) {
    if (isInt(interval, 60, 604_800)) settings.rateLimit.intervalSeconds = interval;
    else bad('rateLimit.intervalSeconds', 'intervalSeconds must be a whole number of seconds from 60 to 604800 (a week)');
  }
}

/** The forge, or undefined when any of it is wrong (then every problem is reported). */
function parseForge(raw: unknown, report: (path: string, message: string) => void): DiscoveryForgeSettings | undefined {
  if (!isObject(raw)) {
    report('forge', 'forge must be a mapping with type, repository and credential');
    return undefined;
  }
  let wrong = 0;
  const bad = (path: string, message: string): void => {
    wrong++;
    report(path, message);
  };
  unknownKeys(raw, ['type', 'api', 'repository', 'credential', 'labels'], 'forge', bad);
  const type = raw['type'];
  if (!FORGES.includes(type as ForgeType)) bad('forge.type', `forge.type must be ${FORGES.join(', ')}${type === undefined ? '' : `, not ${JSON.stringify(type)}`}`);
  const forgeType = type as ForgeType;
  const repository = raw['repository'];
  const segments = forgeType === 'gitlab' ? 'GROUP/PROJECT (the project\'s full path)' : 'OWNER/REPO';
  const repoPattern = forgeType === 'gitlab' ? /^[^/\s]+(\/[^/\s]+)+$/ : /^[^/\s]+\/[^/\s]+$/;
  if (typeof repository !== 'string' || !repoPattern.test(repository)) bad('forge.repository', `forge.repository must be ${segments}`);
  const credential = raw['credential'];
  if (typeof credential !== 'string' || !CREDENTIAL.test(credential)) bad('forge.credential', 'forge.credential must be the NAME of the credential whose password is the API token, never the token itself');
  let api = raw['api'] ?? (FORGES.includes(forgeType) ? DEFAULT_API[forgeType] : undefined);
  if (api === undefined) bad('forge.api', `forge.api is required for ${String(type)}: the API root, https://HOST/api/v1`);
  else {
    const problem = typeof api === 'string' ? apiProblem(api) : 'must be a URL';
    if (problem) bad('forge.api', `forge.api ${problem}`);
    else api = (api as string).replace(/\/+$/, '');
  }
  const labels: string[] = [];
  const rawLabels = raw['labels'] ?? ['discovered'];
  if (!Array.isArray(rawLabels) || rawLabels.length > 10) bad('forge.labels', 'forge.labels must be a list of at most 10 label names');
  else {
    rawLabels.forEach((label: unknown, i) => {
      if (typeof label !== 'string' || label.length === 0 || label.length > 50 || /[,\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(label)) bad(`forge.labels.${i}`, 'a label is a name of 1 to 50 characters without commas or control characters');
      else if (labels.includes(label)) bad(`forge.labels.${i}`, `label ${label} is listed twice`);
      else labels.push(label);
    });
  }
  if (wrong > 0) return undefined;
  return { type: forgeType, api: api as string, repository: repository as string, credential: credential as string, labels };
}

/** Why an API root cannot be used, or undefined: https (http only to this machine), no credentials, query or fragment. */
function apiProblem(api: string): string | undefined {
  let url: URL;
  try {
    url = new URL(api);
  } catch {
    return 'must be a URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an https:// URL';
  if (url.username || url.password || url.search || url.hash || /[?#@]/.test(api)) return 'must not carry credentials, a query or a fragment (the token is a credential: forge.credential)';
  if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) return 'must be https: the token would cross the network in clear (http only to this machine)';
  return undefined;
}

function unknownKeys(raw: Raw, known: readonly string[], at: string, bad: (path: string, message: string) => void): void {
  for (const key of Object.keys(raw)) if (!known.includes(key)) bad(at ? `${at}.${key}` : key, `${at ? `${at}.` : ''}${key} is not a discovery setting (known: ${known.join(', ')})`);
}

function isObject(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/** Resolves credentials by name, as the agent's secrets do (its file, the environment, the lab's SOPS file). */
export interface CredentialResolver {
  resolve(name: string): { password: string };
}

/** The forge client's configuration: the token is the password of the credential `forge.credential` names. */
export function forgeConfigOf(forge: DiscoveryForgeSettings, credentials: CredentialResolver): ForgeConfig {
  return { type: forge.type, api: forge.api, repository: forge.repository, token: credentials.resolve(forge.credential).password };
}
