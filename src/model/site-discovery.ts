// The `discovery:` section of site.yaml (schemas/site-discovery.schema.json, which schemas/site.schema.json refers
// to as its property `discovery`): defaults applied, and the checks a schema cannot make, each a problem at a dotted
// path under site.yaml (`discovery.namePattern`) that check-site-sections.ts places at file:line:col, as it does for
// `drift` and `alerts`. What the lab may say here is only whether and how unknown machines are inventoried and
// proposed; where a pull request is opened, and with which token, is the operator's (agent.yaml `discovery.forge`):
// a commit never chooses where a credential is sent.
import { NamePatternError, placeholdersOf } from '../core/name-pattern.ts';
import type { SourceRef } from '../core/source-ref.ts';
import { problem } from './problems.ts';
import type { Image, LabProblem, Site } from './types.ts';

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
}

export interface DiscoveryProblem {
  /** Dotted path under site.yaml, `discovery.namePattern`, for the model's refs. */
  path: string;
  code: 'discovery';
  message: string;
}

export const DISCOVERY_PLACEHOLDERS = ['serial', 'model', 'manufacturer', 'mac'] as const;
export const DEFAULT_DISCOVERY: DiscoverySettings = {
  enabled: false,
  afterReport: 'poweroff',
  namePattern: '{serial}',
  fallbackPattern: 'node-{mac}',
  rateLimit: { proposals: 10, intervalSeconds: 3600 },
};
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const CREDENTIAL = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const KNOWN = ['enabled', 'image', 'afterReport', 'namePattern', 'bmcCredential', 'rateLimit'];

type Raw = Record<string, unknown>;

/** site.yaml's `discovery` value with defaults applied, and every problem found. */
export function parseDiscoverySettings(raw: unknown): { settings: DiscoverySettings; problems: DiscoveryProblem[] } {
  const problems: DiscoveryProblem[] = [];
  const bad = (path: string, message: string): void => void problems.push({ path: `discovery${path ? `.${path}` : ''}`, code: 'discovery', message });
  const settings: DiscoverySettings = { ...DEFAULT_DISCOVERY, rateLimit: { ...DEFAULT_DISCOVERY.rateLimit } };
  if (raw === undefined || raw === null) return { settings, problems };
  if (!isObject(raw)) {
    bad('', 'discovery must be a mapping');
    return { settings, problems };
  }
  for (const key of Object.keys(raw)) {
    if (key === 'forge') bad(key, 'discovery.forge is not a lab setting: where pull requests are opened, and with which token, is the agent\'s configuration (agent.yaml discovery.forge), never a commit\'s');
    else if (!KNOWN.includes(key)) bad(key, `${key} is not a discovery setting (known: ${KNOWN.join(', ')})`);
  }
  if (raw['enabled'] !== undefined) {
    if (typeof raw['enabled'] === 'boolean') settings.enabled = raw['enabled'];
    else bad('enabled', 'enabled must be true or false');
  }
  const image = raw['image'];
  if (image !== undefined) {
    if (typeof image !== 'string' || !NAME.test(image)) bad('image', 'image must be the name of an image in images/ (a lower-case DNS label)');
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
  return { settings, problems };
}

/** The image discovery boots must be one of the lab's (one that failed to load is reported where it is). */
export function checkDiscoveryImage(site: Site, images: ReadonlyMap<string, Image>, brokenImages: ReadonlySet<string>): LabProblem[] {
  const name = site.discovery.image;
  if (!site.discovery.enabled || name === undefined || images.has(name) || brokenImages.has(name)) return [];
  const at: SourceRef = site.refs['discovery.image'] ?? site.refs['discovery'] ?? site.refs[''] ?? { file: 'site.yaml', line: 1, col: 1 };
  return [problem(at, 'unknown-image', `no image ${name} in images/: discovery boots the forseti OS image declared there (images/${name}.yaml) in inventory mode`)];
}

function parseRateLimit(raw: unknown, settings: DiscoverySettings, bad: (path: string, message: string) => void): void {
  if (raw === undefined) return;
  if (!isObject(raw)) return bad('rateLimit', 'rateLimit must be a mapping with proposals and intervalSeconds');
  for (const key of Object.keys(raw)) if (key !== 'proposals' && key !== 'intervalSeconds') bad(`rateLimit.${key}`, `rateLimit.${key} is not a discovery setting (known: proposals, intervalSeconds)`);
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

function isObject(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}
