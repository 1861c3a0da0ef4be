/** A Talos machine config that cannot be made for a host: the base does not parse, or a patch breaks a rule. */
export class TalosConfigError extends Error {
  override readonly name = 'TalosConfigError';
  constructor(
    readonly host: string,
    message: string,
  ) {
    super(`${host}: Talos machine config: ${message}`);
  }
}
