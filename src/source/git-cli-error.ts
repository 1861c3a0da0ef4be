/** A git command line run that failed: the command and git's own words (credentials taken out). */
export class GitCliError extends Error {
  override readonly name = 'GitCliError';
  constructor(readonly args: readonly string[], reason: string) {
    super(`git ${args[0] ?? ''} failed: ${reason}`);
  }
}
