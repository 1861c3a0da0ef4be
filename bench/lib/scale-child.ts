// Runs in a fresh process: cold load + validate + render + write of a generation, then one host changed.
import { writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLab } from '../../src/model/load.ts';
import { writeGeneration } from '../../src/render/generation.ts';
import { AgentUrls } from '../../src/render/urls.ts';
import { hostYaml } from './generate-lab.ts';

const dir = process.argv[2] ?? '';
const state = mkdtempSync(join(tmpdir(), 'forseti-bench-state-'));
async function once(revision: string): Promise<number> {
  const t0 = performance.now();
  const { lab, problems } = await loadLab(dir);
  if (!lab) throw new Error(problems.slice(0, 3).map((p) => p.message).join('; '));
  await writeGeneration(state, { lab, urls: new AgentUrls(lab.site), revision, token: (h) => `t-${h}` });
  return performance.now() - t0;
}
const cold = await once('a'.repeat(40));
const rss = process.resourceUsage().maxRSS / 1024;
writeFileSync(join(dir, 'hosts', 'h7.yaml'), hostYaml(7, 'openstack-compute'));
const oneHost = await once('b'.repeat(40));
rmSync(state, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify({ coldMs: cold, maxRssMB: rss, oneHostMs: oneHost })}\n`);
