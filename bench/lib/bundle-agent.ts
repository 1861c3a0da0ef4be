// The release bundle (`node dist/forseti.cjs agent --config FILE`, built by scripts/build-release.mjs) as the
// footprint benchmarks run it: its RSS `idleMs` after the first commit is applied, then stopped.
import { join } from 'node:path';
import { footprint } from './footprint.ts';
import { REPO_ROOT, startDaemon } from './proc.ts';

/** `nodeFlags`: V8 and Node flags for the agent's process (e.g. `--max-semi-space-size=1`). */
export async function bundleRss(configFile: string, idleMs: number, nodeFlags: string[] = []): Promise<number> {
  const agent = startDaemon('forseti agent (bundle)', [process.execPath, ...nodeFlags, join(REPO_ROOT, 'dist/forseti.cjs'), 'agent', '--config', configFile]);
  try {
    const deadline = Date.now() + 120_000;
    while (!agent.output().includes('"commit applied"')) {
      if (Date.now() > deadline) throw new Error(`the bundled agent applied no commit: ${agent.output().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, idleMs));
    return footprint([agent.pid ?? 0]).rssMiB;
  } finally {
    await agent.stop();
  }
}
