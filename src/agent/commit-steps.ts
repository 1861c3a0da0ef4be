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

import { errorMessage } from '../core/errors.ts';

export const COMMIT_STEPS = ['fetch', 'load', 'render', 'services', 'switch', 'decide', 'publish', 'act'] as const;
export type CommitStep = (typeof COMMIT_STEPS)[number];

/** A step of applying `commit` failed; `reasons` are what the status branch records (`file:line:col: message` for load). */
export abstract class CommitStepError extends Error {
  abstract readonly step: CommitStep;
  constructor(readonly commit: string, readonly reasons: readonly string[], options?: { cause?: unknown }) {
    super(`commit ${commit.slice(0, 12)}: ${reasons.join('; ')}`, options);
  }
}

/** The lab branch could not be fetched, or its head's tree is refused (a path forseti will not write). */
export class FetchStepError extends CommitStepError {
  override readonly name = 'FetchStepError';
  readonly step = 'fetch';
}

/** The commit is not a valid lab, or its secrets cannot be opened. */
export class LoadStepError extends CommitStepError {
  override readonly name = 'LoadStepError';
  readonly step = 'load';
}

/** An image could not be downloaded or verified, a host could not be rendered, or the generation not written. */
export class RenderStepError extends CommitStepError {
  override readonly name = 'RenderStepError';
  readonly step = 'render';
}

/** A boot service could not take its port or address. */
export class ServicesStepError extends CommitStepError {
  override readonly name = 'ServicesStepError';
  readonly step = 'services';
}

/** The switch to the new generation could not be made durable (last-good not written: a full disk, say). */
export class SwitchStepError extends CommitStepError {
  override readonly name = 'SwitchStepError';
  readonly step = 'switch';
}

/** The reconcile decision failed for the new generation. */
export class DecideStepError extends CommitStepError {
  override readonly name = 'DecideStepError';
  readonly step = 'decide';
}

/** The commit could not be recorded applied. */
export class PublishStepError extends CommitStepError {
  override readonly name = 'PublishStepError';
  readonly step = 'publish';
}

/** A decided action could not be handed to the executor; the commit stays applied, the host's state says the rest. */
export class ActStepError extends CommitStepError {
  override readonly name = 'ActStepError';
  readonly step = 'act';
}

const ERRORS: Readonly<Record<CommitStep, new (commit: string, reasons: readonly string[], options?: { cause?: unknown }) => CommitStepError>> = Object.freeze({
  fetch: FetchStepError,
  load: LoadStepError,
  render: RenderStepError,
  services: ServicesStepError,
  switch: SwitchStepError,
  decide: DecideStepError,
  publish: PublishStepError,
  act: ActStepError,
});

/** The error of `step` for a failure that is not one yet; one of them already is passed through. */
export function stepError(step: CommitStep, commit: string, err: unknown): CommitStepError {
  if (err instanceof CommitStepError) return err;
  const message = errorMessage(err);
  return new ERRORS[step](commit, message.split('\n').filter((line) => line !== ''), { cause: err });
}
