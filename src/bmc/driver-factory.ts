import type { BmcDriver, BmcTls } from './driver.ts';
import { BmcState } from './bmc-state.ts';
import { createIpmiDriver, ipmiBmcKey } from './ipmi-driver.ts';
import type { IpmitoolRunOptions } from './ipmi/ipmitool.ts';
import { createOaDriver, oaBmcKey } from './oa-driver.ts';
import type { OaDriverOptions } from './oa-driver.ts';
import { createRedfishDriver, redfishBmcKey } from './redfish-driver.ts';
import type { RedfishDriverOptions } from './redfish-driver.ts';
import { createWolDriver } from './wol-driver.ts';
import type { Logger } from '../log.ts';
import { numberToIpv4, parseSubnet } from '../model/ipv4.ts';
import type { Host, HostBmcTls, Site } from '../model/types.ts';
import { ManualDriver } from './manual-driver.ts';
import type { ManualInstruction } from './manual-driver.ts';
import type { Secrets } from '../secrets/secrets.ts';

/** agent.yaml's `bmc:` section: pacing, time limits and retries of every driver, and the exchanges in flight at once. */
export interface BmcSettings {
  minIntervalMs: number;
  timeoutMs: number;
  retries: number;
  /** BMC exchanges in flight at once over all BMCs (src/bmc/gate.ts); default DEFAULT_BMC_MAX_CONCURRENT. */
  maxConcurrent?: number;
}

/** What the factory may need beyond the host: all optional, so `createDriver(host, secrets, options, log)` still works. */
export interface DriverContext {
  /**
   * The BMC state of whoever makes the drivers (src/bmc/bmc-state.ts): its gate, queues and OA sessions. The agent
   * and each command pass theirs; without one, the driver gets a state of its own.
   */
  state?: BmcState;
  /** The lab's site: Wake-on-LAN sends to its provisioning subnet's directed broadcast. */
  site?: Site;
  /** Manual hosts: every instruction to the operator (for the host's status). */
  onInstruction?: (instruction: ManualInstruction) => void;
  /** Wake-on-LAN overrides (tests; a relay): destination address and port, local address to send from. */
  wol?: { broadcast?: string; port?: number; bindAddress?: string };
  /** Onboard Administrator session and polling options. */
  oa?: OaDriverOptions;
  /** ipmitool options beyond the agent's timeout and retries (a netns prefix in tests). */
  ipmitool?: IpmitoolRunOptions;
  /** Redfish options beyond the agent's timeout and retries (plain http for simulators). */
  redfish?: RedfishDriverOptions;
}

/** The driver for a host's BMC as declared in the lab, with its credential resolved on the agent's box. */
export function createDriver(host: Host, secrets: Secrets, options: BmcSettings, log: Logger, context: DriverContext = {}): BmcDriver {
  const bmc = host.bmc;
  // Every driver's exchanges go through its owner's gate, which the agent's bmc.maxConcurrent sized.
  const state = context.state ?? new BmcState(options.maxConcurrent !== undefined ? { maxConcurrent: options.maxConcurrent } : {});
  const manual = (why?: string): ManualDriver => {
    if (why) log.warn({ host: host.name, bmc: bmc.type }, `${host.name}: ${why}; the operator acts instead`);
    return new ManualDriver(host.name, log, context.onInstruction ? { onInstruction: context.onInstruction } : {});
  };
  const target = () => {
    // The schema requires address and credential for ipmi, redfish and hp-oa.
    if (!bmc.address || !bmc.credential) return undefined;
    const credential = secrets.resolve(bmc.credential, host.name);
    return {
      host: host.name,
      address: bmc.address,
      ...(bmc.port ? { port: bmc.port } : {}),
      username: credential.username,
      password: credential.password,
      firmware: host.hardware.firmware,
    };
  };
  switch (bmc.type) {
    case 'ipmi': {
      const t = target();
      if (!t) return manual('no BMC address or credential');
      return createIpmiDriver(
        bmc.cipherSuite !== undefined ? { ...t, cipherSuite: bmc.cipherSuite } : t,
        { state, minIntervalMs: options.minIntervalMs, ipmitool: { timeoutMs: options.timeoutMs, retries: options.retries, ...context.ipmitool } },
      );
    }
    case 'redfish': {
      const t = target();
      if (!t) return manual('no BMC address or credential');
      const tls = bmcTls(bmc.tls);
      const system = bmc.system !== undefined ? { systemId: bmc.system } : {};
      return createRedfishDriver(tls ? { ...t, tls } : t, { state, minIntervalMs: options.minIntervalMs, http: { timeoutMs: options.timeoutMs, retries: options.retries }, log, ...system, ...context.redfish });
    }
    case 'hp-oa': {
      const t = target();
      if (!t) return manual('no Onboard Administrator address or credential');
      if (!host.enclosure) return manual('an hp-oa host needs enclosure.bay');
      const pin = bmc.sshHostKey !== undefined ? { sshHostKey: bmc.sshHostKey } : {};
      return createOaDriver({ ...t, bay: host.enclosure.bay, ...pin }, { state, commandTimeoutMs: Math.max(options.timeoutMs, 60_000), retries: options.retries, log, ...context.oa });
    }
    case 'wol': {
      const mac = host.macs[0];
      const broadcast = context.wol?.broadcast ?? directedBroadcast(context.site);
      if (!mac) return manual('no MAC to wake');
      if (!broadcast) return manual('Wake-on-LAN needs the site\'s provisioning subnet');
      const w = context.wol;
      return createWolDriver(
        { host: host.name, mac, broadcast, ...(w?.port !== undefined && { port: w.port }), ...(w?.bindAddress !== undefined && { bindAddress: w.bindAddress }) },
        { log },
      );
    }
    case 'manual':
      return manual();
  }
}

/**
 * The key under which the BMC layer keeps this host's BMC state across drivers (its back-off in the gate, its
 * command queue); undefined for BMCs that keep none (Wake-on-LAN, manual, no address).
 */
export function bmcStateKey(host: Host, context: DriverContext = {}): string | undefined {
  const { type, address, port } = host.bmc;
  if (!address) return undefined;
  const target = { address, ...(port ? { port } : {}) };
  switch (type) {
    case 'ipmi':
      return ipmiBmcKey(target, context.ipmitool?.prefix);
    case 'redfish':
      return redfishBmcKey(target, context.redfish?.scheme);
    case 'hp-oa':
      return oaBmcKey(target);
    default:
      return undefined;
  }
}

/**
 * Forgets the state (back-off, command queue) of every BMC the given hosts do not declare: call it with the lab's
 * hosts once a commit is applied (a BMC removed or moved to another address). Pass the context the drivers are made
 * with.
 */
export function retainBmcState(state: BmcState, hosts: Iterable<Host>, context: DriverContext = {}): void {
  const keys: string[] = [];
  for (const host of hosts) {
    const key = bmcStateKey(host, context);
    if (key !== undefined) keys.push(key);
  }
  state.retain(keys);
}

/** The lab's `bmc.tls` as the driver takes it; the loader has read the CA file (`caPem`) from the commit. */
export function bmcTls(tls: HostBmcTls | undefined): BmcTls | undefined {
  if (!tls) return undefined;
  if (tls.insecure) return { insecure: true };
  if (tls.fingerprint !== undefined) return { fingerprint256: tls.fingerprint.replace(/^sha256:/i, '') };
  if (tls.caPem !== undefined) return { ca: tls.caPem };
  // A CA named but never read (a host built without the loader): the system's CAs, which fails closed.
  return undefined;
}

/** 10.77.0.0/24 → 10.77.0.255. */
export function directedBroadcast(site: Site | undefined): string | undefined {
  const subnet = site ? parseSubnet(site.network.subnet) : undefined;
  return subnet ? numberToIpv4(subnet.broadcast) : undefined;
}
