// Runs in a fresh process: one whole load of the lab in argv[2], as validate, plan and the agent do it (LabLoader),
// timed from the first file read to the last problem; prints the time, the problems and the peak RSS as JSON.
import { LabLoader } from '../../src/model/incremental.ts';

const dir = process.argv[2] ?? '';
const t0 = performance.now();
const { lab, problems } = new LabLoader().load(dir);
const ms = performance.now() - t0;
process.stdout.write(`${JSON.stringify({ ms, valid: lab !== null, problems: problems.length, first: problems[0]?.message ?? '', last: problems.at(-1)?.message ?? '', maxRssMB: process.resourceUsage().maxRSS / 1024 })}\n`);
