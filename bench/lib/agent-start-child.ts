// Runs the agent in a fresh process for the cold-start benchmark: argv[2] is a JSON AgentConfig. Prints one JSON line:
// when the first commit was applied (the generation served) and when start() resolved (every host's state and
// history restored), both from before the agent was made and from the process's own start (module loading
// included); the RSS then and `steadyMs` later. It exits without stopping the agent, as a crash would.
import { Writable } from 'node:stream';
import { Agent } from '../../src/agent/agent.ts';
import type { AgentConfig } from '../../src/agent/config.ts';
import { createLogger } from '../../src/log.ts';
import { capYoungGeneration } from '../../src/cli/young-generation.ts';

const config = JSON.parse(process.argv[2] ?? '{}') as AgentConfig;
const steadyMs = Number(process.argv[3] ?? 0);
const t0 = performance.now();
let appliedMs = NaN;
const marks: Record<string, number> = {};
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const text of chunk.toString('utf8').split('\n')) {
      if (!text) continue;
      const line = JSON.parse(text) as { msg?: string; level?: number };
      if (process.env.FORSETI_BENCH_VERBOSE && (line.level ?? 0) >= 40) process.stderr.write(`${text}\n`);
      if (line.msg === 'commit applied' && Number.isNaN(appliedMs)) appliedMs = performance.now() - t0;
      if (line.msg && !line.msg.startsWith('manual action') && !(line.msg in marks)) marks[line.msg] = Math.round(performance.now() - t0);
    }
    done();
  },
});
capYoungGeneration(); // as `forseti agent` does
const agent = new Agent(config, createLogger({ level: 'info', destination: sink }));
await agent.start();
const startMs = performance.now() - t0;
const rssMB = process.memoryUsage().rss / 1048576;
if (agent.current === null) throw new Error('the agent serves no generation');
await new Promise((r) => setTimeout(r, steadyMs));
const steadyRssMB = process.memoryUsage().rss / 1048576;
process.stdout.write(`${JSON.stringify({ appliedMs, startMs, loadMs: t0, rssMB, steadyRssMB, marks })}\n`);
process.exit(0);
