// BmcDriver over Redfish. Every write is checked by reading the system back: power until PowerState matches,
// boot overrides because some BMCs answer a PATCH with 200 and keep nothing (bmclib #459).
import { setTimeout as delay } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { BmcState } from './bmc-state.ts';
import { CommandQueue, DEFAULT_MIN_INTERVAL_MS } from './command-queue.ts';
import type { BmcDriver, BmcTarget, Inventory } from './driver.ts';
import type { BootOverride, PowerState } from '../core/power.ts';
import { BmcAuthError, BmcCommandError, BmcUnreachableError, BootOnceNotKeptError, BootOverrideNotAppliedError, PowerStateNotReachedError } from './errors.ts';
import { BmcBackingOffError } from './gate.ts';
import type { BmcGate } from './gate.ts';
import type { PollBound } from './ipmi-driver.ts';
import { RedfishClient } from './redfish/client.ts';
import type { RedfishClientOptions } from './redfish/client.ts';
import { RedfishAnswerRefusedError, RedfishAuthError, RedfishHttpError, RedfishServiceError, RedfishTlsError, RedfishUnreachableError } from './redfish/errors.ts';
import { readInventory, readPowerDraw } from './redfish/inventory.ts';
import { bootOf, findSystem, inPost, patchBoot, postStateOf, powerStateOf, readSystem, reset, resetAction } from './redfish/system.ts';
import type { BootPatch, BootSettings, ResetAction, SystemRead } from './redfish/system.ts';
import { bmcDispatcher, BmcTlsError } from './tls.ts';

export interface RedfishDriverOptions {
  /** Which ComputerSystem (its Id); default the first member of /redfish/v1/Systems. */
  systemId?: string;
  /** Default https; plain http only for simulators. */
  scheme?: 'https' | 'http';
  /** Default `auto`: a session, or Basic auth if the service has none. */
  auth?: RedfishClientOptions['auth'];
  /** The BMC state of the driver's owner (its gate, this BMC's queue, warnings given); default: one of the driver's own. */
  state?: BmcState;
  /** Default: this BMC's queue in `state` (see command-queue.ts); every HTTP exchange goes through it. */
  queue?: CommandQueue;
  /** For the default queue, if this call creates it; default 2000 ms. */
  minIntervalMs?: number;
  /** The bound on BMC exchanges and the unreachable back-off; default the gate of `state`. */
  gate?: BmcGate;
  /** Reading PowerState back after a reset; default 30 × 1000 ms. */
  powerPoll?: PollBound;
  /** Waiting for the OS to shut down after softOff; default 90 × 2000 ms. */
  softOffPoll?: PollBound;
  /** Waiting out POST on a service that refuses boot changes during POST (HPE iLO); default 90 × 2000 ms. */
  postPoll?: PollBound;
  /** Pauses between polls and retries (tests pass a recorder). */
  sleep?: (ms: number) => Promise<void>;
  /** Timeouts and retry bounds of each request. */
  http?: Pick<RedfishClientOptions, 'timeoutMs' | 'retries' | 'retryDelayMs' | 'busyRetries' | 'busyDelayMs' | 'maxDelayMs'>;
  /** Replaces the TLS dispatcher built from target.tls. */
  dispatcher?: Dispatcher;
  log?: { warn(fields: Record<string, unknown>, message: string): void };
}

const REDFISH_TARGET = { pxe: 'Pxe', disk: 'Hdd', none: 'None' } as const;
const REDFISH_MODE = { bios: 'Legacy', uefi: 'UEFI' } as const;

export class RedfishDriver implements BmcDriver {
  readonly kind = 'redfish';
  readonly bmc: string;
  private readonly client: RedfishClient;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly gate: BmcGate;
  private systemPath: Promise<string> | undefined;
  private resetInfo: Promise<ResetAction> | undefined;

  constructor(
    private readonly target: BmcTarget,
    private readonly opts: RedfishDriverOptions = {},
  ) {
    const scheme = opts.scheme ?? 'https';
    const port = target.port ?? (scheme === 'https' ? 443 : 80);
    this.bmc = redfishBmcKey(target, scheme);
    const state = opts.state ?? new BmcState();
    const queue = opts.queue ?? state.queue(this.bmc, { minIntervalMs: opts.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS });
    const gate = (this.gate = opts.gate ?? state.gate);
    this.sleep = opts.sleep ?? ((ms) => delay(ms));
    this.ownsDispatcher = opts.dispatcher === undefined;
    this.dispatcher =
      opts.dispatcher ??
      bmcDispatcher({
        bmc: this.bmc,
        host: target.host,
        ...(target.tls ? { tls: target.tls } : {}),
        ...(opts.http?.timeoutMs !== undefined ? { connectTimeoutMs: opts.http.timeoutMs } : {}),
        // Said once per BMC for the owner's life, not once per driver (drivers are rebuilt per commit).
        ...(opts.log ? { warn: (fields, message) => void (state.once(`insecure ${this.bmc}`) && opts.log?.warn(fields, message)) } : {}),
      });
    const host = target.address.includes(':') ? `[${target.address}]` : target.address;
    this.client = new RedfishClient(
      { baseUrl: `${scheme}://${host}:${port}`, username: target.username, password: target.password },
      { ...opts.http, dispatcher: this.dispatcher, schedule: (exchange) => queue.run(() => gate.exchange(this.bmc, exchange)), sleep: this.sleep, ...(opts.auth ? { auth: opts.auth } : {}) },
    );
  }

  powerState(): Promise<PowerState> {
    return this.op('powerState', async () => powerOf(await this.readSystem()));
  }

  powerOn(): Promise<void> {
    return this.op('powerOn', async () => {
      await this.resetTo(['On', 'ForceOn', 'PushPowerButton'], 'on');
      await this.waitForPower('on', this.opts.powerPoll);
    });
  }

  powerOff(): Promise<void> {
    return this.op('powerOff', async () => {
      await this.resetTo(['ForceOff'], 'off');
      await this.waitForPower('off', this.opts.powerPoll);
    });
  }

  powerCycle(): Promise<void> {
    return this.op('powerCycle', async () => {
      const system = await this.readSystem();
      // A host that is off just gets "On": many BMCs refuse PowerCycle/ForceRestart then, and a fresh boot is the intent.
      const types = powerOf(system) === 'off' ? ['On', 'ForceOn'] : ['PowerCycle', 'ForceRestart'];
      await this.resetTo(types, 'on', system);
      await this.waitForPower('on', this.opts.powerPoll);
    });
  }

  softOff(): Promise<void> {
    return this.op('softOff', async () => {
      // iLO 4 offers no GracefulShutdown; its PushPowerButton is the ACPI press (ComputerSystem schema, Reset action).
      await this.resetTo(['GracefulShutdown', 'PushPowerButton'], 'off');
      await this.waitForPower('off', this.opts.softOffPoll ?? { attempts: 90, intervalMs: 2000 });
    });
  }

  setBootOverride(o: BootOverride): Promise<void> {
    return this.op('setBootOverride', async () => {
      const system = await this.readSystem();
      const before = bootOf(system.doc);
      const full = bootPatch(o, this.target.firmware, before);
      this.checkAllowed(full, before);
      let written = await this.writeBoot(system, full, before);
      let after = bootOf((await this.readSystem()).doc);
      if (written.sent !== undefined && modeReset(written.sent, before, after)) {
        // A PATCH without Mode put the Mode back to the service's default (Supermicro, DMTF Redfishtool #106): send it too.
        written = await this.writeBoot(await this.readSystem(), { ...written.sent, BootSourceOverrideMode: before.mode! }, before);
        after = bootOf((await this.readSystem()).doc);
      }
      const sent = written.sent ?? full;
      const mismatch = bootMismatch(sent, after);
      if (mismatch === null) return;
      const holds = overrideOf(after);
      if (holds !== null && onceNotKept(sent, after)) {
        // The BMC keeps no one-time override (kubevirtbmc #165: Once reads back Continuous): it is one for every boot now.
        throw new BootOnceNotKeptError(this.target.host, this.bmc, `${mismatch}: this BMC keeps no one-time boot override; it holds ${describeBoot(after)} for every boot now`, holds);
      }
      const rejection = written.rejection;
      const why = rejection ? `${mismatch}; the BMC rejected the write: ${rejection.request}: ${rejection.detail}` : `${mismatch} (the BMC answered the PATCH with success)`;
      const undo = await this.undoBoot(before, after);
      throw new BootOverrideNotAppliedError(this.target.host, this.bmc, `${why}; ${undo.note}`, { cause: rejection, holds: undo.holds });
    });
  }

  getBootOverride(): Promise<BootOverride | null> {
    return this.op('getBootOverride', async () => overrideOf(bootOf((await this.readSystem()).doc)));
  }

  inventory(): Promise<Inventory> {
    return this.op('inventory', async () => {
      const raw = await readInventory(this.client, await this.readSystem());
      const inv: Inventory = {};
      if (raw.manufacturer) inv.manufacturer = raw.manufacturer;
      if (raw.model) inv.model = raw.model;
      if (raw.serialNumber) inv.serialNumber = raw.serialNumber;
      if (raw.managerFirmware) inv.bmcFirmware = raw.managerFirmware;
      if (raw.processorCount !== undefined) inv.processors = { count: raw.processorCount, ...(raw.processorModel ? { model: raw.processorModel } : {}) };
      if (raw.memoryGiB !== undefined) inv.memoryGiB = raw.memoryGiB;
      if (raw.drives) inv.storage = raw.drives.map(({ mediaType: _m, protocol: _p, ...drive }) => drive);
      if (raw.macs) inv.macs = raw.macs;
      return inv;
    });
  }

  powerDraw(): Promise<number | null> {
    return this.op('powerDraw', async () => readPowerDraw(this.client, await this.readSystem()));
  }

  /** How the driver logs in (`session`, or `basic` with what was tried first); undefined before the first request. */
  loginMethod(): Promise<{ kind: 'session' | 'basic'; tried: string[] } | undefined> {
    return this.client.loginMethod();
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
    if (this.ownsDispatcher) await this.dispatcher.close().catch(() => undefined);
  }

  /** The system now; the first call finds it through /redfish/v1/Systems (and that read is the answer). */
  private async readSystem(): Promise<SystemRead> {
    if (this.systemPath === undefined) {
      const found = findSystem(this.client, this.opts.systemId);
      const path = found.then((s) => s.path);
      this.systemPath = path;
      path.catch(() => {
        if (this.systemPath === path) this.systemPath = undefined; // a failed discovery (BMC down) must not stick
      });
      return found;
    }
    return readSystem(this.client, await this.systemPath);
  }

  /** Posts the first reset type of `preferred` the BMC allows; "already there" refusals are success. */
  private async resetTo(preferred: string[], want: 'on' | 'off', known?: SystemRead): Promise<void> {
    if (this.resetInfo === undefined) {
      const info = (known ? Promise.resolve(known) : this.readSystem()).then((s) => resetAction(this.client, s));
      this.resetInfo = info;
      info.catch(() => {
        if (this.resetInfo === info) this.resetInfo = undefined;
      });
    }
    const action = await this.resetInfo;
    const type = action.allowed === undefined ? preferred[0] : preferred.find((t) => action.allowed!.includes(t));
    if (type === undefined) {
      throw new RedfishServiceError(this.client.bmc, `POST ${action.target}`, `the BMC allows none of ${preferred.join(', ')} (it allows ${action.allowed?.join(', ')})`);
    }
    // The power button toggles: pressed on a system already there, it would undo the very state asked for.
    if (type === 'PushPowerButton' && powerOf(known ?? (await this.readSystem())) === want) return;
    try {
      await reset(this.client, action, type);
    } catch (err) {
      // iDRAC and others answer "On" for a running host (or ForceOff for a stopped one) with 409 or 400.
      if (err instanceof RedfishHttpError && (err.status === 409 || err.status === 400) && powerOf(await this.readSystem()) === want) return;
      throw err;
    }
  }

  private async waitForPower(want: 'on' | 'off', bound: PollBound = { attempts: 30, intervalMs: 1000 }): Promise<void> {
    let last = 'unknown';
    for (let attempt = 1; attempt <= bound.attempts; attempt++) {
      const system = await this.readSystem();
      last = powerStateOf(system.doc) ?? 'unknown';
      if (powerOf(system) === want) return;
      if (attempt < bound.attempts) await this.sleep(bound.intervalMs);
    }
    throw new PowerStateNotReachedError(this.target.host, this.bmc, want, last);
  }

  /**
   * PATCHes the Boot object: once more with a fresh ETag after 412 (stale) or 428 (the service demands If-Match:
   * Supermicro, Lenovo XCC, ansible #56050), once more after POST on a service that refuses boot changes during POST
   * (HPE iLO), and with the fallback payload after a 400. `sent`: what the service took; `rejection`: its last refusal.
   */
  private async writeBoot(system: SystemRead, full: BootPatch, before: BootSettings): Promise<{ sent?: BootPatch; rejection?: RedfishHttpError }> {
    let current = system;
    const write = async (patch: BootPatch): Promise<void> => {
      try {
        await patchBoot(this.client, current, patch);
      } catch (err) {
        if (!(err instanceof RedfishHttpError)) throw err;
        if (err.status === 412 || err.status === 428) {
          current = await this.readSystem();
          await patchBoot(this.client, current, patch, current.etag ?? '*');
        } else if (err.status === 400 && (/UnableToModifyDuringSystemPOST/i.test(err.detail) || inPost(current.doc))) {
          current = await this.waitOutPost();
          await patchBoot(this.client, current, patch);
        } else {
          throw err;
        }
      }
    };
    let rejection: RedfishHttpError | undefined;
    for (const patch of [full, ...fallbackPatches(full, before)]) {
      try {
        await write(patch);
        return { sent: patch };
      } catch (err) {
        if (!(err instanceof RedfishHttpError)) throw err;
        rejection = err;
        if (err.status !== 400) break;
      }
    }
    return rejection ? { rejection } : {};
  }

  /** Writes back what the BMC held before a write it did not keep as written; says what it holds now. */
  private async undoBoot(before: BootSettings, after: BootSettings): Promise<{ holds: BootOverride | null; note: string }> {
    if (sameBoot(before, after)) return { holds: overrideOf(after), note: `nothing was changed: the BMC holds ${describeBoot(after)}` };
    const undo: BootPatch = { BootSourceOverrideEnabled: before.enabled ?? 'Disabled' };
    if (before.target !== undefined) undo.BootSourceOverrideTarget = before.target;
    if (before.mode !== undefined && before.mode !== after.mode) undo.BootSourceOverrideMode = before.mode;
    await this.writeBoot(await this.readSystem(), undo, after);
    const now = bootOf((await this.readSystem()).doc);
    const note = sameBoot(before, now) ? `undone: the BMC holds ${describeBoot(now)} again` : `could not undo it: the BMC holds ${describeBoot(now)} now (it held ${describeBoot(before)})`;
    return { holds: overrideOf(now), note };
  }

  /** Polls the system until it is out of POST (HPE PostState), within the POST bound; at least one pause. */
  private async waitOutPost(): Promise<SystemRead> {
    const bound = this.opts.postPoll ?? { attempts: 90, intervalMs: 2000 };
    let system: SystemRead | undefined;
    for (let attempt = 1; attempt <= bound.attempts; attempt++) {
      await this.sleep(bound.intervalMs);
      system = await this.readSystem();
      if (!inPost(system.doc)) return system;
    }
    throw new RedfishServiceError(this.client.bmc, `GET ${system?.path ?? 'system'}`, `the system stayed in POST (PostState ${postStateOf(system?.doc ?? {}) ?? '?'}) for ${bound.attempts} polls; boot changes are refused during POST`);
  }

  private checkAllowed(patch: BootPatch, current: BootSettings): void {
    const checks: Array<[string, string | undefined, string[] | undefined]> = [
      ['BootSourceOverrideTarget', patch.BootSourceOverrideTarget, current.allowedTargets],
      ['BootSourceOverrideEnabled', patch.BootSourceOverrideEnabled, current.allowedEnabled],
      ['BootSourceOverrideMode', patch.BootSourceOverrideMode, current.allowedModes],
    ];
    for (const [name, value, allowed] of checks) {
      if (value !== undefined && allowed !== undefined && !allowed.includes(value)) {
        throw new BmcCommandError(this.target.host, this.bmc, 'setBootOverride', `${name} ${value} is not supported by this BMC (it allows ${allowed.join(', ') || 'nothing'}); nothing was written`);
      }
    }
  }

  /** One driver operation, its failure named in the product's terms. */
  private async op<T>(name: string, body: () => Promise<T>): Promise<T> {
    try {
      return await this.gate.command(this.bmc, body, (err) => (err instanceof RedfishUnreachableError ? `${err.request}: ${err.detail}` : undefined));
    } catch (err) {
      throw this.productError(name, err);
    }
  }

  private productError(operation: string, err: unknown): unknown {
    const { host } = this.target;
    if (err instanceof BmcBackingOffError) return new BmcUnreachableError(host, this.bmc, `${operation}: ${err.message}`, { cause: err });
    if (err instanceof RedfishUnreachableError) return new BmcUnreachableError(host, this.bmc, `${operation}: ${err.request}: ${err.detail}`, { cause: err });
    if (err instanceof RedfishAuthError) return new BmcAuthError(host, this.bmc, `${operation}: ${err.request}: ${err.detail}`, { cause: err });
    if (err instanceof RedfishTlsError) return new BmcTlsError(host, this.bmc, `${operation}: ${err.request}: ${err.detail}`, { cause: err });
    if (err instanceof RedfishHttpError || err instanceof RedfishServiceError || err instanceof RedfishAnswerRefusedError) {
      return new BmcCommandError(host, this.bmc, operation, `${err.request}: ${err.detail}`, { cause: err });
    }
    return err;
  }
}

function powerOf(system: SystemRead): PowerState {
  const state = powerStateOf(system.doc);
  return state === 'On' ? 'on' : state === 'Off' ? 'off' : 'unknown';
}

/** The full payload: Enabled, Target, and Mode when forseti knows the firmware and the service has a Mode. */
function bootPatch(o: BootOverride, firmware: 'bios' | 'uefi' | undefined, current: BootSettings): BootPatch {
  if (o.device === 'none') {
    const patch: BootPatch = { BootSourceOverrideEnabled: 'Disabled' };
    if (current.allowedTargets === undefined || current.allowedTargets.includes('None')) patch.BootSourceOverrideTarget = 'None';
    return patch;
  }
  const patch: BootPatch = { BootSourceOverrideEnabled: o.persistent ? 'Continuous' : 'Once', BootSourceOverrideTarget: REDFISH_TARGET[o.device] };
  const mode = o.mode ?? firmware;
  // A service that reports no BootSourceOverrideMode has none to set (iLO 4 on BIOS-only Gen8 ProLiants).
  const hasMode = current.mode !== undefined || current.allowedModes !== undefined;
  if (mode && hasMode) patch.BootSourceOverrideMode = REDFISH_MODE[mode];
  return patch;
}

/**
 * What to send after a 400, in order: without Mode if we sent one (BMCs that refuse to change the mode: HPE ProLiant,
 * ansible community.general #3509, bmclib #318); with the current Mode if we sent none (BMCs that demand all three
 * properties together, community.general #11542); and a disable without the target (HPE iLO refuses None with it,
 * ironcore metal-operator #998).
 */
function fallbackPatches(full: BootPatch, current: BootSettings): BootPatch[] {
  const out: BootPatch[] = [];
  if (full.BootSourceOverrideMode !== undefined) {
    const { BootSourceOverrideMode: _dropped, ...minimal } = full;
    out.push(minimal);
  } else if (current.mode !== undefined) {
    out.push({ ...full, BootSourceOverrideMode: current.mode });
  }
  if (full.BootSourceOverrideEnabled === 'Disabled' && full.BootSourceOverrideTarget !== undefined) out.push({ BootSourceOverrideEnabled: 'Disabled' });
  return out;
}

/** null when the read-back holds what was sent. */
function bootMismatch(sent: BootPatch, after: BootSettings): string | null {
  const wanted = `${sent.BootSourceOverrideTarget ?? '-'}/${sent.BootSourceOverrideEnabled}${sent.BootSourceOverrideMode ? `/${sent.BootSourceOverrideMode}` : ''}`;
  const got = `${after.target ?? '-'}/${after.enabled ?? '-'}${sent.BootSourceOverrideMode ? `/${after.mode ?? '-'}` : ''}`;
  const enabledOk = after.enabled === sent.BootSourceOverrideEnabled;
  const targetOk = sent.BootSourceOverrideEnabled === 'Disabled' || after.target === sent.BootSourceOverrideTarget;
  const modeOk = sent.BootSourceOverrideMode === undefined || after.mode === undefined || after.mode === sent.BootSourceOverrideMode;
  return enabledOk && targetOk && modeOk ? null : `wrote ${wanted}, read back ${got}`;
}

/** The Once the service took reads back Continuous, with the target (and mode) we sent. */
function onceNotKept(sent: BootPatch, after: BootSettings): boolean {
  const modeOk = sent.BootSourceOverrideMode === undefined || after.mode === undefined || after.mode === sent.BootSourceOverrideMode;
  return sent.BootSourceOverrideEnabled === 'Once' && after.enabled === 'Continuous' && after.target === sent.BootSourceOverrideTarget && modeOk;
}

/** We left the Mode out, it was known before, and the write changed it. */
function modeReset(sent: BootPatch, before: BootSettings, after: BootSettings): boolean {
  return sent.BootSourceOverrideMode === undefined && sent.BootSourceOverrideEnabled !== 'Disabled' && before.mode !== undefined && after.mode !== before.mode;
}

function sameBoot(a: BootSettings, b: BootSettings): boolean {
  return a.enabled === b.enabled && a.target === b.target && a.mode === b.mode;
}

/** "Pxe/Continuous/Legacy", as Redfish names them. */
function describeBoot(b: BootSettings): string {
  return `${b.target ?? '-'}/${b.enabled ?? '-'}${b.mode ? `/${b.mode}` : ''}`;
}

function overrideOf(boot: BootSettings): BootOverride | null {
  if (boot.enabled !== 'Once' && boot.enabled !== 'Continuous') return null;
  const device = boot.target === 'Pxe' ? 'pxe' : boot.target === 'Hdd' ? 'disk' : undefined;
  if (device === undefined) return null;
  const override: BootOverride = { device, persistent: boot.enabled === 'Continuous' };
  if (boot.mode === 'Legacy') override.mode = 'bios';
  if (boot.mode === 'UEFI') override.mode = 'uefi';
  return override;
}

/** The BMC's key in the gate and its command queue: "address:port". */
export function redfishBmcKey(target: Pick<BmcTarget, 'address' | 'port'>, scheme: 'https' | 'http' = 'https'): string {
  return `${target.address}:${target.port ?? (scheme === 'https' ? 443 : 80)}`;
}

export function createRedfishDriver(target: BmcTarget, opts?: RedfishDriverOptions): RedfishDriver {
  return new RedfishDriver(target, opts);
}
