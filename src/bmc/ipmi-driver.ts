// BmcDriver over IPMI v2 (ipmitool -I lanplus). Every write is checked by reading the BMC back.
import { setTimeout as sleep } from 'node:timers/promises';
import { CommandQueue, DEFAULT_MIN_INTERVAL_MS, sharedCommandQueue } from './command-queue.ts';
import type { BmcDriver, BmcTarget, BootOverride, Inventory, PowerState } from './driver.ts';
import { BmcAuthError, BmcCommandError, BmcUnreachableError, BootOverrideNotAppliedError, PowerStateNotReachedError } from './errors.ts';
import { BmcBackingOffError, sharedBmcGate } from './gate.ts';
import type { BmcGate } from './gate.ts';
import { bootdevRequest, IPMI_SIM_MANUFACTURER_ID, overrideFromFlags, overrideMismatch } from './ipmi-boot-override.ts';
import type { BootFlagsSupport } from './ipmi-boot-override.ts';
import { IpmiAuthError, IpmiCommandError, IpmiUnreachableError } from './ipmi/errors.ts';
import * as ipmitool from './ipmi/ipmitool.ts';
import type { BootFlags, IpmiConnection, IpmitoolRunOptions } from './ipmi/ipmitool.ts';

export interface PollBound {
  attempts: number;
  intervalMs: number;
}

export interface IpmiDriverOptions {
  /** ipmitool binary, prefix (e.g. `ip netns exec`), timeout and retries. */
  ipmitool?: IpmitoolRunOptions;
  /** Default: the process-wide queue of this BMC (see command-queue.ts). */
  queue?: CommandQueue;
  /** For the default queue, if this call creates it; default 2000 ms. */
  minIntervalMs?: number;
  /** The global bound on BMC exchanges and the unreachable back-off; default the process-wide gate. */
  gate?: BmcGate;
  /** Reading power back after on/off/cycle; default 15 × 1000 ms. */
  powerPoll?: PollBound;
  /** Waiting for the OS to shut down after softOff; default 90 × 2000 ms. */
  softOffPoll?: PollBound;
  /** Default `auto`: `device-only` for OpenIPMI's ipmi_sim (by manufacturer ID), else `kept`. */
  bootFlags?: BootFlagsSupport | 'auto';
}

const FRU_MANUFACTURER = ['Product Manufacturer', 'Board Mfg'];
const FRU_MODEL = ['Product Name', 'Board Product'];
const FRU_SERIAL = ['Product Serial', 'Board Serial', 'Chassis Serial'];

export class IpmiDriver implements BmcDriver {
  readonly kind = 'ipmi';
  private readonly conn: IpmiConnection;
  private readonly bmc: string;
  private readonly queue: CommandQueue;
  private readonly gate: BmcGate;
  /** This BMC's key in its queue and in the gate (with the netns prefix in tests: two namespaces, two BMCs). */
  private readonly key: string;
  private readonly runOptions: IpmitoolRunOptions;
  private bootFlagsSupport: Promise<BootFlagsSupport> | undefined;

  constructor(
    private readonly target: BmcTarget,
    private readonly opts: IpmiDriverOptions = {},
  ) {
    this.conn = { address: target.address, port: target.port ?? 623, username: target.username, password: target.password, cipherSuite: target.cipherSuite ?? 3 };
    this.bmc = `${target.address}:${this.conn.port}`;
    this.key = ipmiBmcKey(target, opts.ipmitool?.prefix);
    this.queue = opts.queue ?? sharedCommandQueue(this.key, { minIntervalMs: opts.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS });
    this.gate = opts.gate ?? sharedBmcGate();
    // Each single ipmitool run takes a global slot; the pause between attempts does not.
    this.runOptions = { ...opts.ipmitool, schedule: (attempt) => this.gate.limit.run(attempt) };
  }

  async powerState(): Promise<PowerState> {
    return this.call((c, o) => ipmitool.powerStatus(c, o));
  }

  async powerOn(): Promise<void> {
    await this.call((c, o) => ipmitool.powerControl(c, 'on', o));
    await this.waitForPower('on', this.opts.powerPoll);
  }

  async powerOff(): Promise<void> {
    await this.call((c, o) => ipmitool.powerControl(c, 'off', o));
    await this.waitForPower('off', this.opts.powerPoll);
  }

  async powerCycle(): Promise<void> {
    // Many BMCs reject "cycle" on a host that is off; the intent (fresh boot) is just "on" there.
    if ((await this.powerState()) === 'off') return this.powerOn();
    await this.call((c, o) => ipmitool.powerControl(c, 'cycle', o));
    await this.waitForPower('on', this.opts.powerPoll);
  }

  async softOff(): Promise<void> {
    await this.call((c, o) => ipmitool.powerControl(c, 'soft', o));
    await this.waitForPower('off', this.opts.softOffPoll ?? { attempts: 90, intervalMs: 2000 });
  }

  async setBootOverride(o: BootOverride): Promise<void> {
    const request = bootdevRequest(o, this.target.firmware);
    const support = await this.bootFlags();
    let rejection: BmcCommandError | undefined;
    try {
      await this.call((c, opts) => ipmitool.setBootdev(c, request, opts));
    } catch (err) {
      if (!(err instanceof BmcCommandError)) throw err;
      rejection = err; // the read-back below says what the BMC actually holds
    }
    const flags = await this.readBootFlags();
    const mismatch = overrideMismatch(request, flags, support);
    if (mismatch === null) return;
    const why = rejection ? `${mismatch}; the BMC rejected the write: ${rejection.message}` : mismatch;
    throw new BootOverrideNotAppliedError(this.target.host, this.bmc, why, { cause: rejection });
  }

  async getBootOverride(): Promise<BootOverride | null> {
    const support = await this.bootFlags();
    return overrideFromFlags(await this.readBootFlags(), support);
  }

  async inventory(): Promise<Inventory> {
    const mc = await this.call((c, o) => ipmitool.mcInfo(c, o));
    const fru = await this.call((c, o) => ipmitool.fruPrint(c, o)).catch((err: unknown) => {
      if (err instanceof BmcCommandError) return new Map<string, string>(); // many BMCs have no FRU 0
      throw err;
    });
    const first = (keys: string[]): string | undefined => keys.map((k) => fru.get(k)).find((v) => v !== undefined);
    const inventory: Inventory = {};
    const manufacturer = first(FRU_MANUFACTURER) ?? mc.manufacturerName;
    const model = first(FRU_MODEL) ?? mc.productName;
    const serialNumber = first(FRU_SERIAL);
    if (manufacturer) inventory.manufacturer = manufacturer;
    if (model) inventory.model = model;
    if (serialNumber) inventory.serialNumber = serialNumber;
    if (mc.firmwareRevision) inventory.bmcFirmware = mc.firmwareRevision;
    return inventory;
  }

  async powerDraw(): Promise<number | null> {
    return this.call((c, o) => ipmitool.dcmiPowerReading(c, o));
  }

  async close(): Promise<void> {
    // Every ipmitool run opens and closes its own session: nothing is held between calls.
  }

  private async readBootFlags(): Promise<BootFlags> {
    return this.call((c, o) => ipmitool.getBootFlags(c, o));
  }

  private bootFlags(): Promise<BootFlagsSupport> {
    const configured = this.opts.bootFlags ?? 'auto';
    if (configured !== 'auto') return Promise.resolve(configured);
    this.bootFlagsSupport ??= this.call((c, o) => ipmitool.mcInfo(c, o)).then((mc) =>
      mc.manufacturerId === IPMI_SIM_MANUFACTURER_ID ? 'device-only' : 'kept',
    );
    // A failed probe (BMC down) must not stick: the next call asks again.
    this.bootFlagsSupport.catch(() => (this.bootFlagsSupport = undefined));
    return this.bootFlagsSupport;
  }

  private async waitForPower(want: 'on' | 'off', bound: PollBound = { attempts: 15, intervalMs: 1000 }): Promise<void> {
    let last: PowerState = 'unknown';
    for (let attempt = 1; attempt <= bound.attempts; attempt++) {
      last = await this.powerState();
      if (last === want) return;
      if (attempt < bound.attempts) await sleep(bound.intervalMs);
    }
    throw new PowerStateNotReachedError(this.target.host, this.bmc, want, last);
  }

  /**
   * One ipmitool command through this BMC's queue and the gate (refused at once while this BMC backs off), its
   * failure named in the product's terms.
   */
  private async call<T>(command: (conn: IpmiConnection, opts: IpmitoolRunOptions) => Promise<T>): Promise<T> {
    try {
      const run = (): Promise<T> =>
        this.queue.run(() => {
          this.gate.check(this.key);
          return command(this.conn, this.runOptions);
        });
      return await this.gate.command(this.key, run, (err) => (err instanceof IpmiUnreachableError ? err.detail : undefined));
    } catch (err) {
      throw this.productError(err);
    }
  }

  private productError(err: unknown): unknown {
    const { host } = this.target;
    if (err instanceof IpmiUnreachableError) {
      return new BmcUnreachableError(host, this.bmc, `unreachable after ${err.attempts} attempt(s) (${err.command}): ${err.detail}`, { cause: err });
    }
    if (err instanceof BmcBackingOffError) return new BmcUnreachableError(host, this.bmc, err.message, { cause: err });
    if (err instanceof IpmiAuthError) return new BmcAuthError(host, this.bmc, `session refused (${err.command}): ${err.detail}`, { cause: err });
    if (err instanceof IpmiCommandError) return new BmcCommandError(host, this.bmc, err.command, err.detail, { cause: err });
    return err;
  }
}

/** The BMC's key in the gate and its command queue: "address:port", after the netns prefix if any. */
export function ipmiBmcKey(target: Pick<BmcTarget, 'address' | 'port'>, prefix: readonly string[] = []): string {
  const bmc = `${target.address}:${target.port ?? 623}`;
  return prefix.length > 0 ? `${prefix.join(' ')} ${bmc}` : bmc;
}

export function createIpmiDriver(target: BmcTarget, opts?: IpmiDriverOptions): IpmiDriver {
  return new IpmiDriver(target, opts);
}
