// Helpers every error path uses. Error classes themselves follow one layout across src/ (test/code-shape.test.ts):
// `export class XError extends Error { override readonly name = 'XError'; constructor(readonly …) { super(…); } }`.

/** The message of anything thrown: an Error's message, else its string form. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The errno code of a system error (`ENOENT`, `ENOSPC`, …), or undefined for anything else. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
