import git from 'isomorphic-git';
import { errorMessage } from '../core/errors.ts';

/** What went wrong talking to a Git server, in one line: the HTTP status where there is one. */
export function describeGitError(err: unknown): string {
  if (err instanceof git.Errors.HttpError) return `HTTP ${err.data.statusCode} ${err.data.statusMessage}`;
  return errorMessage(err);
}
