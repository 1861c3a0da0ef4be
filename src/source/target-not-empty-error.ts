export class TargetNotEmptyError extends Error {
  override readonly name = 'TargetNotEmptyError';
  constructor(readonly dir: string) {
    super(`refusing to write a revision into non-empty directory ${dir}`);
  }
}
