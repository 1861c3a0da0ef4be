// The agent's collaborators, built once at start in the order they need each other; each lives in the folder its
// name says. What they need of the agent itself (the generation it serves, its health, a poll) comes in as hooks.
import { join } from 'node:path';
import { AgentAlerts } from '../alerts/agent-alerts.ts';
import type { BmcDriver } from '../bmc/driver.ts';
import { Executor } from '../bmc/executor.ts';
import type { Logger } from '../log.ts';
import { DriftLoop } from '../observe/drift-loop.ts';
import type { HostSightings } from '../observe/drift-sightings.ts';
import { HostTracker } from '../observe/host-tracker.ts';
import { Journal } from '../observe/journal.ts';
import type { Metrics } from '../observe/metrics.ts';
import { MIN_SUBSTRING_SECRET_LENGTH, type Redactor } from '../redact/redactor.ts';
import { GenerationWriter, type Generation } from '../render/generation.ts';
import { ImageCache } from '../render/image-cache.ts';
import { TOKEN_SLOT } from '../render/token.ts';
import { loadAgentKey } from '../secrets/agent-key.ts';
import { DEFAULT_LAB_LIMITS } from '../model/lab-limits.ts';
import { Secrets } from '../secrets/secrets.ts';
import { AgentConfigError, type AgentConfig } from './config.ts';
import { ownCredentialProblem, reservedCredentials } from './credential-check.ts';
import { AgentBootBackend } from '../serve/boot-backend.ts';
import { BootServices } from '../serve/boot-services.ts';
import { ConvergeSignals } from '../serve/converge-signals.ts';
import type { RecentEvents } from '../serve/dashboard/recent-events.ts';
import { createWebhookRoute, handleWebhook } from '../source/webhook.ts';
import { GitSource } from '../source/index.ts';
import { StatusWriter } from '../status/index.ts';
import { StatusPublisher } from '../status/status-publisher.ts';
import { AgentDiscovery } from '../discover/agent-discovery.ts';
import { forgeConfigOf } from '../discover/forge-settings.ts';
import { createForgeClient } from '../source/forge/index.ts';

/** What the agent made before start (nothing of it needs the disk). */
export interface AgentOwnParts {
  metrics: Metrics;
  events: RecentEvents;
  sightings: HostSightings;
  redactor: Redactor;
}

/** What the collaborators ask of the agent. */
export interface AgentHooks {
  /** The generation served now. */
  current(): Generation | null;
  /** A credential's password: the agent's secrets plus the served commit's SOPS file. */
  labSecret(name: string): string;
  driverFor(host: string): BmcDriver;
  /** A provisioning or wipe of `host` started: its new token is a secret from now on. */
  attemptStarted(host: string): void;
  /** Why the agent is wedged, or null. */
  health(): string | null;
  /** Fetch the lab branch now (a push webhook). */
  poll(): void;
}

export interface AgentParts {
  agentKey: Buffer;
  secrets: Secrets;
  images: ImageCache;
  generations: GenerationWriter;
  tracker: HostTracker;
  source: GitSource;
  statusWriter: StatusWriter;
  status: StatusPublisher;
  alerts: AgentAlerts;
  executor: Executor;
  drift: DriftLoop;
  backend: AgentBootBackend;
  services: BootServices;
  discovery: AgentDiscovery;
  converge: ConvergeSignals;
}

export async function assembleAgent(config: AgentConfig, log: Logger, own: AgentOwnParts, hooks: AgentHooks): Promise<AgentParts> {
  const { stateDir } = config;
  const { metrics, events, sightings, redactor } = own;
  const redactDeep = <T>(value: T): T => redactor.redactDeep(value);
  const agentKey = await loadAgentKey(stateDir);
  const generations = new GenerationWriter(stateDir, () => TOKEN_SLOT, {
    onPruneError: (err) => log.warn({ err }, 'old generations could not be removed; retried at the next commit'),
  });
  const secrets = await Secrets.load(config.secretsFile, process.env, config.ageKeyFile ? { ageKeyFile: config.ageKeyFile } : {});
  redactor.set('agent-secrets', secrets.values());
  const misbound = ownCredentialProblem(config, secrets);
  if (misbound) throw new AgentConfigError(config.secretsFile ?? 'FORSETI_CREDENTIAL_*', misbound);
  const unbound = secrets.unbound().filter((name) => !reservedCredentials(config).has(name));
  if (unbound.length > 0) log.warn({ credentials: unbound }, 'these credentials say no use: a commit that names one is rejected (README, "Credentials and where they may go")');
  const short = redactor.shortSecrets('agent-secrets').length;
  if (short > 0) log.warn({ count: short, minLength: MIN_SUBSTRING_SECRET_LENGTH }, 'some secrets are too short to be redacted inside other text; only whole values equal to them are');
  const images = new ImageCache(join(stateDir, 'images'), log, config.images);
  const tracker = new HostTracker(new Journal(join(stateDir, 'journal.json')), log, Date.now);
  await tracker.load();
  await sightings.persistTo(join(stateDir, 'sightings.json'), log);
  const auth = config.lab.credential ? secrets.resolve(config.lab.credential) : undefined;
  const snapshotMaxBytes = (config.lab.limits ?? DEFAULT_LAB_LIMITS).maxLabBytes;
  const source = new GitSource({ url: config.lab.url, branch: config.lab.branch, dir: join(stateDir, 'lab'), log, snapshotMaxBytes, ...(auth ? { auth } : {}) });
  const statusWriter = new StatusWriter({
    url: config.lab.url,
    branch: config.status.branch,
    dir: join(stateDir, 'status'),
    author: config.status.author,
    log,
    batchMs: config.status.batchSeconds * 1000,
    onPush: (result) => metrics.countStatusPush(result),
    ...(auth ? { auth } : {}),
  });
  const alerts = new AgentAlerts(stateDir, hooks.labSecret, log, redactDeep);
  const forge = config.discovery?.forge;
  // The forge and its token are the operator's (agent.yaml, the agent's secrets): never the lab's.
  const forgeConfig = forge ? forgeConfigOf(forge, secrets) : undefined;
  const discovery = new AgentDiscovery({
    dir: join(stateDir, 'discovery'),
    agentKey,
    lab: { url: config.lab.url, branch: config.lab.branch, ...(auth ? { auth } : {}) },
    author: config.status.author,
    ...(forge && forgeConfig ? { forge: { client: createForgeClient(forgeConfig), labels: forge.labels } } : {}),
    leasedTo: (mac) => services.poolAddressesOf(mac),
    log,
  });
  await discovery.start();
  const executor = new Executor(tracker, hooks.driverFor, (h) => hooks.current()?.lab.hosts.get(h)?.hardware.firmware ?? 'bios', log);
  // The drift loop, the status publisher and the boot backend tell each other of changes; none of these calls
  // comes before the first commit is applied, when all three exist.
  const drift: DriftLoop = new DriftLoop(hooks.current, tracker, executor, sightings, hooks.driverFor, alerts, log, {
    driftChanged: (h) => {
      status.refresh(h);
      backend.changed();
    },
    actionStarted: (h, action, revision) => status.actionStarted(h, action, revision),
  });
  const status: StatusPublisher = new StatusPublisher(statusWriter, hooks.current, { drifts: (h) => drift.driftsOf(h), metrics, redact: redactDeep });
  // Registered before the boot backend's own listener: the status document it pushes sees the host's new action.
  tracker.onChange((host, state, event) => {
    if (event.kind === 'provision-started' || event.kind === 'wipe-started') hooks.attemptStarted(host);
    status.host(host, state, event);
    metrics.hostEvent(host, event.kind, state.phase);
    events.host(host, event);
    alerts.hostChanged(host, state, event);
  });
  const converge = new ConvergeSignals(hooks.current, tracker, log);
  const backend: AgentBootBackend = new AgentBootBackend(hooks.current, tracker, images, agentKey, log, {
    converge,
    sightings,
    events,
    site: () => status.site(),
    drifts: (h) => drift.driftsOf(h),
    actions: (h) => status.actionsOf(h),
    health: hooks.health,
    discovery,
    credential: (name) => credentialPassword(hooks, name),
  });
  // Everything the agent holds stays as it happened; what leaves it (log, status branch, API, alerts) is redacted.
  const services = new BootServices(config, backend, hooks.current, log, { metrics, redact: redactDeep, ...webhookRoute(config, secrets, log, hooks) });
  return { agentKey, secrets, images, generations, tracker, source, statusWriter, status, alerts, executor, drift, backend, services, discovery, converge };
}

/** A credential of a host's kernel line (Omni's join token): the agent check bound it to use omni before it was served. */
function credentialPassword(hooks: AgentHooks, name: string): string | undefined {
  try {
    return hooks.labSecret(name);
  } catch {
    return undefined;
  }
}

function webhookRoute(config: AgentConfig, secrets: Secrets, log: Logger, hooks: AgentHooks): { webhook?: { path: string; route: ReturnType<typeof createWebhookRoute> } } {
  const settings = config.webhook;
  if (!settings) return {};
  const secret = secrets.resolve(settings.credential).password;
  const route = createWebhookRoute(
    (req) => {
      const result = handleWebhook(req, { secret, branch: config.lab.branch, log, maxBodyBytes: settings.maxBodyBytes, ...(settings.repository ? { repository: settings.repository } : {}) });
      if (result.push) hooks.poll();
      return result;
    },
    { maxBodyBytes: settings.maxBodyBytes, log },
  );
  return { webhook: { path: settings.path, route } };
}
