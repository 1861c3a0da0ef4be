/** Status could not be committed to the remote; the files stay queued and go out with the next flush. */
export class StatusPushError extends Error {
  override readonly name = 'StatusPushError';
  constructor(
    readonly url: string,
    readonly branch: string,
    readonly attempts: number,
    reason: string,
  ) {
    super(`pushing status to ${url} (branch ${branch}) failed after ${attempts} attempt(s): ${reason}`);
  }
}
