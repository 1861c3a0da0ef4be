// The agent's check of every credential a commit names against what the operator bound it to (README, "Credentials
// and where they may go"). A commit that would send a credential anywhere its binding does not allow is rejected
// whole, each problem at the file:line:col of the field that names the credential or the destination; nothing of it
// is contacted. `validate` and `plan` in CI hold no secrets and cannot know the bindings: this runs on the agent.
import { commitStatusUrl } from '../alerts/sinks.ts';
import type { FieldRefs, SourceRef } from '../core/source-ref.ts';
import { problem } from '../model/problems.ts';
import type { Host, Lab, LabProblem, Profile } from '../model/types.ts';
import { addressAllowed, urlAllowed, type CredentialBinding, type CredentialUse } from '../secrets/credential-binding.ts';
import type { Secrets } from '../secrets/secrets.ts';
import type { AgentConfig } from './config.ts';

/** The port each BMC type's driver connects to when the host names none (src/bmc/*-driver.ts). */
const BMC_DEFAULT_PORT: Readonly<Record<'ipmi' | 'redfish' | 'hp-oa', number>> = { ipmi: 623, redfish: 443, 'hp-oa': 22 };
const ANY_REVISION = '0'.repeat(40);
const CODE = 'agent-policy';

/** Names the agent config gives the agent's own credentials, with the setting: a commit may name none of them. */
export type ReservedCredentials = ReadonlyMap<string, string>;

/** lab.credential (the Git push token), webhook.credential, discovery.forge.credential: the agent's own, never a commit's to name. */
export function reservedCredentials(config: Pick<AgentConfig, 'lab' | 'webhook' | 'discovery'>): ReservedCredentials {
  const reserved = new Map<string, string>();
  if (config.lab.credential) reserved.set(config.lab.credential, 'lab.credential (its Git credential)');
  if (config.webhook) reserved.set(config.webhook.credential, 'webhook.credential (its push-webhook secret)');
  const forge = config.discovery?.forge;
  if (forge) reserved.set(forge.credential, 'discovery.forge.credential (its forge API token)');
  return reserved;
}

/**
 * The agent's own credentials against their entries, at start: an entry that binds lab.credential (webhook.credential,
 * discovery.forge.credential) to anything but git (webhook, forge) is refused, since a commit may name none of them;
 * a forge token bound to URLs must allow the forge's API. Undefined: fine.
 */
export function ownCredentialProblem(config: Pick<AgentConfig, 'lab' | 'webhook' | 'discovery'>, secrets: Secrets): string | undefined {
  const forge = config.discovery?.forge;
  const own: Array<[string | undefined, CredentialUse, string]> = [
    [config.lab.credential, 'git', 'lab.credential'],
    [config.webhook?.credential, 'webhook', 'webhook.credential'],
    [forge?.credential, 'forge', 'discovery.forge.credential'],
  ];
  for (const [name, use, setting] of own) {
    const binding = name !== undefined ? secrets.origin(name)?.binding : undefined;
    if (!binding) continue;
    if (binding.use.size !== 1 || !binding.use.has(use)) {
      return `credential "${name}" is the agent's ${setting}, but its entry says use: [${[...binding.use].join(', ')}]; it may say use: [${use}] only (a commit may not name it): give other uses an entry of their own`;
    }
    if (use === 'forge' && forge && !urlAllowed(binding.urls, forge.api)) {
      return `credential "${name}" is the agent's ${setting}, but its urls do not allow discovery.forge.api ${forge.api}`;
    }
  }
  return undefined;
}

/** One place a commit names a credential: for what, sent where, declared where. */
interface CredentialUseSite {
  name: string;
  use: CredentialUse;
  ref: SourceRef;
  /** Undefined: no destination to check (the credential is named but never sent). */
  destination?: { ref: SourceRef; describe: string; allowed: (binding: CredentialBinding) => boolean };
}

export function credentialProblems(lab: Lab, secrets: Secrets, reserved: ReservedCredentials): LabProblem[] {
  const problems: LabProblem[] = [];
  const sites = [...[...lab.hosts.values()].flatMap(bmcUse), ...alertUses(lab, secrets), ...[...lab.profiles.values()].flatMap(omniUse)];
  for (const site of sites) {
    const setting = reserved.get(site.name);
    if (setting !== undefined) {
      problems.push(problem(site.ref, CODE, `credential "${site.name}" is the agent's ${setting}: a commit may not name it; give this use an entry of its own in the agent's secrets`));
      continue;
    }
    const origin = secrets.origin(site.name);
    if (!origin) {
      // A join token the agent does not hold would boot its hosts into nothing: refused now rather than at boot.
      if (site.use === 'omni') problems.push(problem(site.ref, CODE, `credential "${site.name}" (Omni's join token) is not in the agent's secrets file, environment or the lab's SOPS file`));
      continue; // else nothing can be sent (the driver or sink reports it missing)
    }
    const { binding } = origin;
    if (!binding) {
      problems.push(problem(site.ref, CODE, `credential "${site.name}" (${origin.source}) ${origin.problem ?? 'says no use'}: nothing a commit names may use it; bind it with use: [${site.use}] and ${site.use === 'bmc' ? 'addresses' : 'urls'} (README, "Credentials and where they may go")`));
      continue;
    }
    if (!binding.use.has(site.use)) {
      problems.push(problem(site.ref, CODE, `credential "${site.name}" may not be used for ${site.use} (its use: ${[...binding.use].join(', ')})`));
      continue;
    }
    const dest = site.destination;
    if (dest && !dest.allowed(binding)) problems.push(problem(dest.ref, CODE, `credential "${site.name}" may not be sent to ${dest.describe}: outside what its entry in the ${origin.source} allows`));
  }
  for (const host of lab.hosts.values()) problems.push(...tlsProblems(host, secrets, reserved));
  return problems;
}

/** The first of `paths` the entity declared, else the entity's document. */
export function fieldRef(refs: FieldRefs, ...paths: string[]): SourceRef {
  for (const p of paths) if (refs[p]) return refs[p];
  return refs[''] ?? { file: '?', line: 1, col: 1 };
}

function sendsCredential(host: Host): host is Host & { bmc: { type: 'ipmi' | 'redfish' | 'hp-oa'; address: string; credential: string } } {
  const { type, address, credential } = host.bmc;
  return (type === 'ipmi' || type === 'redfish' || type === 'hp-oa') && address !== undefined && credential !== undefined;
}

function bmcUse(host: Host): CredentialUseSite[] {
  const { credential } = host.bmc;
  if (credential === undefined) return [];
  const ref = fieldRef(host.refs, 'bmc.credential', 'bmc');
  if (!sendsCredential(host)) return [{ name: credential, use: 'bmc', ref }];
  const { address, type } = host.bmc;
  const port = host.bmc.port ?? BMC_DEFAULT_PORT[type];
  return [{ name: credential, use: 'bmc', ref, destination: { ref: fieldRef(host.refs, 'bmc.address', 'bmc'), describe: `${address} port ${port} (bmc.address of host ${host.name})`, allowed: (b) => addressAllowed(b.addresses, address, port) } }];
}

/** `bmc.tls` from the commit decides whom the password goes to: only for a credential whose operator allowed it. */
function tlsProblems(host: Host, secrets: Secrets, reserved: ReservedCredentials): LabProblem[] {
  const { tls, credential } = host.bmc;
  if (!tls || credential === undefined || !sendsCredential(host) || reserved.has(credential)) return [];
  const binding = secrets.origin(credential)?.binding;
  if (!binding?.use.has('bmc') || binding.allowInsecureTls) return [];
  const field = tls.insecure ? 'insecure' : tls.ca !== undefined ? 'ca' : 'fingerprint';
  return [problem(fieldRef(host.refs, `bmc.tls.${field}`, 'bmc.tls'), CODE, `bmc.tls.${field} of host ${host.name}: how the BMC's certificate is trusted comes from the commit, which credential "${credential}" does not allow (allowInsecureTls: true in its entry)`)];
}

/**
 * `boot.omni.credential`: the token goes on the kernel line of the role's hosts, which hand it to Omni's SideroLink
 * API (`boot.omni.api`): the operator's urls must allow that API, so a commit cannot give another credential's
 * password to a machine, nor point a join token at a server of its own.
 */
function omniUse(profile: Profile): CredentialUseSite[] {
  const omni = profile.boot.kind === 'image' ? profile.boot.omni : undefined;
  if (!omni) return [];
  const ref = fieldRef(profile.refs, 'boot.omni.credential', 'boot.omni');
  return [{ name: omni.credential, use: 'omni', ref, destination: { ref: fieldRef(profile.refs, 'boot.omni.api', 'boot.omni'), describe: `${omni.api} (boot.omni.api of profile ${profile.name})`, allowed: (b) => urlAllowed(b.urls, omni.api) } }];
}

function alertUses(lab: Lab, secrets: Secrets): CredentialUseSite[] {
  const refs = lab.site.refs;
  return lab.site.alerts.sinks.flatMap((sink, i): CredentialUseSite[] => {
    const path = `alerts.sinks.${i}`;
    const site = (name: string, key: string, target: () => string, targetKey: string, what = `${targetKey} of alert sink ${sink.name}`): CredentialUseSite => ({
      name,
      use: 'alerts',
      ref: fieldRef(refs, `${path}.${key}`, path),
      destination: { ref: fieldRef(refs, `${path}.${targetKey}`, path), describe: what, allowed: (b) => urlAllowed(b.urls, target()) },
    });
    switch (sink.type) {
      case 'webhook':
        return sink.signingCredential !== undefined ? [site(sink.signingCredential, 'signingCredential', () => sink.url, 'url')] : [];
      case 'slack': {
        // The password is the URL: the commit chooses only which credential, so a Git token must not become a URL.
        const name = sink.urlCredential;
        return [site(name, 'urlCredential', () => secrets.resolve(name).password, 'urlCredential', `the URL it holds (alert sink ${sink.name})`)];
      }
      case 'commit-status':
        return [site(sink.credential, 'credential', () => commitStatusUrl(sink, ANY_REVISION), 'api')];
    }
  });
}
