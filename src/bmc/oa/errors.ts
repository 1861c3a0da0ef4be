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

/**
 * The OA's SSH host key is not the one pinned (`bmc.sshHostKey`) or first seen: the session was refused before the
 * password was sent. Someone may be posing as the OA; or the OA was replaced, or its key regenerated.
 */
export class OaHostKeyError extends OaError {
  override readonly name = 'OaHostKeyError';
  readonly seen: string;
  readonly expected: string;
  readonly how: 'pin-mismatch' | 'changed';
  constructor(oa: string, verdict: { how: 'pin-mismatch' | 'changed'; fingerprint: string; expected: string; firstSeen?: string }, store?: string) {
    const check = 'check the key on the OA itself (SHOW SSHFINGERPRINT on its console) or from a trusted path (ssh-keyscan | ssh-keygen -lf -)';
    const message = verdict.how === 'pin-mismatch'
      ? `SSH host key ${verdict.fingerprint} is not the pinned ${verdict.expected} (bmc.sshHostKey); refused before the password was sent. If the OA was replaced or re-keyed, ${check} and pin the new one`
      : `SSH host key CHANGED: ${verdict.fingerprint}, where ${verdict.expected} was first seen${verdict.firstSeen ? ` on ${verdict.firstSeen}` : ''}; refused before the password was sent: someone may be posing as the OA. If the OA was replaced or re-keyed, ${check}, then pin it with bmc.sshHostKey${store ? ` or remove the OA's entry from ${store}` : ''}`;
    super(oa, message);
    this.seen = verdict.fingerprint;
    this.expected = verdict.expected;
    this.how = verdict.how;
  }
}

/** The OA sent more than the session's cap without its prompt; the session was closed. */
export class OaOutputLimitError extends OaError {
  override readonly name = 'OaOutputLimitError';
  constructor(oa: string, readonly command: string, readonly limit: number) {
    super(oa, `"${command}": the OA sent more than ${limit} bytes without its prompt; the session was closed`);
  }
}

/** The OA answered a command with an error ("Error: …", "Invalid Arguments", "Bay 3 is empty"). */
export class OaCommandError extends OaError {
  override readonly name = 'OaCommandError';
  constructor(oa: string, readonly command: string, readonly detail: string) {
    super(oa, `"${command}" failed: ${detail}`);
  }
}
