// Product-facing BMC failures, one class per kind. Each names the host and its BMC
// ("address:port"); none ever carries a password.

abstract class BmcError extends Error {
  constructor(
    readonly host: string,
    readonly bmc: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`host ${host} (BMC ${bmc}): ${message}`, options);
  }
}

/** Nothing answered at the BMC's address, after the driver's retries. */
export class BmcUnreachableError extends BmcError {
  override readonly name = 'BmcUnreachableError';
}

/** The BMC answered but refused our credentials (or session parameters such as the cipher suite). */
export class BmcAuthError extends BmcError {
  override readonly name = 'BmcAuthError';
}

/** The BMC's certificate could not be trusted, or no TLS session could be set up. */
export class BmcTlsError extends BmcError {
  override readonly name = 'BmcTlsError';
}

/** The BMC accepted the session but the command failed. */
export class BmcCommandError extends BmcError {
  override readonly name = 'BmcCommandError';
  constructor(host: string, bmc: string, readonly command: string, detail: string, options?: { cause?: unknown }) {
    super(host, bmc, `${command} failed: ${detail}`, options);
  }
}

/** A boot override was written but reading it back showed something else. */
export class BootOverrideNotAppliedError extends BmcError {
  override readonly name = 'BootOverrideNotAppliedError';
}

/** A power command was accepted but the chassis did not reach the state within the polling bound. */
export class PowerStateNotReachedError extends BmcError {
  override readonly name = 'PowerStateNotReachedError';
  constructor(host: string, bmc: string, readonly wanted: 'on' | 'off', readonly last: string) {
    super(host, bmc, `power did not reach "${wanted}" (last read "${last}")`);
  }
}
