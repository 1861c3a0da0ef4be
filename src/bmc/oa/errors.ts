// Failures of the Onboard Administrator's SSH command line, in protocol terms. Messages name the OA
// ("address:port") and the command; never a password.

abstract class OaError extends Error {
  constructor(readonly oa: string, message: string, options?: { cause?: unknown }) {
    super(`OA ${oa}: ${message}`, options);
  }
}

/** No SSH session could be opened (refused, unreachable, timed out), after the retries. */
export class OaUnreachableError extends OaError {
  override readonly name = 'OaUnreachableError';
  constructor(oa: string, readonly attempts: number, readonly detail: string, options?: { cause?: unknown }) {
    super(oa, `unreachable after ${attempts} attempt(s): ${detail}`, options);
  }
}

/** The OA refused the user name or password. */
export class OaAuthError extends OaError {
  override readonly name = 'OaAuthError';
  constructor(oa: string, readonly user: string, options?: { cause?: unknown }) {
    super(oa, `user "${user}" was refused (wrong user name or password)`, options);
  }
}

/**
 * The session dropped, or the OA did not come back with its prompt in time, while a command ran; `sent` false when
 * the command never left (the session was gone before).
 */
export class OaSessionLostError extends OaError {
  override readonly name = 'OaSessionLostError';
  constructor(oa: string, readonly command: string, readonly detail: string, readonly timedOut = false, readonly sent = true) {
    super(oa, `session lost during "${command}": ${detail}`);
  }
}

/** The OA answered a command with an error ("Error: …", "Invalid Arguments", "Bay 3 is empty"). */
export class OaCommandError extends OaError {
  override readonly name = 'OaCommandError';
  constructor(oa: string, readonly command: string, readonly detail: string) {
    super(oa, `"${command}" failed: ${detail}`);
  }
}
