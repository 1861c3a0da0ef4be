// Product-facing BMC failures, one class per kind. Each names the host and its BMC
// ("address:port"); none ever carries a password.
import type { BootOverride } from '../core/power.ts';

/** Every failure of a BMC operation: the command line exits 1 on any of them. */
export abstract class BmcError extends Error {
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

/**
 * The BMC's SSH host key is not the one pinned or first seen: it was not logged in to (the password was not sent).
 * Someone may be posing as the BMC.
 */
export class BmcHostKeyError extends BmcError {
  override readonly name = 'BmcHostKeyError';
}

/** The BMC accepted the session but the command failed. */
export class BmcCommandError extends BmcError {
  override readonly name = 'BmcCommandError';
  constructor(host: string, bmc: string, readonly command: string, detail: string, options?: { cause?: unknown }) {
    super(host, bmc, `${command} failed: ${detail}`, options);
  }
}

/**
 * A boot override was written but reading it back showed something else. The driver undoes what it can; `holds` is
 * what the BMC holds now as read back last (null: no override; undefined: not known), and the message says it too.
 */
export class BootOverrideNotAppliedError extends BmcError {
  override readonly name: string = 'BootOverrideNotAppliedError';
  readonly holds: BootOverride | null | undefined;
  constructor(host: string, bmc: string, message: string, options?: { cause?: unknown; holds?: BootOverride | null }) {
    super(host, bmc, message, options);
    this.holds = options?.holds;
  }
}

/**
 * The BMC took a one-time override but keeps it for every boot (it read back `Continuous`): it holds `holds` now.
 * Callers that can set the boot back afterwards use it as a persistent override (see src/bmc/executor.ts).
 */
export class BootOnceNotKeptError extends BootOverrideNotAppliedError {
  override readonly name = 'BootOnceNotKeptError';
  declare readonly holds: BootOverride;
  constructor(host: string, bmc: string, message: string, holds: BootOverride) {
    super(host, bmc, message, { holds });
  }
}

/** A power command was accepted but the chassis did not reach the state within the polling bound. */
export class PowerStateNotReachedError extends BmcError {
  override readonly name = 'PowerStateNotReachedError';
  constructor(host: string, bmc: string, readonly wanted: 'on' | 'off', readonly last: string) {
    super(host, bmc, `power did not reach "${wanted}" (last read "${last}")`);
  }
}
