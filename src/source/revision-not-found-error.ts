export class RevisionNotFoundError extends Error {
  override readonly name = 'RevisionNotFoundError';
  constructor(readonly revision: string) {
    super(`revision not found: ${revision}`);
  }
}
