// Runs in a fresh process, through the API the agent uses (LabLoader, GenerationWriter): a cold load + validate +
// render + write of a generation, then commits that change one host each, applied incrementally.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabLoader } from '../../src/model/incremental.ts';
import { GenerationWriter } from '../../src/render/generation.ts';
import { hostYaml } from './generate-lab.ts';

const dir = process.argv[2] ?? '';
const changes = Number(process.argv[3] ?? 7);
const state = mkdtempSync(join(tmpdir(), 'forseti-bench-state-'));
const loader = new LabLoader();
const writer = new GenerationWriter(state, (h) => `t-${h}`);

async function apply(revision: string, changed?: string[]): Promise<number> {
  const t0 = performance.now();
  const { lab, problems } = changed ? loader.update(dir, changed, revision) : loader.load(dir, revision);
  if (!lab) throw new Error(problems.slice(0, 3).map((p) => p.message).join('; '));
  await writer.write(lab, revision);
  return performance.now() - t0;
}

const cold = await apply('0'.repeat(40));
const maxRssMB = process.resourceUsage().maxRSS / 1024;
const roles = ['openstack-compute', 'talos-worker', 'slurm-compute'];
const oneHostMs: number[] = [];
for (let i = 1; i <= changes; i++) {
  const file = `hosts/h${i * 7}.yaml`;
  // alternately a new role (the host renders differently) and a new label (same artifacts, new host entity)
  const text = i % 2 ? hostYaml(i * 7, roles[i % roles.length] ?? 'talos-worker') : readFileSync(join(dir, file), 'utf8').replace(/rack: r\d+/, 'rack: moved');
  writeFileSync(join(dir, file), text);
  oneHostMs.push(await apply(String(i).repeat(40), [file]));
}
rmSync(state, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify({ coldMs: cold, maxRssMB, oneHostMs })}\n`);
