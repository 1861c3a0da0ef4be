// The steps of an end-to-end test run in the order they are declared (node:test runs a file's tests one after the
// other), each on the lab the steps before it left. What one step hands to a later one (a revision, say) goes through
// here by name, so the dependence is written down: a step whose input an earlier step did not make (that step
// failed) fails at once and says which input it lacks, instead of failing in some other way for its sake.
export interface OrderedSteps {
  /** The value an earlier step made under `name`. */
  need<T>(name: string): T;
  /** Hands `value` to later steps under `name`; returns it. */
  made<T>(name: string, value: T): T;
}

export function orderedSteps(): OrderedSteps {
  const values = new Map<string, unknown>();
  return {
    need<T>(name: string): T {
      if (!values.has(name)) throw new Error(`this step needs "${name}" from an earlier step, which did not pass`);
      return values.get(name) as T;
    },
    made<T>(name: string, value: T): T {
      values.set(name, value);
      return value;
    },
  };
}
