import type { AuthCallback } from 'isomorphic-git';

export interface GitCredentials {
  username: string;
  password: string;
}

/**
 * onAuth for isomorphic-git. No onAuthFailure on purpose: a rejected second attempt then surfaces as
 * HttpError 401 instead of a retry loop or an opaque "operation was canceled".
 */
export function authCallbacks(auth: GitCredentials | undefined): { onAuth?: AuthCallback } {
  if (!auth) return {};
  return { onAuth: () => ({ username: auth.username, password: auth.password }) };
}
