// Cold start of the agent on a 10,000-host lab (issue 16), each start in a fresh process:
// - first start, empty state directory: fetch, check out, load, validate, render, serve; against `git clone` of the
//   same repository by the git CLI (with its checkout), measured in the same run; target ≤ 3x;
// - restart, state directory warm, the status branch holding every host's file (history and actions): start →
//   serving the current generation with every host's state and history restored; target ≤ 2 s;
// - the RSS at 10,000 hosts once started and a few seconds later (target ≤ 300 MB; the template lab's idle figure
//   is in footprint.bench.ts).
// Times are from just before the agent is made; the process's own start (Node, the tsx loader, the modules) is
// printed beside them. The status branch is written by the git CLI here: the agent's first push of 10,000 files
// would take minutes (isomorphic-git writes each object on its own), which is not what this measures.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_IMAGE_POLICY } from '../src/render/image-limits.ts';
import { renderHostStatus } from '../src/status/index.ts';
import { commitFiles, createBareRepo, startGitServer } from '../test/fixtures/git-server.ts';
import { generateLab, MIRROR_DIR } from './lib/generate-lab.ts';
import { bundleRss } from './lib/bundle-agent.ts';
import { freePort, median, REPO_ROOT } from './lib/proc.ts';

const CHILD = fileURLToPath(new URL('./lib/agent-start-child.ts', import.meta.url));
const HOSTS = Number(process.env.FORSETI_BENCH_HOSTS ?? 10_000);
const ROUNDS = 3;
const STEADY_MS = 3000;

interface Start {
  appliedMs: number;
  startMs: number;
  loadMs: number;
  rssMB: number;
  steadyRssMB: number;
  marks: Record<string, number>;
}

const exec = promisify(execFile);

/** Asynchronous: the git server answering the agent runs in this process. */
async function startAgent(config: object, steadyMs = 0): Promise<Start> {
  const { stdout } = await exec(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(config), String(steadyMs)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Start;
}

async function inTurn<T>(count: number, work: (n: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let n = 0; n < count; n++) out.push(await work(n));
  return out;
}

function statusFile(i: number, revision: string): string {
  const at = (s: number): string => new Date(Date.UTC(2026, 11, 1, 10, 0, s)).toISOString();
  return renderHostStatus({
    host: `h${i}`, role: 'off', phase: 'Off', revision: null, attemptedRevision: null, lastError: null, since: at(2), updated: at(2), sync: 'Synced', health: 'Healthy',
    history: [{ phase: 'Pending', at: at(0), message: 'Pending' }, { phase: 'Off', at: at(2), message: 'Off' }],
    actions: [{ action: 'power-off-by-hand', outcome: 'ok', revision, started: at(1), finished: at(2), durationMs: 1000, reason: `role off keeps the host off; the operator is asked to power h${i} off` }],
  });
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-bench-cold-'));
  const git = await startGitServer();
  try {
    generateLab(join(dir, 'lab'), HOSTS, () => 'off', await freePort());
    await createBareRepo(git, 'lab', join(dir, 'lab'));
    writeFileSync(join(dir, 'secrets.yaml'), '{}\n');
    const clones = await inTurn(ROUNDS, async (n) => {
      const t = performance.now();
      await exec('git', ['clone', '--quiet', '--branch', 'main', git.repoUrl('lab'), join(dir, `clone-${n}`)]);
      return performance.now() - t;
    });
    const clone = median(clones);
    const config = (state: string): object => ({
      lab: { url: git.repoUrl('lab'), branch: 'main', pollSeconds: 3600 },
      status: { branch: 'forseti-status', batchSeconds: 3600, author: { name: 'forseti', email: 'forseti@localhost' } },
      stateDir: join(dir, state),
      secretsFile: join(dir, 'secrets.yaml'),
      serve: { bindAddress: '127.0.0.1', dhcp: false, tftp: false, ipxeDir: '/usr/lib/ipxe' },
      bmc: { minIntervalMs: 0, timeoutMs: 5000, retries: 0 },
      reconcileIntervalMs: 1000,
      images: { ...DEFAULT_IMAGE_POLICY, fileRoots: [join(dir, 'lab', MIRROR_DIR)] },
    });
    const firsts = await inTurn(ROUNDS, (n) => startAgent(config(`first-${n}`)));
    const first = median(firsts.map((s) => s.appliedMs));
    process.stdout.write(`${HOSTS} hosts, first start (empty state dir) -> generation served: ${firsts.map((s) => `${s.appliedMs.toFixed(0)} ms`).join(', ')}; median ${first.toFixed(0)} ms; start() resolved ${median(firsts.map((s) => s.startMs)).toFixed(0)} ms\n`);
    process.stdout.write(`  git clone (CLI, with checkout) ${clones.map((c) => `${c.toFixed(0)} ms`).join(', ')}: first start ${(first / clone).toFixed(2)}x git clone (target <= 3x)\n`);
    for (const f of firsts) process.stdout.write(`  marks (ms): ${JSON.stringify(f.marks)}\n`);

    // The branch as an agent leaves it after a while: every host's file with its history and an action.
    const revision = execFileSync('git', ['rev-parse', 'main'], { cwd: join(git.root, 'lab.git'), encoding: 'utf8' }).trim();
    await commitFiles(git, 'lab', 'forseti-status', Object.fromEntries(Array.from({ length: HOSTS }, (_, i) => [`hosts/h${i}.yaml`, statusFile(i, revision)])), 'status');
    // Kept a few seconds: a first checkout's tree is written after the commit is applied (src/source/git-source.ts),
    // and the warm restarts below take it over.
    const moved = await startAgent(config('first-0'), STEADY_MS);
    process.stdout.write(`restart, status branch new to the state dir (fetched, every blob read): generation served ${moved.appliedMs.toFixed(0)} ms, start() resolved ${moved.startMs.toFixed(0)} ms\n`);
    const restarts = await inTurn(ROUNDS, (n) => startAgent(config('first-0'), n === ROUNDS - 1 ? STEADY_MS : 0));
    const restart = median(restarts.map((s) => s.appliedMs));
    const last = restarts.at(-1);
    process.stdout.write(`restart, state dir warm -> generation served with ${HOSTS} hosts' state and history: ${restarts.map((s) => `${s.appliedMs.toFixed(0)} ms`).join(', ')}; median ${restart.toFixed(0)} ms (${(restart / 2000).toFixed(2)}x the 2 s target); start() resolved ${median(restarts.map((s) => s.startMs)).toFixed(0)} ms; Node + modules before that ${median(restarts.map((s) => s.loadMs)).toFixed(0)} ms\n`);
    process.stdout.write(`  marks of the last (ms): ${JSON.stringify(last?.marks)}\n`);
    process.stdout.write(`  RSS at ${HOSTS} hosts, source run: ${last?.rssMB.toFixed(0)} MB started, ${last?.steadyRssMB.toFixed(0)} MB ${STEADY_MS / 1000} s later (${((last?.steadyRssMB ?? NaN) / 300).toFixed(2)}x the 300 MB target)\n`);
    // The release form restarting on the same state dir (JSON is YAML for its config file).
    execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/build-release.mjs')], { cwd: REPO_ROOT, stdio: 'ignore' });
    const file = join(dir, 'agent.json');
    writeFileSync(file, JSON.stringify({ ...config('first-0'), images: { fileRoots: [join(dir, 'lab', MIRROR_DIR)] } }));
    const bundled = await bundleRss(file, STEADY_MS);
    process.stdout.write(`  RSS at ${HOSTS} hosts, release bundle (node dist/forseti.cjs agent): ${bundled.toFixed(0)} MB ${STEADY_MS / 1000} s after the commit applied (${(bundled / 300).toFixed(2)}x the 300 MB target)\n`);
  } finally {
    await git.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
