/** A status file on the status branch does not have the expected shape. */
export class StatusParseError extends Error {
  override readonly name = 'StatusParseError';
  constructor(
    readonly kind: 'host' | 'site',
    reason: string,
  ) {
    super(`invalid ${kind} status: ${reason}`);
  }
}
