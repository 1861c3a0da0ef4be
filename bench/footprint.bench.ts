// Agent RSS (issue 16): the template's lab idle (target ≤ 100 MB; its profiles, images and site with as many hosts
// as the template declares, BMCs manual and images local so nothing leaves the machine, DHCP and TFTP off), printed
// against the source-run baseline (Node + tsx + the agent's modules, no lab) measured in the same run, for the
// source run and for the release bundle (`node dist/forseti.cjs agent`, what the package and the single executable
// run). The figure at 10,000 hosts is in cold-start.bench.ts.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEFAULT_IMAGE_POLICY } from '../src/render/image-limits.ts';
import { createBareRepo, startGitServer } from '../test/fixtures/git-server.ts';
import { generateLab, MIRROR_DIR, TEMPLATE } from './lib/generate-lab.ts';
import { bundleRss } from './lib/bundle-agent.ts';
import { freePort, median, REPO_ROOT } from './lib/proc.ts';

const exec = promisify(execFile);
const AGENT = fileURLToPath(new URL('./lib/agent-start-child.ts', import.meta.url));
const BASELINE = fileURLToPath(new URL('./lib/baseline-child.ts', import.meta.url));
const IDLE_MS = 5000;
const ROUNDS = 3;

async function child(script: string, args: string[]): Promise<{ rssMB: number; steadyRssMB?: number }> {
  const { stdout } = await exec(process.execPath, ['--import', 'tsx', script, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { rssMB: number; steadyRssMB?: number };
}

export async function run(): Promise<void> {
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/build-release.mjs')], { cwd: REPO_ROOT, stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), 'forseti-bench-footprint-'));
  const git = await startGitServer();
  try {
    const hosts = readdirSync(join(TEMPLATE, 'hosts')).length;
    generateLab(join(dir, 'lab'), hosts, (i) => (i % 2 ? 'slurm-compute' : 'talos-worker'), await freePort());
    await createBareRepo(git, 'lab', join(dir, 'lab'));
    writeFileSync(join(dir, 'secrets.yaml'), '{}\n');
    const config = (n: number): object => ({
      lab: { url: git.repoUrl('lab'), branch: 'main', pollSeconds: 60 },
      status: { branch: 'forseti-status', batchSeconds: 2, author: { name: 'forseti', email: 'forseti@localhost' } },
      stateDir: join(dir, `state-${n}`),
      secretsFile: join(dir, 'secrets.yaml'),
      serve: { bindAddress: '127.0.0.1', dhcp: false, tftp: false, ipxeDir: '/usr/lib/ipxe' },
      bmc: { minIntervalMs: 0, timeoutMs: 5000, retries: 0 },
      reconcileIntervalMs: 1000,
      images: { ...DEFAULT_IMAGE_POLICY, fileRoots: [join(dir, 'lab', MIRROR_DIR)] },
    });
    const baseline: number[] = [];
    const agent: number[] = [];
    const bundled: number[] = [];
    const smallYoung: number[] = [];
    for (let n = 0; n < ROUNDS; n++) {
      baseline.push((await child(BASELINE, [String(IDLE_MS)])).rssMB);
      agent.push((await child(AGENT, [JSON.stringify(config(n)), String(IDLE_MS)])).steadyRssMB ?? NaN);
      const file = join(dir, `agent-${n}.json`); // JSON is YAML
      writeFileSync(file, JSON.stringify({ ...config(ROUNDS + n), images: { fileRoots: [join(dir, 'lab', MIRROR_DIR)] } }));
      bundled.push(await bundleRss(file, IDLE_MS));
      // V8's young generation capped at 1 MB per semi-space (default 16 MB): what it reserves after allocation bursts.
      smallYoung.push(await bundleRss(file, IDLE_MS, ['--max-semi-space-size=1']));
    }
    const b = median(baseline);
    const show = (what: string, values: number[]): string => {
      const m = median(values);
      return `${what} ${values.map((v) => v.toFixed(0)).join(', ')} MB, median ${m.toFixed(0)} MB (${(m / 100).toFixed(2)}x the 100 MB target, ${(m / b).toFixed(2)}x the baseline)`;
    };
    process.stdout.write(`template lab (${hosts} hosts) idle ${IDLE_MS / 1000} s after its first commit, agent RSS: ${show('source run', agent)}; ${show('release bundle', bundled)}\n`);
    process.stdout.write(`  ${show('release bundle with --max-semi-space-size=1', smallYoung)}\n`);
    process.stdout.write(`  source-run baseline (node + tsx + the agent's modules, no lab): ${baseline.map((v) => v.toFixed(0)).join(', ')} MB, median ${b.toFixed(0)} MB\n`);
  } finally {
    await git.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
