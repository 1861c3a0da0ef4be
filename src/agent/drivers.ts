import type { BmcDriver } from '../bmc/driver.ts';
import { createIpmiDriver } from '../bmc/ipmi-driver.ts';
import type { Logger } from '../log.ts';
import type { Host } from '../model/types.ts';
import type { AgentConfig } from './config.ts';
import { ManualDriver } from './manual-driver.ts';
import type { Secrets } from './secrets.ts';

/** The driver for a host's BMC as declared in the lab, with its credential resolved on the agent's box. */
export function createDriver(host: Host, secrets: Secrets, options: AgentConfig['bmc'], log: Logger): BmcDriver {
  const bmc = host.bmc;
  switch (bmc.type) {
    case 'ipmi': {
      if (!bmc.address || !bmc.credential) return new ManualDriver(host.name, log);
      const credential = secrets.resolve(bmc.credential, host.name);
      return createIpmiDriver(
        {
          host: host.name,
          address: bmc.address,
          ...(bmc.port ? { port: bmc.port } : {}),
          username: credential.username,
          password: credential.password,
          cipherSuite: bmc.cipherSuite ?? 3,
          firmware: host.hardware.firmware,
        },
        { minIntervalMs: options.minIntervalMs, ipmitool: { timeoutMs: options.timeoutMs, retries: options.retries } },
      );
    }
    default:
      // Redfish, HP Onboard Administrator and Wake-on-LAN drivers come with the BMC work; until then the operator acts.
      return new ManualDriver(host.name, log);
  }
}
