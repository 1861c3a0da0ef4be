// BmcDriver over IPMI v2 (ipmitool -I lanplus). Every write is checked by reading the BMC back.
import { setTimeout as sleep } from 'node:timers/promises';
import { BmcState } from './bmc-state.ts';
import type { IpmiLearned } from './bmc-state.ts';
import { CommandQueue, DEFAULT_MIN_INTERVAL_MS } from './command-queue.ts';
import type { BmcDriver, BmcTarget, Inventory } from './driver.ts';
import type { BootOverride, PowerState } from '../core/power.ts';
import { BmcAuthError, BmcCommandError, BmcUnreachableError, BootOnceNotKeptError, BootOverrideNotAppliedError, PowerStateNotReachedError } from './errors.ts';
import { BmcBackingOffError } from './gate.ts';
import type { BmcGate } from './gate.ts';
import { bootdevRequest, overrideFromFlags, overrideMismatch } from './ipmi-boot-override.ts';
import type { BootFlagsSupport } from './ipmi-boot-override.ts';
import { IpmiAuthError, IpmiCommandError, IpmiUnreachableError } from './ipmi/errors.ts';
import { cipherSuiteRefused } from './ipmi/run.ts';
import * as ipmitool from './ipmi/ipmitool.ts';
import type { BootFlags, IpmiConnection, IpmitoolRunOptions, McInfo } from './ipmi/ipmitool.ts';
import { vendorFacts } from './ipmi/vendor-facts.ts';
import type { IpmiVendorFacts } from './ipmi/vendor-facts.ts';

export interface PollBound {
  attempts: number;
  intervalMs: number;
}

export interface IpmiDriverOptions {
  /** ipmitool binary, prefix (e.g. `ip netns exec`), timeout and retries. */
  ipmitool?: IpmitoolRunOptions;
  /** The BMC state of the driver's owner (its gate and this BMC's queue); default: one of the driver's own. */
  state?: BmcState;
  /** Default: this BMC's queue in `state` (see command-queue.ts). */
  queue?: CommandQueue;
  /** For the default queue, if this call creates it; default 2000 ms. */
  minIntervalMs?: number;
  /** The bound on BMC exchanges and the unreachable back-off; default the gate of `state`. */
  gate?: BmcGate;
  /** Reading power back after on/off/cycle; default 15 × 1000 ms. */
  powerPoll?: PollBound;
  /** Waiting for the OS to shut down after softOff; default 90 × 2000 ms. */
  softOffPoll?: PollBound;
  /** Default `auto`: what ipmi/vendor-facts.ts says of the BMC's manufacturer ID (`device-only` for OpenIPMI's ipmi_sim). */
  bootFlags?: BootFlagsSupport | 'auto';
  /** How a vendor's settle time after a power command is waited out; default a timer. */
  settle?: (ms: number) => Promise<void>;
  /**
   * Waiting for another party's "set in progress" on the boot options to end before a boot write; a claim that
   * outlasts it is taken as left behind and cleared. Default 5 × 2000 ms.
   */
  setInProgressPoll?: PollBound;
}

const FRU_MANUFACTURER = ['Product Manufacturer', 'Board Mfg'];
const FRU_MODEL = ['Product Name', 'Board Product'];
const FRU_SERIAL = ['Product Serial', 'Board Serial', 'Chassis Serial'];

/** Who the BMC is (Get Device ID) and what the documents say of its kind. */
export interface IpmiIdentity {
  mc: McInfo;
  vendor: IpmiVendorFacts;
}

/**
 * Cipher suites tried in order when the lab names none: 17 (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128) where the BMC
 * has it, else 3 (RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128), whose algorithms IPMI v2.0 makes mandatory. "17 and 3 are
 * the only cipher suites that implement any sort of confidentiality algorithm that is secure" (ipmitool commit
 * 7772254, "lanplus: Auto-select 'best' cipher suite available"); forseti never falls back below 3 by itself.
 */
export const CIPHER_SUITES = [17, 3] as const;

export class IpmiDriver implements BmcDriver {
  readonly kind = 'ipmi';
  private readonly conn: IpmiConnection;
  /** The suites to try, best first: the lab's one, or CIPHER_SUITES. */
  private readonly suites: readonly number[];
  /** The suite the BMC took; undefined until a session was opened. */
  private suite: number | undefined;
  private readonly bmc: string;
  private readonly queue: CommandQueue;
  private readonly gate: BmcGate;
  /** This BMC's key in its queue and in the gate (with the netns prefix in tests: two namespaces, two BMCs). */
  private readonly key: string;
  private readonly runOptions: IpmitoolRunOptions;
  private identity: Promise<IpmiIdentity> | undefined;
  /** What earlier drivers of this BMC learnt (the owner's BMC state outlives drivers). */
  private readonly learned: IpmiLearned;
  /** The BMC does not implement boot option parameter 0 (ipmi_sim alone does not). */
  private noSetInProgress = false;
  /** The BMC has no DCMI power reading. */
  private noPowerReading = false;
  /** The suites passed over before the one taken, with why. */
  private skipped: string[] = [];

  constructor(
    private readonly target: BmcTarget,
    private readonly opts: IpmiDriverOptions = {},
  ) {
    this.conn = { address: target.address, port: target.port ?? 623, username: target.username, password: target.password };
    this.suites = target.cipherSuite !== undefined ? [target.cipherSuite] : CIPHER_SUITES;
    this.bmc = `${target.address}:${this.conn.port}`;
    this.key = ipmiBmcKey(target, opts.ipmitool?.prefix);
    const state = opts.state ?? new BmcState();
    this.learned = state.ipmi.get(this.key) ?? {};
    state.ipmi.set(this.key, this.learned);
    this.queue = opts.queue ?? state.queue(this.key, { minIntervalMs: opts.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS });
    this.gate = opts.gate ?? state.gate;
    // Each single ipmitool run takes a global slot; the pause between attempts does not.
    this.runOptions = { ...opts.ipmitool, schedule: (attempt) => this.gate.limit.run(attempt) };
  }

  async powerState(): Promise<PowerState> {
    return this.call((c, o) => ipmitool.powerStatus(c, o));
  }

  async powerOn(): Promise<void> {
    await this.call((c, o) => ipmitool.powerControl(c, 'on', o));
    await this.settle();
    await this.waitForPower('on', this.opts.powerPoll);
  }

  async powerOff(): Promise<void> {
    await this.call((c, o) => ipmitool.powerControl(c, 'off', o));
    await this.settle();
    await this.waitForPower('off', this.opts.powerPoll);
  }

  async powerCycle(): Promise<void> {
    // IPMI does not require "cycle" to power on a host that is off (vendor-facts.ts); the intent is just "on" there.
    if ((await this.powerState()) === 'off') return this.powerOn();
    await this.call((c, o) => ipmitool.powerControl(c, 'cycle', o));
    // Without the vendor's settle time a BMC that acts late still reads "on" from before the cycle.
    await this.settle();
    await this.waitForPower('on', this.opts.powerPoll);
  }

  async softOff(): Promise<void> {
    await this.call((c, o) => ipmitool.powerControl(c, 'soft', o));
    await this.settle();
    await this.waitForPower('off', this.opts.softOffPoll ?? { attempts: 90, intervalMs: 2000 });
  }

  /**
   * Get Device ID, once per driver, and the vendor facts for its manufacturer ID (remembered in the BMC state, so
   * the next driver of this BMC starts from what this one found). A failed read (BMC down) is asked again next time.
   */
  identify(): Promise<IpmiIdentity> {
    this.identity ??= this.call((c, o) => ipmitool.mcInfo(c, o)).then((mc) => {
      this.learned.manufacturerId = mc.manufacturerId;
      return { mc, vendor: vendorFacts(mc.manufacturerId) };
    });
    this.identity.catch(() => (this.identity = undefined));
    return this.identity;
  }

  /** The vendor's wait after a power command, from what is known of the BMC; nothing for an unknown one. */
  private async settle(): Promise<void> {
    // The power command went through: a BMC that cannot tell who it is gets no wait, not a failed command.
    const vendor = await this.identify().then((i) => i.vendor, () => null);
    if (vendor !== null && vendor.powerSettleMs > 0) await (this.opts.settle ?? sleep)(vendor.powerSettleMs);
  }

  async setBootOverride(o: BootOverride): Promise<void> {
    const request = bootdevRequest(o, this.target.firmware);
    const support = await this.bootFlags();
    await this.waitForSetComplete();
    await this.keepValidBit();
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
    const holds = overrideFromFlags(flags, support);
    if (!rejection && holds && support === 'kept' && !request.persistent && holds.persistent && holds.device === request.device && (holds.mode === 'uefi') === request.efi) {
      // The BMC took "next boot only" and keeps it for all future boots (boot flags byte 1 bit 6 read back set).
      throw new BootOnceNotKeptError(this.target.host, this.bmc, `${mismatch}: this BMC keeps no one-time boot override; it holds ${holds.device} for every boot now`, holds);
    }
    const why = rejection ? `${mismatch}; the BMC rejected the write: ${rejection.message}` : mismatch;
    throw new BootOverrideNotAppliedError(this.target.host, this.bmc, why, { cause: rejection, holds });
  }

  async getBootOverride(): Promise<BootOverride | null> {
    const support = await this.bootFlags();
    return overrideFromFlags(await this.readBootFlags(), support);
  }

  async inventory(): Promise<Inventory> {
    const { mc } = await this.identify();
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
    // A BMC without DCMI power readings answers every time the same way: asked once per driver.
    if (this.noPowerReading) return null;
    const watts = await this.call((c, o) => ipmitool.dcmiPowerReading(c, o));
    if (watts === null) this.noPowerReading = true;
    return watts;
  }

  async close(): Promise<void> {
    // Every ipmitool run opens and closes its own session: nothing is held between calls.
  }

  /**
   * Boot option parameter 0 (IPMI v2.0 Table 28-14): "set in progress" tells that another party is writing the boot
   * options, "a notification flag only, not a resource lock". A BMC with rollback drops what is written meanwhile when
   * the claim ends without a commit, and ipmitool's own claim is then refused (completion code 81h) while it reports
   * success. So: wait for the other party to finish; a claim still there after the bound (a tool that died mid-write;
   * the flag is volatile, only a reset clears it) is cleared with "set complete", as the specification allows.
   * A BMC without parameter 0 is asked no more.
   */
  private async waitForSetComplete(): Promise<void> {
    if (this.noSetInProgress) return;
    const bound = this.opts.setInProgressPoll ?? { attempts: 5, intervalMs: 2000 };
    for (let attempt = 0; ; attempt++) {
      let state: string;
      try {
        state = await this.call((c, o) => ipmitool.getSetInProgress(c, o));
      } catch (err) {
        if (!(err instanceof BmcCommandError)) throw err;
        this.noSetInProgress = true;
        return;
      }
      if (state === 'set complete') return;
      if (attempt >= bound.attempts) break;
      await sleep(bound.intervalMs);
    }
    await this.call((c, o) => ipmitool.clearSetInProgress(c, o));
  }

  /**
   * Boot option parameter 3 bit 3 (IPMI v2.0 Table 28-14): unless it is set, the BMC clears the boot flags' valid bit
   * when no Chassis Control command follows their write within 60 s, and the override is gone before a later boot.
   * OpenStack ironic sends the same by default. Read first, so the bits an operator set stay; written only when bit
   * 3 is not set yet. A BMC without parameter 3 (OpenBMC, per ironic) is asked no more.
   */
  private async keepValidBit(): Promise<void> {
    if (this.learned.noValidBitClearing) return;
    let value: number;
    try {
      value = await this.call((c, o) => ipmitool.getValidBitClearing(c, o));
    } catch (err) {
      if (!(err instanceof BmcCommandError)) throw err;
      this.learned.noValidBitClearing = true;
      return;
    }
    if ((value & 0x08) === 0) await this.call((c, o) => ipmitool.setValidBitClearing(c, value | 0x08, o));
  }

  private async readBootFlags(): Promise<BootFlags> {
    return this.call((c, o) => ipmitool.getBootFlags(c, o));
  }

  private async bootFlags(): Promise<BootFlagsSupport> {
    const configured = this.opts.bootFlags ?? 'auto';
    return configured !== 'auto' ? configured : (await this.identify()).vendor.bootFlags;
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
          return this.withCipherSuite(command);
        });
      return await this.gate.command(this.key, run, (err) => (err instanceof IpmiUnreachableError ? err.detail : undefined));
    } catch (err) {
      throw this.productError(err);
    }
  }

  /**
   * The suite the BMC took (this driver's, or an earlier driver's of this BMC), or each of `suites` in turn while the
   * BMC refuses the cipher suite (not the password) or, before any suite is known, leaves it unanswered: what a BMC
   * without suite 17 answers to it is not documented for every vendor (vendor-facts.ts, UNVERIFIED). A suite tried
   * before another is asked once, without retries.
   */
  private async withCipherSuite<T>(command: (conn: IpmiConnection, opts: IpmitoolRunOptions) => Promise<T>): Promise<T> {
    const known = this.suite ?? (this.target.cipherSuite === undefined ? this.learned.cipherSuite : undefined);
    const candidates = known !== undefined ? [known] : this.suites;
    const refused: string[] = [];
    for (const suite of candidates) {
      const last = suite === candidates.at(-1);
      try {
        const result = await command({ ...this.conn, cipherSuite: suite }, last ? this.runOptions : { ...this.runOptions, retries: 0 });
        this.suite = suite;
        if (refused.length > 0) this.skipped = refused;
        if (this.target.cipherSuite === undefined) this.learned.cipherSuite = suite;
        return result;
      } catch (err) {
        if (err instanceof IpmiUnreachableError && !last) {
          refused.push(`${suite}: no answer`);
          continue;
        }
        if (!(err instanceof IpmiAuthError) || !cipherSuiteRefused(err.detail) || last) {
          if (err instanceof IpmiAuthError && refused.length > 0) throw new IpmiAuthError(err.bmc, err.command, `${err.detail} (cipher suite ${suite}; refused before: ${refused.join(', ')})`);
          if (err instanceof IpmiAuthError && cipherSuiteRefused(err.detail)) throw new IpmiAuthError(err.bmc, err.command, `${err.detail} (cipher suite ${suite})`);
          throw err;
        }
        refused.push(`${suite}: ${err.detail}`);
      }
    }
    throw new Error('unreachable: the loop returns or throws');
  }

  /** The cipher suite in use (after the first session), for `forseti bmc probe`. */
  cipherSuite(): number | undefined {
    return this.suite;
  }

  /** The suites tried before the one taken, and why each was passed over (first session only). */
  passedOver(): readonly string[] {
    return this.skipped;
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
