// The named steps of applying one commit, in their order, each with its error type. A commit is applied whole or
// rejected whole: a step that fails rolls back the steps before it (in reverse), the previous generation keeps
// serving, and the commit is recorded rejected once, with the step and the reason. Only `act` cannot be undone
// (a power cycle happened), so it comes last, once the commit is recorded applied.
//
//   fetch     the lab branch's head into the working tree           (src/source)     rollback: none
//   load      validate the commit, open its secrets                  (src/model)      rollback: none; the loader starts over
//   render    download its images, write its generation              (src/render)     rollback: `current` back to the served one
//   services  bring DHCP, TFTP and HTTP to what site.yaml asks       (src/serve)      rollback: the previous servers back
//   switch    last-good written, the generation served from now on   (src/agent)      rollback: the previous generation back
//   decide    the reconcile decision for every host                  (src/plan)       rollback: none (pure)
//   publish   record it applied: status branch, metrics, alerts      (src/status)     rollback: none needed (in memory)
//   act       hand the decided actions to the executor               (src/bmc)        rollback: none possible
//
// Each failure kind has its error type, carrying what it concerns: FetchStepError (the refused path), LoadStepError
// (the problems), RenderStepError (the image), ServicesStepError (the service and port), SwitchStepError (the state
// file); decide, publish and act can fail only by a fault of forseti itself, AgentStepError with the step.

import { errorMessage } from '../core/errors.ts';
import { formatProblem } from '../model/problems.ts';
import type { LabProblem } from '../model/types.ts';
import type { ServiceBindError } from '../serve/boot-services.ts';

export const COMMIT_STEPS = ['fetch', 'load', 'render', 'services', 'switch', 'decide', 'publish', 'act'] as const;
export type CommitStep = (typeof COMMIT_STEPS)[number];

/** A step of applying `commit` failed; `reasons` are what the status branch records (`file:line:col: message` for load). */
export abstract class CommitStepError extends Error {
  abstract readonly step: CommitStep;
  constructor(readonly commit: string, readonly reasons: readonly string[], options?: { cause?: unknown }) {
    super(`commit ${commit.slice(0, 12)}: ${reasons.join('; ')}`, options);
  }
}

/** The lines of what went wrong, for the status branch: a multi-line message (every host that failed) one each. */
function linesOf(err: unknown): string[] {
  return errorMessage(err).split('\n').filter((line) => line !== '');
}

/** The head's tree holds a path forseti will not write (`..`, `.git`, a control character): refused as it is fetched. */
export class FetchStepError extends CommitStepError {
  override readonly name = 'FetchStepError';
  readonly step = 'fetch';
  constructor(commit: string, readonly path: string, problem: string, options?: { cause?: unknown }) {
    super(commit, [problem], options);
  }
}

/** The commit is not a valid lab: every problem, at its `file:line:col`. */
export class LoadStepError extends CommitStepError {
  override readonly name = 'LoadStepError';
  readonly step = 'load';
  constructor(commit: string, readonly problems: readonly LabProblem[]) {
    super(commit, problems.map(formatProblem));
  }
}

/** An image could not be downloaded or verified (`image` names it), a host not rendered, or the generation not written. */
export class RenderStepError extends CommitStepError {
  override readonly name = 'RenderStepError';
  readonly step = 'render';
  readonly image: string | undefined;
  constructor(commit: string, cause: unknown) {
    super(commit, linesOf(cause), { cause });
    const image = (cause as { image?: unknown } | null)?.image;
    this.image = typeof image === 'string' ? image : undefined;
  }
}

/** A boot service could not take its port or address (`service`, `port` from the bind error). */
export class ServicesStepError extends CommitStepError {
  override readonly name = 'ServicesStepError';
  readonly step = 'services';
  constructor(commit: string, readonly bind: ServiceBindError | undefined, cause: unknown) {
    super(commit, linesOf(cause), { cause });
  }
}

/** The switch could not be made durable: `file` (last-good) not written, a full disk say; nothing switched. */
export class SwitchStepError extends CommitStepError {
  override readonly name = 'SwitchStepError';
  readonly step = 'switch';
  constructor(commit: string, readonly file: string, cause: unknown) {
    super(commit, [`${file}: ${errorMessage(cause)}`], { cause });
  }
}

/**
 * The reconcile decision, the record of the commit or the hand-over of its actions failed: a fault of forseti
 * itself rather than of the commit, named by its step (decide, publish, act).
 */
export class AgentStepError extends CommitStepError {
  override readonly name = 'AgentStepError';
  constructor(readonly step: 'decide' | 'publish' | 'act', commit: string, cause: unknown) {
    super(commit, linesOf(cause), { cause });
  }
}
