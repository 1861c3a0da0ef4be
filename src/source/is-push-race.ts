import git from 'isomorphic-git';

/**
 * True when the remote refused our ref update because the branch moved (or appeared) after we fetched:
 * isomorphic-git's own fast-forward check (PushRejectedError) or the server's report (GitPushError,
 * e.g. "failed to update ref" / "fetch first"). Fetching again and re-applying our files resolves both.
 */
export function isPushRace(err: unknown): boolean {
  if (err instanceof git.Errors.PushRejectedError) return true;
  if (err instanceof git.Errors.GitPushError) return true;
  const message = err instanceof Error ? err.message : '';
  return /failed to update ref|non-fast-forward|fetch first|stale info/i.test(message);
}
