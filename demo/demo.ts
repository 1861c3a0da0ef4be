// `npm run demo`: the main job on an embedded default. A virtual lab of three QEMU guests with IPMI BMCs, a local
// Git server holding a small lab, and the forseti agent converging the guests; then a role change by commit.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from '../test/fixtures/git-server.ts';
import { startAgent, type AgentProcess } from '../test/e2e/agent-process.ts';
import { hostFile, labFiles } from '../test/e2e/lab-files.ts';
import { ensureGuestAssets, startVlab, type Vlab } from '../test/vlab/index.ts';
import { renderTable, type HostRow } from './table.ts';

const NODES = [
  { name: 'node1', mac: '52:54:00:00:00:01', role: 'slurm-compute' },
  { name: 'node2', mac: '52:54:00:00:00:02', role: 'talos-worker' },
  { name: 'node3', mac: '52:54:00:00:00:03', role: 'slurm-compute' },
];
const CHANGED = { node: 'node3', role: 'talos-worker' };

let vlab: Vlab | undefined;
let agent: AgentProcess | undefined;
let git: GitServer | undefined;
let workDir = '';

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function cleanup(): Promise<void> {
  await agent?.stop().catch(() => undefined);
  await vlab?.stop().catch(() => undefined);
  await git?.close().catch(() => undefined);
  if (workDir) await rm(workDir, { recursive: true, force: true });
}

async function hostRows(): Promise<HostRow[]> {
  if (!vlab) return [];
  const res = await vlab.exec('curl', ['-s', '--max-time', '2', `http://${vlab.agentAddress}:8080/v1/status`]);
  try {
    const status = JSON.parse(res.stdout) as { revision: string | null; hosts: Record<string, HostRow> };
    return Object.entries(status.hosts).map(([host, row]) => ({ ...row, host }));
  } catch {
    return [];
  }
}

/** Redraws the table until `done` holds for the rows; returns the seconds it took. */
async function watch(title: string, done: (rows: HostRow[]) => boolean, timeoutMs: number): Promise<number> {
  const start = Date.now();
  const tty = process.stdout.isTTY;
  let last = '';
  for (;;) {
    const rows = await hostRows();
    const table = `${title} (${((Date.now() - start) / 1000).toFixed(0)} s)\n${renderTable(rows)}`;
    if (tty) process.stdout.write(`\x1b[H\x1b[J${table}\n`);
    else if (table.split('\n').slice(1).join('\n') !== last) say(table);
    last = table.split('\n').slice(1).join('\n');
    if (rows.length > 0 && done(rows)) return (Date.now() - start) / 1000;
    if (Date.now() - start > timeoutMs) throw new Error(`${title}: not done within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0 || !existsSync('/dev/net/tun')) {
    throw new Error('the demo builds network namespaces and QEMU taps: run it as root on a machine with /dev/net/tun');
  }
  say('forseti demo: installing the Debian packages the virtual lab needs (if missing) ...');
  execFileSync('bash', [join(dirname(new URL(import.meta.url).pathname), '..', 'scripts', 'install-debian-packages.sh')], { stdio: 'inherit' });
  say('preparing guest kernel and initramfs (cached after the first run) ...');
  const assets = await ensureGuestAssets();
  workDir = await mkdtemp(join(tmpdir(), 'forseti-demo-'));
  git = await startGitServer({ socketPath: join(workDir, 'git.sock') });
  vlab = await startVlab({ nodes: NODES.map(({ name, mac }) => ({ name, mac })) });
  await vlab.forwardUnixSocket('127.0.0.1:9418', join(workDir, 'git.sock'));
  const seed = join(workDir, 'lab');
  const roles = Object.fromEntries(NODES.map((n) => [n.name, n.role]));
  for (const [path, content] of Object.entries(labFiles(assets, vlab.nodes, roles))) {
    await mkdir(dirname(join(seed, path)), { recursive: true });
    await writeFile(join(seed, path), content);
  }
  await createBareRepo(git, 'lab', seed);
  say(`lab repository: ${git.repoUrl('lab')} (reached from the lab network as http://127.0.0.1:9418/lab.git)`);
  agent = await startAgent({ vlab, workDir, labUrl: 'http://127.0.0.1:9418/lab.git', assets });

  const first = await watch('converging the lab from its first commit', (rows) => rows.every((r) => r.phase === 'Converged'), 10 * 60_000);
  say(`\nall ${NODES.length} hosts converged in ${first.toFixed(1)} s from agent start.\n`);

  const node = vlab.nodes.find((n) => n.name === CHANGED.node);
  if (!node) throw new Error(`no ${CHANGED.node}`);
  const sha = await commitFiles(git, 'lab', 'main', { [`hosts/${CHANGED.node}.yaml`]: hostFile(node, CHANGED.role) }, `${CHANGED.node} becomes a ${CHANGED.role}`);
  say(`committed ${sha.slice(0, 12)}: ${CHANGED.node} becomes a ${CHANGED.role}`);
  const second = await watch(
    `reprovisioning ${CHANGED.node} after commit ${sha.slice(0, 12)}`,
    (rows) => rows.some((r) => r.host === CHANGED.node && r.phase === 'Converged' && r.appliedRevision === sha),
    10 * 60_000,
  );
  say(`\n${CHANGED.node} converged as ${CHANGED.role} ${second.toFixed(1)} s after the commit (push → poll → power cycle → iPXE → phone-home);`);
  say('the other hosts were not touched. Serial consoles and logs were under the vlab work directory; stopping everything.');
}

// npm forwards Ctrl-C to this process as SIGINT and SIGTERM; either one stops everything the demo started.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    say('\ninterrupted: stopping the agent, the guests, the BMCs and the Git server ...');
    void cleanup().finally(() => process.exit(130));
  });
}

main()
  .then(cleanup)
  .catch(async (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await cleanup();
    process.exitCode = 1;
  });
