// Typed ipmitool commands. Plain parameters in, parsed values out; nothing product-specific.
import { IpmiCommandError } from './errors.ts';
import { parseBootFlags, parseKeyValues, parseMcInfo, parsePowerReading, parsePowerStatus, parseSetInProgress } from './parse.ts';
import type { BootFlags, ChassisPower, McInfo, SetInProgress } from './parse.ts';
import { bmcLabel, runIpmitool } from './run.ts';
import type { IpmiConnection, IpmitoolRunOptions } from './run.ts';

export type { IpmiConnection, IpmitoolRunOptions } from './run.ts';
export type { BootFlags, BootSelector, ChassisPower, McInfo, SetInProgress } from './parse.ts';

export type PowerAction = 'on' | 'off' | 'cycle' | 'soft' | 'reset';
export type BootdevTarget = 'pxe' | 'disk' | 'none';

export interface BootdevRequest {
  device: BootdevTarget;
  persistent: boolean;
  efi: boolean;
}

export async function powerStatus(conn: IpmiConnection, opts?: IpmitoolRunOptions): Promise<ChassisPower> {
  const out = await runIpmitool(conn, { command: ['chassis', 'power', 'status'], idempotent: true }, opts);
  return parsePowerStatus(out.stdout);
}

/** cycle, soft and reset are not repeated on an uncertain outcome: a second one would act twice. */
export async function powerControl(conn: IpmiConnection, action: PowerAction, opts?: IpmitoolRunOptions): Promise<void> {
  const idempotent = action === 'on' || action === 'off';
  await runIpmitool(conn, { command: ['chassis', 'power', action], idempotent }, opts);
}

/** The argument words of `chassis bootdev`, e.g. `disk options=efiboot,persistent`. */
export function bootdevCommand(req: BootdevRequest): string[] {
  const options = [...(req.efi ? ['efiboot'] : []), ...(req.persistent ? ['persistent'] : [])];
  const command = ['chassis', 'bootdev', req.device];
  return req.device !== 'none' && options.length > 0 ? [...command, `options=${options.join(',')}`] : command;
}

/** ipmitool exits 0 even when the BMC rejects this; run.ts catches its "failed" wording. */
export async function setBootdev(conn: IpmiConnection, req: BootdevRequest, opts?: IpmitoolRunOptions): Promise<void> {
  await runIpmitool(conn, { command: bootdevCommand(req), idempotent: true }, opts);
}

export async function getBootFlags(conn: IpmiConnection, opts?: IpmitoolRunOptions): Promise<BootFlags> {
  const command = ['chassis', 'bootparam', 'get', '5'];
  const out = await runIpmitool(conn, { command, idempotent: true }, opts);
  const flags = parseBootFlags(out.stdout);
  if (flags === null) throw new IpmiCommandError(bmcLabel(conn), command.join(' '), 'no "Boot Device Selector" in the output');
  return flags;
}

/** Boot option parameter 0; throws IpmiCommandError where the BMC does not implement it. */
export async function getSetInProgress(conn: IpmiConnection, opts?: IpmitoolRunOptions): Promise<SetInProgress> {
  const command = ['chassis', 'bootparam', 'get', '0'];
  const out = await runIpmitool(conn, { command, idempotent: true }, opts);
  const state = parseSetInProgress(out.stdout);
  if (state === null) throw new IpmiCommandError(bmcLabel(conn), command.join(' '), 'no "Set In Progress" in the output');
  return state;
}

/** Set System Boot Options (NetFn chassis 00h, command 08h), parameter 0 = 00b "set complete". */
export async function clearSetInProgress(conn: IpmiConnection, opts?: IpmitoolRunOptions): Promise<void> {
  await runIpmitool(conn, { command: ['raw', '0x00', '0x08', '0x00', '0x00'], idempotent: true }, opts);
}

/** Boot option parameter 3, "BMC boot flag valid bit clearing" (IPMI v2.0 Table 28-14): its data byte. */
export async function getValidBitClearing(conn: IpmiConnection, opts?: IpmitoolRunOptions): Promise<number> {
  const command = ['raw', '0x00', '0x09', '0x03', '0x00', '0x00'];
  const out = await runIpmitool(conn, { command, idempotent: true }, opts);
  const bytes = out.stdout.trim().split(/\s+/);
  // Get System Boot Options answers: parameter version, parameter selector (3), the data byte.
  if (bytes.length !== 3 || !bytes.every((b) => /^[0-9a-f]{2}$/i.test(b)) || Number.parseInt(bytes[1]!, 16) !== 3) {
    throw new IpmiCommandError(bmcLabel(conn), command.join(' '), `not a parameter 3 answer: ${out.stdout.trim().slice(0, 80)}`);
  }
  return Number.parseInt(bytes[2]!, 16);
}

/** Writes boot option parameter 3 (bits 4:0). */
export async function setValidBitClearing(conn: IpmiConnection, value: number, opts?: IpmitoolRunOptions): Promise<void> {
  const data = `0x${(value & 0x1f).toString(16).padStart(2, '0')}`;
  await runIpmitool(conn, { command: ['raw', '0x00', '0x08', '0x03', data], idempotent: true }, opts);
}

export async function mcInfo(conn: IpmiConnection, opts?: IpmitoolRunOptions): Promise<McInfo> {
  const out = await runIpmitool(conn, { command: ['mc', 'info'], idempotent: true }, opts);
  return parseMcInfo(out.stdout);
}

/** The built-in FRU (ID 0) as key/value pairs; `fru print` without an ID also walks the SDRs. */
export async function fruPrint(conn: IpmiConnection, opts?: IpmitoolRunOptions): Promise<Map<string, string>> {
  const out = await runIpmitool(conn, { command: ['fru', 'print', '0'], idempotent: true }, opts);
  return parseKeyValues(out.stdout);
}

/** Watts, or null when the BMC does not implement DCMI power readings. */
export async function dcmiPowerReading(conn: IpmiConnection, opts?: IpmitoolRunOptions): Promise<number | null> {
  try {
    const out = await runIpmitool(conn, { command: ['dcmi', 'power', 'reading'], idempotent: true }, opts);
    return parsePowerReading(out.stdout);
  } catch (err) {
    if (err instanceof IpmiCommandError) return null;
    throw err;
  }
}
