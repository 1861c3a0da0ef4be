// What every convergence signal reduces to: the steps a host went through on that signal, where it is now, and
// whether the signal says Converged or Failed. Pure data; times are ms since the epoch on the agent's clock.

export interface ConvergeStep {
  name: string;
  /** When the step began (the agent's clock, when the event arrived). */
  at: number;
  /** What the step is waiting on or reported (unmet conditions, an installer's description). */
  detail?: string;
  /** For start/finish pairs: when it finished and how. */
  finishedAt?: number;
  result?: 'SUCCESS' | 'WARN' | 'FAIL';
}

export type SignalStatus = 'waiting' | 'in-progress' | 'converged' | 'failed';

export interface SignalFailure {
  /** The step the host was at (or the event that failed). */
  step: string;
  reason: string;
  at: number;
}

export interface SignalState {
  status: SignalStatus;
  /** Oldest first, at most MAX_STEPS (the oldest are dropped). */
  steps: ConvergeStep[];
  /** The step the host is at now, with what it waits on. */
  current?: ConvergeStep;
  /** The last time something changed on this signal: a new step, a new detail, a result. */
  progressAt?: number;
  convergedAt?: number;
  failure?: SignalFailure;
}

export const MAX_STEPS = 100;
/** Longest detail kept on a step. */
export const MAX_DETAIL = 512;

export const waitingSignal = (): SignalState => ({ status: 'waiting', steps: [] });

export function clip(text: string, max = MAX_DETAIL): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * The signal with `step` as its current step: a new step when the name differs from the current one, else the
 * current step with the new detail. Unchanged input gives the same object back, so a caller can tell.
 */
export function enterStep<S extends SignalState>(state: S, name: string, at: number, detail?: string): S {
  const d = detail === undefined || detail === '' ? undefined : clip(detail);
  const cur = state.current;
  if (cur !== undefined && cur.name === name) {
    if (cur.detail === d) return state;
    const updated = withDetail(cur, d);
    return { ...state, current: updated, steps: [...state.steps.slice(0, -1), updated], progressAt: at };
  }
  const step: ConvergeStep = d === undefined ? { name, at } : { name, at, detail: d };
  const steps = [...state.steps, step];
  return {
    ...state,
    steps: steps.length > MAX_STEPS ? steps.slice(steps.length - MAX_STEPS) : steps,
    current: step,
    progressAt: at,
    status: state.status === 'waiting' ? 'in-progress' : state.status,
  };
}

function withDetail(step: ConvergeStep, detail: string | undefined): ConvergeStep {
  const { detail: _old, ...rest } = step;
  return detail === undefined ? rest : { ...rest, detail };
}

/** Converged once; a later Converged keeps the first time. A failed signal stays failed. */
export function converge<S extends SignalState>(state: S, at: number): S {
  if (state.status === 'converged' || state.status === 'failed') return state;
  return { ...state, status: 'converged', convergedAt: at, progressAt: at };
}

/** The first failure wins and stays; a converged signal is not failed afterwards. */
export function fail<S extends SignalState>(state: S, failure: SignalFailure): S {
  if (state.status === 'failed' || state.status === 'converged') return state;
  return { ...state, status: 'failed', failure: { ...failure, reason: clip(failure.reason) }, progressAt: failure.at };
}
