import { execFileSync } from 'node:child_process';
import { isAlive, killAndVerify, killNow } from './processes.ts';
import { run, runChecked } from '../../src/os-image/run-command.ts';

export const BRIDGE = 'br0';
export const AGENT_ADDRESS = '10.77.0.1';
export const SUBNET = '10.77.0.0/24';
/** Stable bridge MAC: else br0 takes the lowest port MAC, which changes as taps come and go. */
const BRIDGE_MAC = '02:77:00:00:00:01';
/** `FORSETI_VLAB_NETNS_PREFIX` keeps concurrent users of one machine apart (default fvlab); stale cleanup stays within it. */
const PREFIX = /^[a-z][a-z0-9-]{0,14}$/.test(process.env.FORSETI_VLAB_NETNS_PREFIX ?? '') ? process.env.FORSETI_VLAB_NETNS_PREFIX! : 'fvlab';
const NAME_PATTERN = new RegExp(`^${PREFIX}-(\\d+)-\\d+$`);

let namespaceCounter = 0;

export function newNamespaceName(): string {
  namespaceCounter += 1;
  return `${PREFIX}-${process.pid}-${namespaceCounter}`;
}

export function bmcAddress(index: number): string {
  if (index < 0 || index > 13) throw new Error('the vlab has BMC addresses for at most 14 nodes (10.77.0.241-254)');
  return `10.77.0.${241 + index}`;
}

export function tapName(index: number): string {
  return `tap${index}`;
}

const ipIn = (netns: string, ...args: string[]): Promise<string> => runChecked('ip', ['-n', netns, ...args]);

export async function createNamespace(netns: string, nodeCount: number): Promise<void> {
  await runChecked('ip', ['netns', 'add', netns]);
  await runChecked('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w',
    // no IPv6 duplicate address detection: br0's link-local address is usable (by radvd) at once
    'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
  await ipIn(netns, 'link', 'set', 'lo', 'up');
  await ipIn(netns, 'link', 'add', BRIDGE, 'type', 'bridge');   // STP off by default: ports forward at once
  await ipIn(netns, 'link', 'set', BRIDGE, 'address', BRIDGE_MAC);
  await ipIn(netns, 'addr', 'add', `${AGENT_ADDRESS}/24`, 'dev', BRIDGE);
  await ipIn(netns, 'link', 'set', BRIDGE, 'up');
  for (let index = 0; index < nodeCount; index += 1) {
    await ipIn(netns, 'tuntap', 'add', 'dev', tapName(index), 'mode', 'tap');
    await ipIn(netns, 'link', 'set', tapName(index), 'master', BRIDGE);
    await ipIn(netns, 'link', 'set', tapName(index), 'up');
    await ipIn(netns, 'addr', 'add', `${bmcAddress(index)}/32`, 'dev', 'lo');
  }
}

async function namespacePids(netns: string): Promise<number[]> {
  const result = await run('ip', ['netns', 'pids', netns]);
  return result.stdout.split(/\s+/).filter(Boolean).map(Number);
}

export async function namespaceExists(netns: string): Promise<boolean> {
  const result = await run('ip', ['netns', 'list']);
  return result.stdout.split('\n').some((line) => line.split(' ')[0] === netns);
}

/** Kills whatever still runs inside, by PID, then deletes the namespace (and with it br0 and the taps). */
export async function deleteNamespace(netns: string): Promise<void> {
  if (!(await namespaceExists(netns))) return;
  for (const pid of await namespacePids(netns)) await killAndVerify(pid);
  await runChecked('ip', ['netns', 'del', netns]);
  if (await namespaceExists(netns)) throw new Error(`network namespace ${netns} still exists after deletion`);
}

/** Synchronous variant for process exit. */
export function deleteNamespaceNow(netns: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', netns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    for (const pid of pids.split(/\s+/).filter(Boolean)) killNow(Number(pid));
    execFileSync('ip', ['netns', 'del', netns], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

/** Namespaces left by runs that were killed outright (SIGKILL gives no chance to clean up). */
export async function deleteStaleNamespaces(): Promise<void> {
  const result = await run('ip', ['netns', 'list']);
  for (const line of result.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const owner = NAME_PATTERN.exec(name)?.[1];
    if (owner && Number(owner) !== process.pid && !isAlive(Number(owner))) await deleteNamespace(name);
  }
}
