// Why a discovery run stopped before proposing anything, or could not write what it proposed. Each names the BMC,
// lab or branch it concerns; none carries a password.

/** The BMC or enclosure manager refused the credential. */
export class DiscoveryAuthError extends Error {
  override readonly name = 'DiscoveryAuthError';
  constructor(readonly bmc: string, readonly credential: string, detail: string, options?: { cause?: unknown }) {
    super(`${bmc} refused the credential "${credential}": ${detail}`, options);
  }
}

/** Nothing answered at the address as the BMC kind asked for, or it stopped answering. */
export class DiscoveryUnreachableError extends Error {
  override readonly name = 'DiscoveryUnreachableError';
  constructor(readonly bmc: string, detail: string, options?: { cause?: unknown }) {
    super(`${bmc}: ${detail}`, options);
  }
}

/** The BMC answered, but not with what discovery needs (no systems, an answer it cannot read). */
export class DiscoveryAnswerError extends Error {
  override readonly name = 'DiscoveryAnswerError';
  constructor(readonly bmc: string, detail: string, options?: { cause?: unknown }) {
    super(`${bmc}: ${detail}`, options);
  }
}

/** `--branch NAME` names a branch that exists (or the repository's main line): proposals go on a new branch only. */
export class BranchRefusedError extends Error {
  override readonly name = 'BranchRefusedError';
  constructor(readonly branch: string, why: string) {
    super(`branch ${branch}: ${why}`);
  }
}

/** A proposed file's path exists already: host files are never overwritten. */
export class FileExistsError extends Error {
  override readonly name = 'FileExistsError';
  constructor(readonly path: string) {
    super(`${path} exists: a host file is never overwritten`);
  }
}
