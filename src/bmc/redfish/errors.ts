// Failures of Redfish requests, one class per kind. Each names the BMC ("address:port") and the request
// ("GET /redfish/v1/Systems"); none carries the password, the session token or the Authorization header.

abstract class RedfishError extends Error {
  constructor(
    readonly bmc: string,
    readonly request: string,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`Redfish ${bmc}: ${request}: ${detail}`, options);
  }
}

/** Nothing answered (refused, timed out, reset), after the client's retries. */
export class RedfishUnreachableError extends RedfishError {
  override readonly name = 'RedfishUnreachableError';
  constructor(bmc: string, request: string, detail: string, readonly attempts: number, options?: { cause?: unknown }) {
    super(bmc, request, `unreachable after ${attempts} attempt(s): ${detail}`, options);
  }
}

/** The BMC's certificate was not trusted (chain, name or pinned fingerprint), or the TLS handshake failed. */
export class RedfishTlsError extends RedfishError {
  override readonly name = 'RedfishTlsError';
}

/** The credentials were refused: login failed, or 401 again after logging in anew. */
export class RedfishAuthError extends RedfishError {
  override readonly name = 'RedfishAuthError';
}

/** The BMC answered with an HTTP error (after busy retries, for 503/429). */
export class RedfishHttpError extends RedfishError {
  override readonly name = 'RedfishHttpError';
  constructor(bmc: string, request: string, readonly status: number, detail: string, options?: { cause?: unknown }) {
    super(bmc, request, `HTTP ${status}${detail ? `: ${detail}` : ''}`, options);
  }
}

/**
 * The answer was refused unread: larger than the client's cap, or JSON nested deeper than its cap. A hostile or broken
 * BMC can stream gigabytes within the request timeout; the client keeps what it reads bounded instead.
 */
export class RedfishAnswerRefusedError extends RedfishError {
  override readonly name = 'RedfishAnswerRefusedError';
}

/** The service answered, but without what Redfish promises: no system, no reset action, a malformed resource. */
export class RedfishServiceError extends RedfishError {
  override readonly name = 'RedfishServiceError';
}
