// An IPMI BMC's machine: its identity only. IPMI reports the FRU's manufacturer, product and serial, the power state
// and the cipher suite the BMC takes, but no MAC of the host's own NICs in general (`lan print` shows the BMC's own
// LAN channel, not the host's): a host file needs its boot NIC's MAC, so the operator gives it (`--mac`) or the
// machine is refused, with what was found. A placeholder MAC is never written: it would validate and boot nothing.
import { CommandQueue } from '../bmc/command-queue.ts';
import { BmcAuthError, BmcUnreachableError } from '../bmc/errors.ts';
import { BmcGate } from '../bmc/gate.ts';
import { createIpmiDriver } from '../bmc/ipmi-driver.ts';
import type { IpmitoolRunOptions } from '../bmc/ipmi/ipmitool.ts';
import type { HostBmc } from '../model/types.ts';
import { DiscoveryAuthError, DiscoveryUnreachableError } from './errors.ts';
import type { MachineFacts } from './facts.ts';
import type { Credential } from './from-oa.ts';

export interface IpmiDiscoveryOptions {
  address: string;
  /** Default 623. */
  port?: number;
  credential: Credential;
  /** The host's NIC MACs as the operator gives them, boot NIC first. */
  macs: string[];
  timeoutMs?: number;
  ipmitool?: IpmitoolRunOptions;
}

export const IPMI_NO_MACS =
  'IPMI does not report the MACs of the host\'s NICs (`ipmitool lan print` shows only the BMC\'s own): give the boot NIC\'s MAC with --mac MAC[,MAC…], or import the machine from its Redfish service, or let it PXE-boot into discovery';

export async function discoverIpmi(options: IpmiDiscoveryOptions): Promise<MachineFacts[]> {
  const port = options.port ?? 623;
  const where = `IPMI ${options.address}${port === 623 ? '' : `:${port}`}`;
  const driver = createIpmiDriver(
    { host: where, address: options.address, port, username: options.credential.username, password: options.credential.password },
    { queue: new CommandQueue({ minIntervalMs: 0 }), gate: new BmcGate(), ipmitool: { timeoutMs: options.timeoutMs ?? 10_000, retries: 0, ...options.ipmitool } },
  );
  try {
    const power = await driver.powerState();
    const inventory = await driver.inventory();
    const suite = driver.cipherSuite();
    const bmc: HostBmc = { type: 'ipmi', address: options.address, ...(port !== 623 ? { port } : {}), credential: options.credential.name, ...(suite !== undefined && suite !== 17 ? { cipherSuite: suite } : {}) };
    const facts: MachineFacts = {
      source: where,
      fields: { address: options.address },
      nics: options.macs.map((mac) => ({ mac, label: 'given with --mac' })),
      nicsUnknown: IPMI_NO_MACS,
      bmc,
      power,
      notes: ['IPMI gives no memory, processors or drives: declare them if a role requires them'],
      bmcAddresses: [options.address],
    };
    if (suite !== undefined && suite !== 17) facts.notes.push(`cipher suite ${suite}: the BMC refused 17`);
    if (inventory.manufacturer) facts.manufacturer = inventory.manufacturer;
    if (inventory.model) facts.model = inventory.model;
    if (inventory.serialNumber) facts.serial = inventory.serialNumber;
    return [facts];
  } catch (err) {
    if (err instanceof BmcAuthError) throw new DiscoveryAuthError(where, options.credential.name, err.message, { cause: err });
    if (err instanceof BmcUnreachableError) throw new DiscoveryUnreachableError(where, err.message, { cause: err });
    throw err;
  } finally {
    await driver.close?.();
  }
}
