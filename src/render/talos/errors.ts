import type { SourceRef } from '../../core/source-ref.ts';

/** A Talos machine config that cannot be made for a host: the base does not parse or decrypt, or a patch breaks a rule. */
export class TalosConfigError extends Error {
  override readonly name = 'TalosConfigError';
  constructor(
    readonly host: string,
    /** What is wrong, without the host's name. */
    readonly reason: string,
    /** The lab file and line at fault, when it is not the profile's config (the encrypted base). */
    readonly ref?: SourceRef,
  ) {
    super(`${host}: Talos machine config: ${reason}`);
  }
}
