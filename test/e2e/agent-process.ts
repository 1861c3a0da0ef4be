// Runs the real forseti agent (bin/forseti.js, or the release executable) inside the virtual lab's namespace (or,
// without one, on this machine's loopback) and keeps its JSON log.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { GuestAssets, Vlab } from '../vlab/index.ts';

export interface AgentProcess {
  child: ChildProcess;
  logLines(): Array<Record<string, unknown>>;
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs: number, from?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface AgentSetup {
  /** The namespace to run in; without one the agent runs here (loopback tests). */
  vlab?: Vlab;
  workDir: string;
  labUrl: string;
  assets?: GuestAssets;
  pollSeconds?: number;
  /** Shared secret of the push webhook (credential `webhook`). */
  webhookSecret?: string;
  /** HMAC key of the alert sink (credential `alerts-hmac`). */
  alertsSecret?: string;
  /** Appended to the agent's secrets file (e.g. a forge's API token). */
  extraSecrets?: string;
  /** Added to the agent's environment (e.g. PATH with a tracing ipmitool in front). */
  env?: NodeJS.ProcessEnv;
  /** Appended to agent.yaml (e.g. a `serve:` section). */
  extraConfig?: string;
  /** The forseti command; default the sources (node bin/forseti.js), or the release executable. */
  command?: string[];
}

export async function startAgent(setup: AgentSetup): Promise<AgentProcess> {
  const stateDir = join(setup.workDir, 'agent-state');
  await mkdir(stateDir, { recursive: true });
  const secrets = join(setup.workDir, 'secrets.yaml');
  const node = setup.vlab?.nodes[0];
  const extra = [
    setup.webhookSecret ? `webhook:\n  username: webhook\n  password: ${setup.webhookSecret}\n` : '',
    setup.alertsSecret ? `alerts-hmac:\n  username: alerts\n  password: ${setup.alertsSecret}\n  use: [alerts]\n  urls: ['http://127.0.0.1:9419/alerts']\n` : '',
    setup.extraSecrets ?? '',
  ].join('');
  // Bound to the guests' BMCs (their CAs come from the lab repository, hence allowInsecureTls), or to loopback.
  const bmcAddresses = setup.vlab ? [...new Set(setup.vlab.nodes.map((n) => n.bmc.address))] : ['127.0.0.1'];
  await writeFile(
    secrets,
    `vlab-bmc:\n  username: ${node?.bmc.user ?? 'admin'}\n  password: ${node?.bmc.password ?? 'vlabpass'}\n  use: [bmc]\n  addresses: [${bmcAddresses.join(', ')}]\n  allowInsecureTls: true\n${extra}`,
    { mode: 0o600 },
  );
  // The virtual lab's site (test/e2e/lab-files.ts) serves full DHCP on br0; a caller's own serve: section wins.
  const serve = setup.extraConfig?.includes('serve:') ? '' : 'serve:\n  interface: br0\n  dhcpModes: [full]\n';
  const config = join(setup.workDir, 'agent.yaml');
  await writeFile(
    config,
    `lab:
  url: ${setup.labUrl}
  branch: main
  pollSeconds: ${setup.pollSeconds ?? 2}
status:
  branch: forseti-status
  batchSeconds: 1
stateDir: ${stateDir}
secretsFile: ${secrets}
bmc:
  minIntervalMs: 300
  timeoutMs: 20000
  retries: 2
reconcileIntervalMs: 500
${serve}${setup.assets ? `images:\n  fileRoots: [${dirname(setup.assets.kernel)}, ${dirname(setup.assets.initrd)}]\n` : ''}${setup.webhookSecret ? 'webhook: {credential: webhook}\n' : ''}${setup.extraConfig ?? ''}`,
  );
  const [program, ...programArgs] = setup.command ?? [process.execPath, resolve('bin/forseti.js')];
  const args = [...programArgs, 'agent', '--config', config];
  const options = { stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORSETI_LOG_LEVEL: 'debug', ...setup.env } };
  const child = setup.vlab ? setup.vlab.spawn(program ?? process.execPath, args, options) : spawn(program ?? process.execPath, args, options);
  const lines: Array<Record<string, unknown>> = [];
  let buffer = '';
  const waiters = new Set<() => void>();
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const text = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        lines.push({ msg: text });
      }
    }
    for (const w of waiters) w();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    lines.push({ msg: chunk.toString('utf8'), stream: 'stderr' });
    if (process.env.FORSETI_E2E_VERBOSE) process.stderr.write(chunk);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    logLines: () => lines,
    waitForLog(match, timeoutMs, from = 0) {
      return new Promise((resolvePromise, reject) => {
        const check = (): void => {
          const hit = lines.slice(from).find(match);
          if (hit) {
            waiters.delete(check);
            clearTimeout(timer);
            resolvePromise(hit);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`agent log line not seen within ${timeoutMs} ms; last lines:\n${lines.slice(-15).map((l) => JSON.stringify(l)).join('\n')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
}
