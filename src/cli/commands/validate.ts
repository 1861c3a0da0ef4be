import { resolve } from 'node:path';
import { formatProblem, loadLab } from '../../model/load.ts';
import { parseArgs } from '../args.ts';
import { labLimitsFromArgs } from '../lab-limit-flags.ts';

export async function validateCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const dir = resolve(args.positional[0] ?? '.');
  const { lab, problems } = await loadLab(dir, { limits: labLimitsFromArgs(args) });
  for (const p of problems) process.stdout.write(`${formatProblem(p)}\n`);
  if (!lab) {
    process.stderr.write(`${problems.length} problem${problems.length === 1 ? '' : 's'} found\n`);
    return 1;
  }
  process.stderr.write(`lab is valid: ${lab.hosts.size} hosts, ${lab.profiles.size} profiles, ${lab.images.size} images\n`);
  return 0;
}
