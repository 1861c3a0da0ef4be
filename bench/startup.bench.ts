// Start time of the release forms against the source run, each command run in turn (interleaved, so load on the
// machine hits all forms alike), medians of ROUNDS runs. The reference is the source run (node + tsx loader); the
// floor is Node itself (`node -e 0`). Also measured: a tsc emit of the sources (one file per module, the
// alternative to esbuild's one bundle), built here into a temporary directory.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync, cpSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './lib/proc.ts';

const ROUNDS = Number(process.env.FORSETI_BENCH_ROUNDS ?? 15);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function timeOnce(command: string[]): number {
  const started = process.hrtime.bigint();
  const r = spawnSync(command[0] ?? '', command.slice(1), { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (r.status !== 0 && r.status !== 2) throw new Error(`${command.join(' ')} failed (${r.status}): ${r.stderr.toString().slice(0, 500)}`);
  return ms;
}

/** The sources compiled by tsc to one .js per module, with the run-time files beside them (as a package would be). */
function tscEmit(dir: string): string[] {
  const config = join(dir, 'tsconfig.json');
  writeFileSync(config, JSON.stringify({
    extends: join(REPO_ROOT, 'tsconfig.json'),
    compilerOptions: { noEmit: false, outDir: join(dir, 'out'), rootDir: REPO_ROOT, rewriteRelativeImportExtensions: true, types: [], typeRoots: [join(REPO_ROOT, 'node_modules/@types')] },
    include: [join(REPO_ROOT, 'src')],
  }));
  spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', config], { stdio: 'ignore' });
  const out = join(dir, 'out');
  cpSync(join(REPO_ROOT, 'schemas'), join(out, 'schemas'), { recursive: true });
  mkdirSync(join(out, 'src/serve/dashboard'), { recursive: true });
  for (const f of ['index.html', 'app.js']) cpSync(join(REPO_ROOT, 'src/serve/dashboard', f), join(out, 'src/serve/dashboard', f));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(out, 'node_modules'));
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  return [process.execPath, join(out, 'src/cli/main.js')];
}

export async function run(): Promise<void> {
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/build-release.mjs')], { cwd: REPO_ROOT, stdio: 'inherit' });
  const work = mkdtempSync(join(tmpdir(), 'forseti-bench-startup-'));
  try {
    const forms: Array<[string, string[]]> = [
      ['source (node + tsx)', [process.execPath, join(REPO_ROOT, 'bin/forseti.js')]],
      ['tsc emit (node, one file per module)', tscEmit(work)],
      ['bundle (node dist/forseti.cjs)', [process.execPath, join(REPO_ROOT, 'dist/forseti.cjs')]],
      ['single executable (dist/forseti)', [join(REPO_ROOT, 'dist/forseti')]],
    ];
    const commands: Array<[string, string[]]> = [
      ['--help', ['--help']],
      ['validate lab-repo-template', ['validate', join(REPO_ROOT, 'lab-repo-template')]],
    ];
    const floor: number[] = [];
    const times = new Map<string, number[]>();
    for (let round = 0; round < ROUNDS; round++) {
      floor.push(timeOnce([process.execPath, '-e', '0']));
      for (const [form, prefix] of forms) {
        for (const [name, args] of commands) {
          const key = `${form}\0${name}`;
          times.set(key, [...(times.get(key) ?? []), timeOnce([...prefix, ...args])]);
        }
      }
    }
    const size = statSync(join(REPO_ROOT, 'dist/forseti')).size;
    const bundle = statSync(join(REPO_ROOT, 'dist/forseti.cjs')).size;
    process.stdout.write(`single executable ${(size / 1048576).toFixed(1)} MiB (Node ${process.version}); bundle ${(bundle / 1024).toFixed(0)} KiB\n`);
    process.stdout.write(`node -e 0 (Node's own start): ${median(floor).toFixed(0)} ms (min ${Math.min(...floor).toFixed(0)}), medians of ${ROUNDS}\n`);
    for (const [name] of commands) {
      const reference = median(times.get(`${forms[0]?.[0]}\0${name}`) ?? []);
      process.stdout.write(`\nforseti ${name}\n`);
      for (const [form] of forms) {
        const all = times.get(`${form}\0${name}`) ?? [];
        const m = median(all);
        process.stdout.write(`  ${form.padEnd(40)} ${m.toFixed(0).padStart(5)} ms (min ${Math.min(...all).toFixed(0)})  ${(reference / m).toFixed(2)}x the source run's speed\n`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
