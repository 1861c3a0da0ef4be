/** A sink names a credential the agent cannot resolve. Names the sink and the credential, never a value. */
export class AlertCredentialMissingError extends Error {
  override readonly name = 'AlertCredentialMissingError';
  constructor(readonly sink: string, readonly credential: string, options?: { cause?: unknown }) {
    super(`alert sink ${sink}: credential "${credential}" cannot be resolved`, options);
  }
}

/** The alert state file in the state dir cannot be read as forseti wrote it. */
export class AlertStateCorruptError extends Error {
  override readonly name = 'AlertStateCorruptError';
  constructor(readonly file: string, detail: string) {
    super(`${file}: alert state unreadable: ${detail}`);
  }
}
