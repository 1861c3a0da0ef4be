export class NotAGitRepositoryError extends Error {
  override readonly name = 'NotAGitRepositoryError';
  constructor(readonly dir: string) {
    super(`${dir} is not a git repository (forseti plan compares two commits of the lab repository)`);
  }
}
