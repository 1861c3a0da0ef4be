/** Fetching the lab repository failed. Carries the URL without credentials; the last checked-out tree is untouched. */
export class SourceFetchError extends Error {
  override readonly name = 'SourceFetchError';
  constructor(
    readonly url: string,
    readonly branch: string,
    reason: string,
  ) {
    super(`fetching ${url} (branch ${branch}) failed: ${reason}`);
  }
}
