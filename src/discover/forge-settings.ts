// agent.yaml `discovery.forge`: where pull requests for discovered machines are opened, and the credential whose
// password is the API token. It is the operator's, never the lab's: a commit that could name the API would choose
// where the token is sent. Problems are returned at a dotted path under agent.yaml (`discovery.forge.api`).
import type { ForgeConfig, ForgeType } from '../source/forge/types.ts';

export interface DiscoveryForgeSettings {
  type: ForgeType;
  api: string;
  repository: string;
  /** The credential (agent secrets) whose password is the API token. */
  credential: string;
  labels: string[];
}

const DEFAULT_API: Partial<Record<ForgeType, string>> = { github: 'https://api.github.com', gitlab: 'https://gitlab.com/api/v4' };
const FORGES: readonly ForgeType[] = ['github', 'gitea', 'gitlab'];
const CREDENTIAL = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/i;
const KNOWN = ['type', 'api', 'repository', 'credential', 'labels'];

/** The forge, or undefined with every problem when any of it is wrong. */
export function parseForgeSettings(raw: unknown): { forge?: DiscoveryForgeSettings; problems: string[] } {
  const problems: string[] = [];
  const bad = (path: string, message: string): void => void problems.push(`discovery.forge${path ? `.${path}` : ''}: ${message}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    bad('', 'must be a mapping with type, repository and credential');
    return { problems };
  }
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!KNOWN.includes(key)) bad(key, `not a forge setting (known: ${KNOWN.join(', ')})`);
  const type = o['type'];
  if (!FORGES.includes(type as ForgeType)) bad('type', `must be ${FORGES.join(', ')}${type === undefined ? '' : `, not ${JSON.stringify(type)}`}`);
  const forgeType = type as ForgeType;
  const repository = o['repository'];
  const repoPattern = forgeType === 'gitlab' ? /^[^/\s]+(\/[^/\s]+)+$/ : /^[^/\s]+\/[^/\s]+$/;
  if (typeof repository !== 'string' || !repoPattern.test(repository)) bad('repository', `must be ${forgeType === 'gitlab' ? 'GROUP/PROJECT (the project\'s full path)' : 'OWNER/REPO'}`);
  const credential = o['credential'];
  if (typeof credential !== 'string' || !CREDENTIAL.test(credential)) bad('credential', 'must be the NAME of the credential whose password is the API token, never the token itself');
  let api = o['api'] ?? (FORGES.includes(forgeType) ? DEFAULT_API[forgeType] : undefined);
  if (api === undefined) bad('api', `is required for ${String(type)}: the API root, https://HOST/api/v1`);
  else {
    const problem = typeof api === 'string' ? apiProblem(api) : 'must be a URL';
    if (problem) bad('api', problem);
    else api = (api as string).replace(/\/+$/, '');
  }
  const labels: string[] = [];
  const rawLabels = o['labels'] ?? ['discovered'];
  if (!Array.isArray(rawLabels) || rawLabels.length > 10) bad('labels', 'must be a list of at most 10 label names');
  else {
    rawLabels.forEach((label: unknown, i) => {
      if (typeof label !== 'string' || label.length === 0 || label.length > 50 || /[,\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(label)) bad(`labels.${i}`, 'a label is a name of 1 to 50 characters without commas or control characters');
      else if (labels.includes(label)) bad(`labels.${i}`, `label ${label} is listed twice`);
      else labels.push(label);
    });
  }
  if (problems.length > 0) return { problems };
  return { forge: { type: forgeType, api: api as string, repository: repository as string, credential: credential as string, labels }, problems };
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
  if (url.username || url.password || url.search || url.hash || /[?#@]/.test(api)) return 'must not carry credentials, a query or a fragment (the token is a credential: discovery.forge.credential)';
  if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) return 'must be https: the token would cross the network in clear (http only to this machine)';
  return undefined;
}

/** Resolves credentials by name, as the agent's secrets do. */
export interface CredentialResolver {
  resolve(name: string): { password: string };
}

/** The forge client's configuration: the token is the password of the credential `forge.credential` names. */
export function forgeConfigOf(forge: DiscoveryForgeSettings, credentials: CredentialResolver): ForgeConfig {
  return { type: forge.type, api: forge.api, repository: forge.repository, token: credentials.resolve(forge.credential).password };
}
