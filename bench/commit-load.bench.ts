// How long one load (validate, plan, the agent's apply) takes on the worst labs a commit can build within the caps
// (1 MiB a file, 64 MiB a lab; bench/lib/hostile-lab.ts: one lab per thing the loader does with commit text), in
// seconds and as a ratio to a normal lab of the same size measured in the same run. Each load runs in a fresh
// process. The tests count that the work is linear (test/security-commit-load.test.ts); this puts seconds on it.
// FORSETI_BENCH_LAB_MIB sets the size (default 64).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FILE_BYTES, HOSTILE_KINDS, writeHostileLab, writeNormalLab } from './lib/hostile-lab.ts';

const CHILD = fileURLToPath(new URL('./lib/load-child.ts', import.meta.url));
const MiB = 1024 * 1024;

interface Load {
  ms: number;
  valid: boolean;
  problems: number;
  first: string;
  last: string;
  maxRssMB: number;
}

function timedLoad(write: (dir: string) => number): { bytes: number; load: Load } {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-bench-commit-load-'));
  try {
    const bytes = write(dir);
    const out = execFileSync(process.execPath, ['--import', 'tsx', CHILD, dir], { encoding: 'utf8', maxBuffer: 16 * MiB });
    return { bytes, load: JSON.parse(out.trim().split('\n').pop() ?? '{}') as Load };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<void> {
  const labMiB = Number(process.env['FORSETI_BENCH_LAB_MIB'] ?? 64);
  const files = Math.max(1, labMiB - 1); // the lab's own files take the rest of the cap
  const normal = timedLoad((dir) => writeNormalLab(dir, files * FILE_BYTES).bytes);
  const perMiB = (r: { bytes: number; load: Load }): number => r.load.ms / (r.bytes / MiB);
  process.stdout.write(
    `normal lab: ${(normal.bytes / MiB).toFixed(1)} MiB of ~1 KB host files, ${normal.load.valid ? 'valid' : `${normal.load.problems} problems`}: ${(normal.load.ms / 1000).toFixed(2)} s (${perMiB(normal).toFixed(0)} ms/MiB), RSS ${normal.load.maxRssMB.toFixed(0)} MB\n`,
  );
  let worst = { name: '', seconds: 0, ratio: 0 };
  for (const kind of HOSTILE_KINDS) {
    const r = timedLoad((dir) => writeHostileLab(dir, kind, files));
    const ratio = r.load.ms / normal.load.ms;
    if (r.load.ms / 1000 > worst.seconds) worst = { name: kind.name, seconds: r.load.ms / 1000, ratio };
    process.stdout.write(
      `${kind.name}: ${(r.bytes / MiB).toFixed(1)} MiB, ${r.load.problems} problems shown: ${(r.load.ms / 1000).toFixed(2)} s (${ratio.toFixed(2)}x the normal lab, ${perMiB(r).toFixed(0)} ms/MiB), RSS ${r.load.maxRssMB.toFixed(0)} MB; ${kind.what}\n`,
    );
  }
  process.stdout.write(`worst: ${worst.name}, ${worst.seconds.toFixed(2)} s, ${worst.ratio.toFixed(2)}x the normal lab of the same size\n`);
}
