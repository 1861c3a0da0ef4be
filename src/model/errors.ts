import type { LabProblem } from './types.ts';
import { formatProblem } from './problems.ts';

/** Thrown by `loadLabOrThrow` when the lab repository has any problem; carries all of them. */
export class LabInvalidError extends Error {
  override readonly name = 'LabInvalidError';
  constructor(readonly dir: string, readonly problems: LabProblem[]) {
    super(`lab repository ${dir} has ${problems.length} problem(s):\n${problems.map(formatProblem).join('\n')}`);
  }
}
