// `forseti doctor [--config FILE] [--json] [--lab DIR] [--dhcp-wait S | --no-dhcp-probe]`: checks the agent's machine before its first start, one
// line per check, exit 1 on any failure. Nothing is changed: ports are bound and released, BMCs are asked their
// power state only, Git is asked for its refs and the lab branch's newest commit.
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import git, { type HttpClient } from 'isomorphic-git';
import { BmcState } from '../../bmc/bmc-state.ts';
import { createDriver } from '../../bmc/driver-factory.ts';
import { AgentConfigError, loadAgentConfig, type AgentConfig } from '../../agent/config.ts';
import { labSecretPatterns } from '../../agent/lab-secret-patterns.ts';
import { IPXE_BINARIES } from '../../serve/dhcp-policy.ts';
import { Secrets } from '../../secrets/secrets.ts';
import { agentPolicyProblems } from '../../agent/agent-policy.ts';
import { Redactor } from '../../redact/redactor.ts';
import { terminalSafe } from '../../redact/terminal.ts';
import { createLogger } from '../../log.ts';
import { formatProblem, loadLab } from '../../model/load.ts';
import type { Host, Lab } from '../../model/types.ts';
import { authCallbacks, type GitCredentials } from '../../source/auth.ts';
import { httpClientWithTimeout } from '../../source/http-client.ts';
import { redactUrl } from '../../redact/url.ts';
import { flag, parseArgs } from '../args.ts';
import { checkCapabilities, checkClock, checkInterface, checkIpxeBinaries, checkPort, result, type CheckResult, type PortSpec } from './doctor-checks.ts';
import { judgeDhcp, probeDhcp } from './doctor-dhcp.ts';
import { errorMessage } from '../../core/errors.ts';

const DEFAULT_CONFIG = '/etc/forseti/agent.yaml';
/** A BMC gets this long to answer in doctor, whatever the agent's own patience. */
const BMC_TIMEOUT_MS = 10_000;
const GIT_TIMEOUT_MS = 20_000;

export async function doctorCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['json', 'no-dhcp-probe']);
  const configFile = resolve(flag(args, 'config') ?? DEFAULT_CONFIG);
  const json = args.flags.has('json');
  // dnsmasq, for one, pings an address before it offers it: give servers a few seconds.
  const dhcpWaitMs = Number(flag(args, 'dhcp-wait') ?? 5) * 1000;
  const results: CheckResult[] = [];
  // A BMC or a Git server may echo a credential in its error: every result goes through the redactor; and may answer
  // with terminal escape sequences: every line printed has its control characters escaped.
  const redactor = new Redactor();
  const write = (text: string): void => void process.stdout.write(terminalSafe(text));
  const report = (given: CheckResult): void => {
    const r = redactor.redactDeep(given);
    results.push(r);
    if (!json) write(`${r.status.toUpperCase().padEnd(5)} ${r.check}: ${r.message}\n`);
  };
  await runChecks(configFile, flag(args, 'lab'), args.flags.has('no-dhcp-probe') ? 0 : dhcpWaitMs, report, redactor);
  const failed = results.filter((r) => r.status === 'fail').length;
  if (json) write(`${JSON.stringify({ ok: failed === 0, config: configFile, checks: results }, null, 2)}\n`);
  else write(failed === 0 ? 'ready for the first start\n' : `${failed} check${failed === 1 ? '' : 's'} failed\n`);
  return failed === 0 ? 0 : 1;
}

async function runChecks(configFile: string, labDir: string | undefined, dhcpWaitMs: number, report: (r: CheckResult) => void, redactor: Redactor): Promise<void> {
  let config: AgentConfig;
  try {
    config = await loadAgentConfig(configFile);
    report(result('config', 'ok', configFile));
  } catch (err) {
    report(result('config', 'fail', err instanceof AgentConfigError ? err.message : String(err)));
    return;
  }
  let secrets: Secrets | undefined;
  try {
    secrets = await Secrets.load(config.secretsFile, process.env, config.ageKeyFile ? { ageKeyFile: config.ageKeyFile } : {});
    redactor.set('agent-secrets', secrets.values());
    report(result('secrets', 'ok', config.secretsFile ?? 'no secrets file; credentials from the environment'));
  } catch (err) {
    report(result('secrets', 'fail', `${config.secretsFile ?? ''}: ${errorMessage(err)}`));
  }
  report(checkCapabilities());
  report(checkIpxeBinaries(config.serve.ipxeDir, Object.values(IPXE_BINARIES), ['snponly.efi']));

  const work = await mkdtemp(join(tmpdir(), 'forseti-doctor-'));
  try {
    const { lab, dir } = await gitChecks(config, secrets, labDir, work, report);
    if (!lab) return;
    const site = lab.site;
    const ports: PortSpec[] = [{ protocol: 'tcp', port: site.agent.httpPort, use: 'HTTP (boot scripts, images, API)' }];
    if (config.serve.tftp) ports.push({ protocol: 'udp', port: site.agent.tftpPort, use: 'TFTP' });
    if (config.serve.dhcp && site.dhcp.mode !== 'off') ports.push({ protocol: 'udp', port: 67, use: `DHCP (${site.dhcp.mode})` });
    if (config.serve.dhcp && site.dhcp.mode === 'proxy') ports.push({ protocol: 'udp', port: 4011, use: 'proxyDHCP (PXE)' });
    for (const spec of ports) report(await checkPort(config.serve.bindAddress, spec));
    const iface = checkInterface(site.network.interface, site.agent.address);
    report(iface);
    if (secrets) {
      const labSecrets = await secrets.withLab(dir);
      // As the agent takes them: a weak password in the SOPS file would have the agent reject the commit.
      const { patterns, problems } = labSecretPatterns(labSecrets, lab);
      redactor.set('lab-secrets', patterns);
      for (const p of problems) report(result('lab secrets', 'fail', formatProblem(p)));
      // The commit comes from Git: the agent would reject it before logging in anywhere, and so does doctor.
      const refused = agentPolicyProblems(lab, labSecrets, config);
      if (refused.length > 0) {
        report(result('agent policy', 'fail', `the agent would reject this commit:\n${refused.map(formatProblem).join('\n')}`));
        report(result('bmc', 'skip', 'no BMC is contacted for a commit the agent would reject'));
      } else for (const r of await bmcChecks(lab, labSecrets, config)) report(r);
    }
    if (!config.serve.dhcp && site.dhcp.mode !== 'off') report(result('dhcp service', 'warn', `site.yaml says dhcp.mode ${site.dhcp.mode} but serve.dhcp is false: this agent answers no DHCP`));
    if (dhcpWaitMs <= 0) report(result('dhcp', 'skip', 'no probe for other DHCP servers (--no-dhcp-probe)'));
    else if (iface.status !== 'ok') report(result('dhcp', 'skip', 'no probe without the provisioning interface'));
    else {
      try {
        const offers = await probeDhcp({ interface: site.network.interface, waitMs: dhcpWaitMs });
        report(judgeDhcp(site.dhcp.mode, offers, site.agent.address, site.network.interface, dhcpWaitMs));
      } catch (err) {
        report(result('dhcp', 'fail', `cannot probe ${site.network.interface} for other DHCP servers: ${errorMessage(err)}`));
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Git: the remote's refs with the agent's credentials (as `git ls-remote` would), the clock against the server's
 * Date, then the lab: the given checkout, or the lab branch's newest commit fetched alone into `work`.
 */
async function gitChecks(config: AgentConfig, secrets: Secrets | undefined, labDir: string | undefined, work: string, report: (r: CheckResult) => void): Promise<{ lab?: Lab; dir: string }> {
  const url = config.lab.url;
  const shown = redactUrl(url);
  let auth: GitCredentials | undefined;
  if (config.lab.credential) {
    try {
      if (!secrets) throw new Error('no secrets loaded');
      auth = secrets.resolve(config.lab.credential);
    } catch (err) {
      report(result('git', 'fail', `lab.credential ${config.lab.credential}: ${errorMessage(err)}`));
    }
  }
  const dates: string[] = [];
  const http = recordingDates(httpClientWithTimeout(GIT_TIMEOUT_MS), dates);
  let head: string | undefined;
  try {
    const refs = await git.listServerRefs({ http, url, prefix: 'refs/heads/', ...authCallbacks(auth) });
    head = refs.find((r) => r.ref === `refs/heads/${config.lab.branch}`)?.oid;
    const status = refs.some((r) => r.ref === `refs/heads/${config.status.branch}`);
    if (!head) report(result('git', 'fail', `${shown} has no branch ${config.lab.branch} (it has ${refs.map((r) => r.ref.replace('refs/heads/', '')).join(', ') || 'none'})`));
    else report(result('git', 'ok', `${shown} ${config.lab.branch} at ${head.slice(0, 12)}${auth ? ` with credential ${config.lab.credential}` : ''}; status branch ${config.status.branch} ${status ? 'exists' : 'will be created'}`));
  } catch (err) {
    report(result('git', 'fail', `${shown}: ${gitFailure(err)}`));
  }
  const server = /^https?:/.test(url) ? new URL(url).host : undefined;
  report(checkClock(new Date(), dates[0], server ?? 'the Git server'));
  let dir = labDir ? resolve(labDir) : join(work, 'lab');
  if (!labDir) {
    if (!head) return { dir };
    try {
      await git.clone({ fs, http, dir, url, ref: config.lab.branch, singleBranch: true, depth: 1, noTags: true, ...authCallbacks(auth) });
    } catch (err) {
      report(result('lab', 'fail', `cannot fetch ${config.lab.branch}: ${gitFailure(err)}`));
      return { dir };
    }
  }
  dir = resolve(dir);
  const { lab, problems } = await loadLab(dir);
  if (!lab) {
    report(result('lab', 'fail', `${problems.length} problem${problems.length === 1 ? '' : 's'}: ${problems.slice(0, 3).map(formatProblem).join('; ')}${problems.length > 3 ? '; …' : ''}`));
    return { dir };
  }
  report(result('lab', 'ok', `${labDir ? dir : `${config.lab.branch} ${head?.slice(0, 12) ?? ''}`}: ${lab.hosts.size} hosts, ${lab.profiles.size} profiles, ${lab.images.size} images; dhcp.mode ${lab.site.dhcp.mode}`));
  return { lab, dir };
}

function gitFailure(err: unknown): string {
  const e = err as { code?: string; data?: { statusCode?: number }; message?: string };
  if (e.code === 'HttpError' && (e.data?.statusCode === 401 || e.data?.statusCode === 403)) return `credentials refused (HTTP ${e.data.statusCode}); check lab.credential`;
  return e.message ?? String(err);
}

function recordingDates(client: HttpClient, dates: string[]): HttpClient {
  return {
    request: async (req) => {
      const res = await client.request(req);
      const date = res.headers?.['date'];
      if (date) dates.push(date);
      return res;
    },
  };
}

/** Each distinct BMC once (a C7000 OA serves 16 bays): reachable, the credential accepted, the power state read. */
async function bmcChecks(lab: Lab, secrets: Secrets, config: AgentConfig): Promise<CheckResult[]> {
  const byBmc = new Map<string, Host>();
  for (const host of lab.hosts.values()) {
    const { type, address, port } = host.bmc;
    if (type === 'wol' || type === 'manual' || !address) continue;
    const key = `${type} ${address}${port ? `:${port}` : ''}`;
    if (!byBmc.has(key)) byBmc.set(key, host);
  }
  if (byBmc.size === 0) return [result('bmc', 'skip', 'no host has a BMC forseti logs in to (wol and manual hosts need none)')];
  const log = createLogger({ level: 'silent' });
  const options = { ...config.bmc, timeoutMs: Math.min(config.bmc.timeoutMs, BMC_TIMEOUT_MS), retries: 0, minIntervalMs: 0 };
  // This run's own gate and sessions, as the agent's would be: at most bmc.maxConcurrent exchanges at once.
  const state = new BmcState(config.bmc.maxConcurrent !== undefined ? { maxConcurrent: config.bmc.maxConcurrent } : {});
  return Promise.all(
    [...byBmc.entries()].map(async ([key, host]): Promise<CheckResult> => {
      const name = `bmc ${key}`;
      const others = [...lab.hosts.values()].filter((h) => h.bmc.address === host.bmc.address && h.bmc.type === host.bmc.type).length;
      const serves = others > 1 ? ` (${others} hosts)` : ` (${host.name})`;
      let driver;
      try {
        driver = createDriver(host, secrets, options, log, { state, site: lab.site });
      } catch (err) {
        return result(name, 'fail', `${host.name}: ${errorMessage(err)}`);
      }
      try {
        const power = await withTimeout(driver.powerState(), options.timeoutMs * 2, `no answer within ${(options.timeoutMs * 2) / 1000} s`);
        return result(name, 'ok', `logged in as ${host.bmc.credential}, power ${power}${serves}`);
      } catch (err) {
        return result(name, 'fail', `${bmcFailure(err)}${serves}`);
      } finally {
        await driver.close?.().catch(() => undefined);
      }
    }),
  );
}

function bmcFailure(err: unknown): string {
  const e = err as Error;
  const kind: Record<string, string> = { BmcUnreachableError: 'unreachable', BmcAuthError: 'login refused', BmcTlsError: 'TLS', BmcHostKeyError: 'SSH host key refused', CredentialMissingError: 'no credential' };
  return `${kind[e.name] ?? 'failed'}: ${e.message ?? String(err)}`;
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}
