/** A LabLoader was asked for a result before a load succeeded (a bug in the loader or its caller). */
export class NothingLoadedError extends Error {
  override readonly name = 'NothingLoadedError';
  constructor(readonly dir: string | null) {
    super(`LabLoader: nothing loaded${dir === null ? '' : ` from ${dir}`}`);
  }
}
