// The source-run baseline of the footprint benchmark: Node with the tsx loader and every module the agent loads,
// doing nothing. Prints its RSS after `argv[2]` ms.
import '../../src/agent/agent.ts';

await new Promise((r) => setTimeout(r, Number(process.argv[2] ?? 0)));
process.stdout.write(`${JSON.stringify({ rssMB: process.memoryUsage().rss / 1048576 })}\n`);
process.exit(0);
