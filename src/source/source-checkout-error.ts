/** Writing the working tree for a fetched commit failed; the next sync checks it out again from scratch. */
export class SourceCheckoutError extends Error {
  override readonly name = 'SourceCheckoutError';
  constructor(
    readonly commit: string,
    reason: string,
  ) {
    super(`checking out ${commit} failed: ${reason}`);
  }
}
