// The OA CLI commands forseti uses, one function each, over a shared session. Bays are 1-16 (c7000).
import { OaCommandError } from './errors.ts';
import { findOaError, parseServerBoot, parseServerInfo, parseServerList, parseServerStatus } from './parse.ts';
import type { OaServerBoot, OaServerInfo, OaServerListEntry, OaServerStatus } from './parse.ts';
import type { OaSession, RunOptions } from './session.ts';

/** Devices `SET SERVER BOOT ONCE` takes; NORMAL clears a one-time boot. */
export type OaBootOnceDevice = 'NORMAL' | 'PXE' | 'HDD' | 'CD' | 'FLOPPY' | 'USB' | 'RBSU';
/** Devices `SET SERVER BOOT FIRST` moves to the top of the blade's IPL order. */
export type OaBootFirstDevice = 'PXE' | 'HDD' | 'CD' | 'FLOPPY' | 'USB';

async function run(session: OaSession, command: string, options: RunOptions): Promise<string> {
  const output = await session.run(command, options);
  const error = findOaError(output);
  if (error !== null) throw new OaCommandError(session.oa, command, error);
  return output;
}

function bayArg(bay: number): string {
  if (!Number.isInteger(bay) || bay < 1 || bay > 64) throw new RangeError(`bay must be an integer 1-64, got ${bay}`);
  return String(bay);
}

/** Every bay of the enclosure in one command; null when the OA printed no table this parser knows. */
export async function showServerList(session: OaSession): Promise<OaServerListEntry[] | null> {
  return parseServerList(await run(session, 'SHOW SERVER LIST', { idempotent: true }));
}

export async function showServerStatus(session: OaSession, bay: number): Promise<OaServerStatus> {
  return parseServerStatus(await run(session, `SHOW SERVER STATUS ${bayArg(bay)}`, { idempotent: true }), bay);
}

export async function showServerInfo(session: OaSession, bay: number): Promise<OaServerInfo> {
  return parseServerInfo(await run(session, `SHOW SERVER INFO ${bayArg(bay)}`, { idempotent: true }), bay);
}

export async function showServerBoot(session: OaSession, bay: number): Promise<OaServerBoot> {
  return parseServerBoot(await run(session, `SHOW SERVER BOOT ${bayArg(bay)}`, { idempotent: true }), bay);
}

export async function setServerBootOnce(session: OaSession, bay: number, device: OaBootOnceDevice): Promise<void> {
  await run(session, `SET SERVER BOOT ONCE ${device} ${bayArg(bay)}`, { idempotent: true });
}

/**
 * Moves a device to the top of the blade's IPL (boot) order, for every boot to come. The syntax
 * `SET SERVER BOOT FIRST {PXE|HDD|…} <bays>` is the one opnfv/fuel's deploy/dha_adapters/hp_adapter.py sends to
 * c7000 OAs (and reads back with SHOW SERVER BOOT's "IPL Devices (Boot Order):" list, as we do).
 */
export async function setServerBootFirst(session: OaSession, bay: number, device: OaBootFirstDevice): Promise<void> {
  await run(session, `SET SERVER BOOT FIRST ${device} ${bayArg(bay)}`, { idempotent: true });
}

export async function powerOnServer(session: OaSession, bay: number): Promise<void> {
  await run(session, `POWERON SERVER ${bayArg(bay)}`, { idempotent: true });
}

/** Hard off (the blade's power button held), no OS shutdown. */
export async function powerOffServerForce(session: OaSession, bay: number): Promise<void> {
  await run(session, `POWEROFF SERVER ${bayArg(bay)} FORCE`, { idempotent: true });
}

/** Cold reset of a running blade. Not repeated after a dropped session: it could reset the blade twice. */
export async function rebootServerForce(session: OaSession, bay: number): Promise<void> {
  await run(session, `REBOOT SERVER ${bayArg(bay)} FORCE`, {});
}

/** A momentary press of the blade's power button: the OS is asked to shut down. */
export async function powerOffServer(session: OaSession, bay: number): Promise<void> {
  await run(session, `POWEROFF SERVER ${bayArg(bay)}`, { idempotent: true });
}
