// Load + validate + render (+ write the generation) of generated labs of 1,000 and 10,000 hosts, from cold in a
// fresh process, then commits that change one host each, applied incrementally as the agent does (LabLoader.update
// with the changed paths, GenerationWriter reusing unchanged hosts and shards). Printed as ratios to the targets of
// issue 5: 10k hosts in at most 2 s and 300 MB RSS, a one-host change within 100 ms.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateLab } from './lib/generate-lab.ts';
import { median } from './lib/proc.ts';

const CHILD = fileURLToPath(new URL('./lib/scale-child.ts', import.meta.url));

export async function run(): Promise<void> {
  for (const hosts of [1000, 10000]) {
    const dir = mkdtempSync(join(tmpdir(), 'forseti-bench-lab-'));
    try {
      generateLab(dir, hosts);
      const out = execFileSync(process.execPath, ['--import', 'tsx', CHILD, dir, '7'], { encoding: 'utf8' });
      const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { coldMs: number; maxRssMB: number; oneHostMs: number[] };
      const one = median(r.oneHostMs);
      const line = [
        `${hosts} hosts: cold ${(r.coldMs / 1000).toFixed(2)} s (${(r.coldMs / 2000).toFixed(2)}x the 2 s target)`,
        `max RSS ${r.maxRssMB.toFixed(0)} MB (${(r.maxRssMB / 300).toFixed(2)}x the 300 MB target)`,
        `one host changed ${one.toFixed(1)} ms median of ${r.oneHostMs.length}, ${Math.min(...r.oneHostMs).toFixed(1)}-${Math.max(...r.oneHostMs).toFixed(1)} ms (${(one / 100).toFixed(2)}x the 100 ms target)`,
      ];
      process.stdout.write(`${line.join('; ')}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
