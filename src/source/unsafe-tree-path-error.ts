/** A tree entry whose path would land outside the working tree (`..` segments, an absolute path). */
export class UnsafeTreePathError extends Error {
  override readonly name = 'UnsafeTreePathError';
  constructor(readonly path: string, readonly dir: string) {
    super(`tree path "${path}" resolves outside the working tree ${dir}`);
  }
}
