// Failures of one ipmitool invocation, one class per kind. They name the BMC (`bmc` is
// "address:port") and the ipmitool command, and carry ipmitool's own words in `detail`;
// never the password (run.ts scrubs it from ipmitool's output before it lands here).

abstract class IpmitoolError extends Error {
  constructor(
    readonly bmc: string,
    readonly command: string,
    readonly detail: string,
    message: string,
  ) {
    super(message);
  }
}

/** No IPMI session could be opened: nothing answered, or ipmitool timed out. */
export class IpmiUnreachableError extends IpmitoolError {
  override readonly name = 'IpmiUnreachableError';
  constructor(bmc: string, command: string, detail: string, readonly attempts: number) {
    super(bmc, command, detail, `BMC ${bmc} unreachable (ipmitool ${command}, ${attempts} attempt(s)): ${detail}`);
  }
}

/** The BMC answered but refused the session: wrong user or password, or an unsupported cipher suite. */
export class IpmiAuthError extends IpmitoolError {
  override readonly name = 'IpmiAuthError';
  constructor(bmc: string, command: string, detail: string) {
    super(bmc, command, detail, `BMC ${bmc} refused the IPMI session (ipmitool ${command}): ${detail}`);
  }
}

/** A session was open but the command failed or printed an error (ipmitool may still exit 0). */
export class IpmiCommandError extends IpmitoolError {
  override readonly name = 'IpmiCommandError';
  constructor(bmc: string, command: string, detail: string) {
    super(bmc, command, detail, `BMC ${bmc}: ipmitool ${command} failed: ${detail}`);
  }
}
