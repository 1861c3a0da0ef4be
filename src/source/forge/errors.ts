// Why a forge request failed, one class per kind; each names the forge, the repository and the request, and none
// carries the token (every message went through the redactor first).

/** The forge refused the token: 401, or 403 (no permission on the repository, or a token without the scope). */
export class ForgeAuthError extends Error {
  override readonly name = 'ForgeAuthError';
  constructor(readonly forge: string, readonly request: string, readonly status: number, detail: string) {
    super(`${forge}: ${request}: HTTP ${status}, the token was refused${detail ? `: ${detail}` : ''}`);
  }
}

/** Nothing answered in time: connection refused, DNS, TLS, the timeout. */
export class ForgeUnreachableError extends Error {
  override readonly name = 'ForgeUnreachableError';
  constructor(readonly forge: string, readonly request: string, detail: string) {
    super(`${forge}: ${request}: ${detail}`);
  }
}

/** The forge answered, but not as its API documents: an unexpected status, an answer too large or not JSON. */
export class ForgeAnswerError extends Error {
  override readonly name = 'ForgeAnswerError';
  constructor(readonly forge: string, readonly request: string, readonly status: number | undefined, detail: string) {
    super(`${forge}: ${request}: ${status !== undefined ? `HTTP ${status}` : 'answer'}${detail ? `: ${detail}` : ''}`);
  }
}
