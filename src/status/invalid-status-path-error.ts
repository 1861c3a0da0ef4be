export class InvalidStatusPathError extends Error {
  override readonly name = 'InvalidStatusPathError';
  constructor(readonly path: string) {
    super(`invalid status file path: ${JSON.stringify(path)}`);
  }
}
