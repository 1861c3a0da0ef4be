// BmcDriver for a blade behind an HP Onboard Administrator: the target's address is the OA's, its bay the blade's.
// All blades of an enclosure share one SSH session (src/bmc/oa/pool.ts); every write is read back.
import { setTimeout as sleep } from 'node:timers/promises';
import type { BmcDriver, BmcTarget, Inventory } from './driver.ts';
import type { BootOverride, PowerState } from '../core/power.ts';
import { BmcAuthError, BmcCommandError, BmcHostKeyError, BmcUnreachableError, BootOverrideNotAppliedError, PowerStateNotReachedError } from './errors.ts';
import { BmcState } from './bmc-state.ts';
import { BmcBackingOffError } from './gate.ts';
import type { BmcGate } from './gate.ts';
import * as oa from './oa/index.ts';
import type { HostKeyVerdict, OaBootDevice, OaBootFirstDevice, OaBootOnceDevice, OaOneTimeBoot, OaSession, OaSessionLease, OaSessionOptions, SshHostKeyStore } from './oa/index.ts';

export interface PollBound {
  attempts: number;
  intervalMs: number;
}

/** Where the driver tells of the OA's host key: first use, a changed or mismatched key, a key nobody checks. */
export interface OaHostKeyLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** `sleep` waits out the power polls too. */
export interface OaDriverOptions extends Pick<OaSessionOptions, 'prompt' | 'connectTimeoutMs' | 'commandTimeoutMs' | 'retries' | 'retryDelayMs' | 'maxOutputBytes' | 'sleep'> {
  /**
   * Trust on first use for OAs without a pinned key (target.sshHostKey): the first key seen is recorded here, any other
   * refused from then on. Without it (and without a pin) the key is not checked, and a warning says so.
   */
  hostKeyStore?: SshHostKeyStore;
  log?: OaHostKeyLog;
  /** Reading power back after on/off/cycle; default 30 × 1000 ms (a blade's POWERON takes seconds). */
  powerPoll?: PollBound;
  /** Waiting for the OS to shut down after softOff; default 90 × 2000 ms. */
  softOffPoll?: PollBound;
  /** The BMC state of the driver's owner (its gate and the OA sessions the enclosure's blades share); default: one of the driver's own. */
  state?: BmcState;
  /** The bound on BMC exchanges and the unreachable back-off; default the gate of `state`. */
  gate?: BmcGate;
}

const DEVICE_FOR: Record<'pxe' | 'disk' | 'none', OaBootOnceDevice> = { pxe: 'PXE', disk: 'HDD', none: 'NORMAL' };
const READ_BACK_FOR: Record<'pxe' | 'disk' | 'none', OaOneTimeBoot> = { pxe: 'pxe', disk: 'hdd', none: null };
const FIRST_FOR: Record<'pxe' | 'disk', OaBootFirstDevice> = { pxe: 'PXE', disk: 'HDD' };
const DEVICE_OF: Partial<Record<OaBootDevice, 'pxe' | 'disk'>> = { pxe: 'pxe', hdd: 'disk' };

export class OaDriver implements BmcDriver {
  readonly kind = 'hp-oa';
  private readonly bay: number;
  private readonly bmc: string;
  private readonly lease: OaSessionLease;
  private readonly session: OaSession;
  private readonly gate: BmcGate;
  /** The OA's key in the gate: its blades share one session, so they share one back-off. */
  private readonly gateKey: string;

  constructor(
    private readonly target: BmcTarget,
    private readonly opts: OaDriverOptions = {},
  ) {
    if (target.bay === undefined || !Number.isInteger(target.bay) || target.bay < 1) {
      throw new Error(`host ${target.host}: an HP Onboard Administrator target needs the blade's bay (enclosure.bay)`);
    }
    this.bay = target.bay;
    this.bmc = `${target.address}:${target.port ?? 22} bay ${target.bay}`;
    const { powerPoll: _p, softOffPoll: _s, gate: _g, state: _state, hostKeyStore, log, ...sessionOptions } = opts;
    const state = opts.state ?? new BmcState();
    const gate = (this.gate = opts.gate ?? state.gate);
    const gateKey = (this.gateKey = oaBmcKey(target));
    this.lease = state.oaSessions.lease({
      ...sessionOptions,
      address: target.address,
      port: target.port ?? 22,
      username: target.username,
      password: target.password,
      hostKey: { ...(target.sshHostKey !== undefined ? { pin: target.sshHostKey } : {}), ...(hostKeyStore ? { store: hostKeyStore } : {}) },
      ...(log ? { onHostKey: (verdict: HostKeyVerdict) => logHostKey(log, target, gateKey, verdict, hostKeyStore) } : {}),
      schedule: (exchange) => gate.exchange(gateKey, exchange),
    });
    this.session = this.lease.session;
  }

  async powerState(): Promise<PowerState> {
    return (await this.call(() => oa.showServerStatus(this.session, this.bay))).power;
  }

  async powerOn(): Promise<void> {
    await this.call(() => oa.powerOnServer(this.session, this.bay));
    await this.waitForPower('on', this.opts.powerPoll);
  }

  async powerOff(): Promise<void> {
    await this.call(() => oa.powerOffServerForce(this.session, this.bay));
    await this.waitForPower('off', this.opts.powerPoll);
  }

  async powerCycle(): Promise<void> {
    // REBOOT of a blade that is off does nothing useful; the intent (a fresh boot) is just "on" there.
    if ((await this.powerState()) !== 'on') return this.powerOn();
    await this.call(() => oa.rebootServerForce(this.session, this.bay));
    await this.waitForPower('on', this.opts.powerPoll);
  }

  async softOff(): Promise<void> {
    // POWEROFF without FORCE is a momentary press of the power button: the OS shuts down.
    await this.call(() => oa.powerOffServer(this.session, this.bay));
    await this.waitForPower('off', this.opts.softOffPoll ?? { attempts: 90, intervalMs: 2000 });
  }

  async setBootOverride(o: BootOverride): Promise<void> {
    if (o.persistent && o.device !== 'none') return this.setBootFirst(o.device);
    let rejection: BmcCommandError | undefined;
    try {
      await this.call(() => oa.setServerBootOnce(this.session, this.bay, DEVICE_FOR[o.device]));
    } catch (err) {
      if (!(err instanceof BmcCommandError)) throw err;
      rejection = err; // the read-back says what the OA actually holds
    }
    const boot = await this.call(() => oa.showServerBoot(this.session, this.bay));
    if (boot.oneTimeBoot === READ_BACK_FOR[o.device]) return;
    const wanted = o.device === 'none' ? 'no one-time boot' : `one-time boot from ${o.device}`;
    const why = `asked for ${wanted}, OA reports one-time boot from "${boot.oneTimeBootText || '?'}"`;
    throw new BootOverrideNotAppliedError(this.target.host, this.bmc, rejection ? `${why}; the OA rejected the write: ${rejection.message}` : why, { cause: rejection });
  }

  /**
   * The one-time boot if one is set, else the first device of the IPL order as a persistent override (the OA has no
   * other "persistent override" than the order itself); null for anything forseti never sets (CD-ROM first, …).
   */
  async getBootOverride(): Promise<BootOverride | null> {
    const boot = await this.call(() => oa.showServerBoot(this.session, this.bay));
    if (boot.oneTimeBoot === 'pxe') return { device: 'pxe', persistent: false };
    if (boot.oneTimeBoot === 'hdd') return { device: 'disk', persistent: false };
    if (boot.oneTimeBoot !== null) return null;
    const first = boot.firstBootDevice ? DEVICE_OF[boot.firstBootDevice] : undefined;
    return first ? { device: first, persistent: true } : null;
  }

  /** PXE or the hard drive first in the IPL order, for every boot to come; read back from SHOW SERVER BOOT. */
  private async setBootFirst(device: 'pxe' | 'disk'): Promise<void> {
    let rejection: BmcCommandError | undefined;
    try {
      await this.call(() => oa.setServerBootFirst(this.session, this.bay, FIRST_FOR[device]));
    } catch (err) {
      if (!(err instanceof BmcCommandError)) throw err;
      rejection = err;
    }
    const boot = await this.call(() => oa.showServerBoot(this.session, this.bay));
    if (boot.firstBootDevice !== undefined && DEVICE_OF[boot.firstBootDevice] === device) return;
    const why = `asked for ${device} first in the boot order, OA reports "${boot.bootOrder.join(', ') || '?'}"`;
    throw new BootOverrideNotAppliedError(this.target.host, this.bmc, rejection ? `${why}; the OA rejected the write: ${rejection.message}` : why, { cause: rejection });
  }

  async inventory(): Promise<Inventory> {
    const info = await this.call(() => oa.showServerInfo(this.session, this.bay));
    const inventory: Inventory = {};
    if (info.manufacturer) inventory.manufacturer = info.manufacturer;
    if (info.productName) inventory.model = info.productName;
    if (info.serialNumber) inventory.serialNumber = info.serialNumber;
    if (info.managementProcessor.firmwareVersion) inventory.bmcFirmware = info.managementProcessor.firmwareVersion;
    if (info.cpus.length > 0) inventory.processors = { count: info.cpus.length, model: info.cpus[0]!.replace(/\s*\(\d+ cores?\)\s*$/, '') };
    if (info.memoryMiB !== undefined) inventory.memoryGiB = info.memoryMiB / 1024;
    if (info.nics.length > 0) inventory.macs = info.nics.map((n) => n.mac);
    if (info.managementProcessor.ipAddress) inventory.managementAddress = info.managementProcessor.ipAddress;
    return inventory;
  }

  async powerDraw(): Promise<number | null> {
    return (await this.call(() => oa.showServerStatus(this.session, this.bay))).wattage ?? null;
  }

  /** Releases this blade's share of the enclosure's session; the last blade's close logs out. */
  async close(): Promise<void> {
    await this.lease.release();
  }

  private async waitForPower(want: 'on' | 'off', bound: PollBound = { attempts: 30, intervalMs: 1000 }): Promise<void> {
    let last: PowerState = 'unknown';
    for (let attempt = 1; attempt <= bound.attempts; attempt++) {
      last = await this.powerState();
      if (last === want) return;
      if (attempt < bound.attempts) await (this.opts.sleep ?? sleep)(bound.intervalMs);
    }
    throw new PowerStateNotReachedError(this.target.host, this.bmc, want, last);
  }

  private async call<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await this.gate.command(this.gateKey, command, unreachableReason);
    } catch (err) {
      throw this.productError(err);
    }
  }

  private productError(err: unknown): unknown {
    const { host } = this.target;
    if (err instanceof BmcBackingOffError) return new BmcUnreachableError(host, this.bmc, err.message, { cause: err });
    if (err instanceof oa.OaUnreachableError) return new BmcUnreachableError(host, this.bmc, err.message, { cause: err });
    if (err instanceof oa.OaSessionLostError) return new BmcUnreachableError(host, this.bmc, err.message, { cause: err });
    if (err instanceof oa.OaAuthError) return new BmcAuthError(host, this.bmc, err.message, { cause: err });
    if (err instanceof oa.OaHostKeyError) return new BmcHostKeyError(host, this.bmc, err.message, { cause: err });
    if (err instanceof oa.OaCommandError) return new BmcCommandError(host, this.bmc, err.command, err.detail, { cause: err });
    if (err instanceof oa.OaOutputLimitError) return new BmcCommandError(host, this.bmc, err.command, err.message, { cause: err });
    return err;
  }
}

/**
 * A session that cannot be opened, or an OA that stops answering mid-command, costs a whole timeout per command: the
 * OA backs off. A dropped session (the OA is there) and the OA's own errors are answers.
 */
function unreachableReason(err: unknown): string | undefined {
  const unreachable = err instanceof oa.OaUnreachableError || (err instanceof oa.OaSessionLostError && err.timedOut);
  return unreachable ? err.message : undefined;
}

/** One log line per login whose key check is worth telling; a changed or mismatched key is an error worth an alert. */
function logHostKey(log: OaHostKeyLog, target: BmcTarget, oaKey: string, verdict: HostKeyVerdict, store: SshHostKeyStore | undefined): void {
  const fields = { host: target.host, bmc: oaKey, sshHostKey: verdict.fingerprint };
  switch (verdict.how) {
    case 'first-use':
      log.info({ ...fields, store: store?.where }, `OA ${oaKey}: SSH host key ${verdict.fingerprint} trusted on first use and recorded; any other key is refused from now on (pin it with bmc.sshHostKey)`);
      return;
    case 'unverified':
      log.warn(fields, `OA ${oaKey}: SSH host key ${verdict.fingerprint} is not verified (no bmc.sshHostKey pin): the password goes to whoever answers there; pin this key if it is the OA's`);
      return;
    case 'changed':
    case 'pin-mismatch':
      log.error({ ...fields, expected: verdict.expected, alert: 'bmc-host-key-mismatch' }, `OA ${oaKey}: SSH host key ${verdict.fingerprint} is not the ${verdict.how === 'changed' ? 'one first seen' : 'pinned one'} (${verdict.expected}): login refused, the password was not sent; someone may be posing as the OA`);
      return;
    default:
      return;
  }
}

/** The OA's key in the gate, "address:port": its blades share one session, so they share one back-off. */
export function oaBmcKey(target: Pick<BmcTarget, 'address' | 'port'>): string {
  return `${target.address}:${target.port ?? 22}`;
}

export function createOaDriver(target: BmcTarget, opts?: OaDriverOptions): OaDriver {
  return new OaDriver(target, opts);
}
