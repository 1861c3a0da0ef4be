import { spawn as spawnProcess, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startIpmiSim, type IpmiSim } from '../fixtures/ipmi-sim.ts';
import type { RedfishBmc } from '../fixtures/redfish/bmc.ts';
import { AGENT_ADDRESS, BRIDGE, SUBNET, bmcAddress, createNamespace, deleteNamespace, deleteNamespaceNow, deleteStaleNamespaces, newNamespaceName, tapName } from './netns.ts';
import { prepareNodeDir, withDefaults, writeSerconFile } from './node-machine.ts';
import { isAlive, killAndVerify, killNow, onProcessExit } from './processes.ts';
import { REDFISH_PORT, startVlabRedfishBmc } from './redfish-bmc.ts';
import { RADVD, radvdArgs, radvdWanted, writeRadvdConfig } from './router-advertisements.ts';
import { run } from '../../src/os-image/run-command.ts';
import { waitForLine } from './child-output.ts';
import { readText, waitForText } from './serial.ts';
import type { BmcEndpoint, ExecResult, StartVlabOptions, Vlab, VlabNode } from './types.ts';

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHASSIS_CONTROL = fileURLToPath(new URL('./chassis-control.sh', import.meta.url));
const UNIX_FORWARDER = fileURLToPath(new URL('../fixtures/unix-forwarder.ts', import.meta.url));

function qemuPid(node: VlabNode): number | undefined {
  const pid = Number.parseInt(readText(join(node.dir, 'qemu.pid')), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

class RunningVlab implements Vlab {
  readonly bridge = BRIDGE;
  readonly agentAddress = AGENT_ADDRESS;
  readonly subnet = SUBNET;
  readonly nodes: VlabNode[] = [];
  readonly bmcs: IpmiSim[] = [];
  readonly redfishBmcs = new Map<string, RedfishBmc>();
  private readonly children = new Set<ChildProcess>();
  private stopping: Promise<void> | undefined;
  private readonly unregisterExitCleanup: () => void;

  constructor(
    readonly netns: string,
    private readonly workDir: string,
    private readonly ownsWorkDir: boolean,
  ) {
    this.unregisterExitCleanup = onProcessExit(() => this.stopNow());
  }

  exec(cmd: string, args: string[]): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', this.netns, cmd, ...args]);
  }

  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    if (this.stopping) throw new Error(`vlab ${this.netns} is stopping`);
    // Own process group, so stop() also reaches whatever the command starts itself.
    const child = spawnProcess('ip', ['netns', 'exec', this.netns, cmd, ...args], { ...opts, detached: true });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  async forwardUnixSocket(listen: string, socketPath: string): Promise<void> {
    const child = this.spawn(process.execPath, ['--import', 'tsx', UNIX_FORWARDER, listen, socketPath], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await waitForLine(child, 'ready', 15_000, `unix-forwarder ${listen} -> ${socketPath}`);
  }

  async ipmitool(nodeName: string, ...args: string[]): Promise<string> {
    const { bmc, bmcType } = this.node(nodeName);
    if (bmcType !== 'ipmi') throw new Error(`vlab node ${nodeName} has a ${bmcType} BMC, not IPMI`);
    const result = await new Promise<ExecResult>((resolve) => {
      const child = spawnProcess('ip', ['netns', 'exec', this.netns, 'ipmitool', '-I', 'lanplus', '-C', '3',
        '-H', bmc.address, '-p', String(bmc.port), '-U', bmc.user, '-E', ...args], {
        env: { ...process.env, IPMI_PASSWORD: bmc.password },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => void (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
      child.on('close', (code) => resolve({ stdout, stderr, code: code ?? -1 }));
    });
    // ipmitool exits 0 when e.g. `chassis bootdev` fails: its complaint on stderr is the only sign.
    if (result.code !== 0 || /\b(error|failed|unable)\b/i.test(result.stderr)) {
      throw new Error(`ipmitool ${args.join(' ')} against ${nodeName} (${bmc.address}): exit ${result.code}\n${result.stderr}${result.stdout}`);
    }
    return result.stdout;
  }

  redfish(nodeName: string): RedfishBmc {
    const bmc = this.redfishBmcs.get(this.node(nodeName).name);
    if (!bmc) throw new Error(`vlab node ${nodeName} has no Redfish BMC`);
    return bmc;
  }

  serial(nodeName: string): string {
    return readText(this.node(nodeName).serialLog);
  }

  waitForSerial(nodeName: string, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return waitForText(this.node(nodeName).serialLog, pattern, timeoutMs, `serial console of ${nodeName}`);
  }

  powerLog(nodeName: string): string[] {
    return readText(join(this.node(nodeName).dir, 'power.log')).split('\n').filter(Boolean);
  }

  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  node(name: string): VlabNode {
    const node = this.nodes.find((candidate) => candidate.name === name);
    if (!node) throw new Error(`no vlab node ${name} (have: ${this.nodes.map((n) => n.name).join(', ')})`);
    return node;
  }

  private async stopAll(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (step: () => Promise<void>): Promise<void> => {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    };
    // QEMU first: it is what a BMC could start again while we are tearing down.
    for (const sim of this.bmcs) await attempt(() => sim.stop());
    for (const bmc of this.redfishBmcs.values()) await attempt(() => bmc.close());
    for (const node of this.nodes) {
      const pid = qemuPid(node);
      if (pid !== undefined) await attempt(() => killAndVerify(pid));
    }
    for (const child of this.children) {
      if (child.pid !== undefined) await attempt(() => killAndVerify(child.pid as number, { group: true }));
    }
    await attempt(() => deleteNamespace(this.netns));
    this.unregisterExitCleanup();
    if (this.ownsWorkDir && process.env.FORSETI_VLAB_KEEP !== '1') rmSync(this.workDir, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, `vlab ${this.netns}: stop was incomplete`);
  }

  /** Synchronous last resort at process exit or on a signal. */
  private stopNow(): void {
    for (const node of this.nodes) {
      const pid = qemuPid(node);
      if (pid !== undefined && isAlive(pid)) killNow(pid);
    }
    for (const child of this.children) if (child.pid !== undefined) killNow(child.pid, { group: true });
    deleteNamespaceNow(this.netns);
  }
}

export async function startVlab(opts: StartVlabOptions): Promise<Vlab> {
  const machines = opts.nodes.map(withDefaults);
  const duplicate = machines.find((m, i) => machines.findIndex((o) => o.name === m.name || o.mac === m.mac) !== i);
  if (duplicate) throw new Error(`vlab node ${duplicate.name}: name or MAC used twice`);
  if (!existsSync('/dev/net/tun')) throw new Error('the vlab needs /dev/net/tun');

  await deleteStaleNamespaces();
  const netns = newNamespaceName();
  const workDir = opts.workDir ?? (await mkdtemp(join(tmpdir(), `${netns}-`)));
  // ipmi_sim's config cannot quote the chassis_control command line, so no path may hold spaces or quotes.
  for (const path of [workDir, CHASSIS_CONTROL]) {
    if (/[\s"'\\]/.test(path)) throw new Error(`vlab paths must not contain spaces or quotes: ${path}`);
  }
  await mkdir(workDir, { recursive: true });
  const vlab = new RunningVlab(netns, workDir, opts.workDir === undefined);
  try {
    await createNamespace(netns, machines.length);
    if (radvdWanted()) {
      const radvd = vlab.spawn(RADVD, radvdArgs(await writeRadvdConfig(workDir)), { stdio: ['ignore', 'ignore', 'pipe'] });
      let radvdLog = '';
      radvd.stderr?.on('data', (chunk: Buffer) => void (radvdLog += chunk.toString()));
      radvd.once('exit', (code) => code !== null && code !== 0 && process.stderr.write(`vlab: radvd exited with ${code}: ${radvdLog}\n`));
    }
    const sercon = await writeSerconFile(workDir);
    for (const [index, machine] of machines.entries()) {
      const dir = join(workDir, 'nodes', machine.name);
      await prepareNodeDir(dir, machine, tapName(index), sercon);
      let bmc: BmcEndpoint;
      if (machine.bmcType === 'redfish') {
        const bmcDir = join(workDir, 'bmc', machine.name);
        await mkdir(bmcDir, { recursive: true });
        const endpoint = { address: bmcAddress(index), port: REDFISH_PORT, user: 'admin', password: 'vlabpass' };
        const socketPath = join(bmcDir, 'redfish.sock');
        const redfish = await startVlabRedfishBmc({ netns, machine, nodeDir: dir, chassisControl: CHASSIS_CONTROL, socketPath, ...endpoint });
        vlab.redfishBmcs.set(machine.name, redfish.bmc);
        await vlab.forwardUnixSocket(`${endpoint.address}:${endpoint.port}`, socketPath);
        bmc = { ...endpoint, ca: redfish.ca };
      } else {
        const sim = await startIpmiSim({
          name: machine.name,
          address: bmcAddress(index),
          chassisControl: `/bin/bash ${CHASSIS_CONTROL} ${dir}`,
          workDir: join(workDir, 'bmc', machine.name),
          netns,
        });
        vlab.bmcs.push(sim);
        const { address, port, user, password } = sim;
        bmc = { address, port, user, password };
      }
      vlab.nodes.push({ ...machine, bmc, dir, serialLog: join(dir, 'serial.log') });
    }
  } catch (error) {
    await vlab.stop().catch(() => undefined);
    throw error;
  }
  return vlab;
}

