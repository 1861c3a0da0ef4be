// Loads a lab repository working tree: parse every document, check it against its JSON Schema,
// build the model, then run the checks that span files. Reports every problem, never just the first.
// One-shot callers (validate, plan, render) use `loadLab`; the agent keeps a `LabLoader` across commits.

import { LabInvalidError } from './errors.ts';
import { LabLoader, type LabLoaderOptions, type LoadResult } from './incremental.ts';
import type { Lab } from './types.ts';

export { formatProblem } from './problems.ts';
export { LabLoader, type LabLoaderOptions, type LoadResult } from './incremental.ts';

export async function loadLab(dir: string, options: LabLoaderOptions = {}): Promise<LoadResult> {
  return new LabLoader(options).load(dir);
}

/** Like `loadLab`, but throws LabInvalidError listing every problem. */
export async function loadLabOrThrow(dir: string, options: LabLoaderOptions = {}): Promise<Lab> {
  const { lab, problems } = await loadLab(dir, options);
  if (!lab) throw new LabInvalidError(dir, problems);
  return lab;
}
