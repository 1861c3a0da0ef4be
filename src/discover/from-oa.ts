// Every blade of an HP BladeSystem enclosure, read from its Onboard Administrator's command line: SHOW SERVER LIST
// for the populated bays (each bay asked with SHOW SERVER INFO when the OA prints no list this parser knows), then per
// blade SHOW SERVER INFO (model, serial, processors, memory, NIC MACs, the iLO) and SHOW SERVER BOOT (which NIC
// network-boots: "PXE NIC 1" in its IPL order). Drives are not in the OA's view of a blade.
//
// Which BMC drives a proposed blade (`bladeBmc`):
//  - 'oa' (default): the Onboard Administrator, `bmc.type: hp-oa` with the enclosure bay: the credential just used,
//    one path for every blade whatever its iLO firmware, no certificate to pin. The iLO's address is kept in the
//    `management-address` label.
//  - 'ilo': the blade's own iLO over Redfish, where it speaks Redfish (iLO 4 from firmware 2.30, iLO 5 on; HPE's
//    iLO 4 RESTful API docs: "iLO 4 2.30 is Redfish 1.0 conformant"), probed as `forseti bmc probe` does with the iLO
//    credential (its login checked, its certificate pinned when the system's CAs do not trust it). A blade whose iLO
//    is older, has no address, does not answer or refuses the login is driven through the OA, and the file says why.
import type { ProbeReport } from '../bmc/probe.ts';
import * as oa from '../bmc/oa/index.ts';
import type { OaServerInfo, OaServerListEntry } from '../bmc/oa/index.ts';
import { ipv4ToNumber } from '../model/ipv4.ts';
import type { HostBmc } from '../model/types.ts';
import { DiscoveryAuthError, DiscoveryUnreachableError } from './errors.ts';
import type { MachineFacts, NicFact } from './facts.ts';

export interface Credential {
  name: string;
  username: string;
  password: string;
}

export interface OaDiscoveryOptions {
  address: string;
  /** Default 22. */
  port?: number;
  credential: Credential;
  bladeBmc: 'oa' | 'ilo';
  /** 'ilo': the iLOs' credential, and their HTTPS port when not 443. */
  iloCredential?: Credential;
  iloPort?: number;
  /** Probes an iLO over Redfish ('ilo'): `probeBmc` of src/bmc/probe.ts. */
  probeIlo?: (address: string) => Promise<ProbeReport>;
  timeoutMs?: number;
}

/** c-Class enclosures: a c7000 has 16 device bays, a c3000 8. */
const MAX_BAYS = 16;

/** One MachineFacts per populated bay, in bay order; `enclosure.name` is '' until the caller names the enclosure. */
export async function discoverOa(options: OaDiscoveryOptions): Promise<MachineFacts[]> {
  const port = options.port ?? 22;
  const where = `OA ${options.address}${port === 22 ? '' : `:${port}`}`;
  const timeoutMs = options.timeoutMs ?? 20_000;
  const session = new oa.OaSession({ address: options.address, port, username: options.credential.username, password: options.credential.password, connectTimeoutMs: timeoutMs, commandTimeoutMs: timeoutMs, retries: 0 });
  try {
    const list = await oa.showServerList(session).catch((err: unknown) => {
      if (err instanceof oa.OaCommandError) return null; // an OA that knows no SHOW SERVER LIST: ask each bay
      throw err;
    });
    const rows = new Map((list ?? []).map((row) => [row.bay, row]));
    const bays = list ? list.filter((row) => row.present && row.bay <= MAX_BAYS).map((row) => row.bay) : Array.from({ length: MAX_BAYS }, (_, i) => i + 1);
    const machines: MachineFacts[] = [];
    // The key this session was opened with: each blade's file pins it (bmc.sshHostKey), so the agent checks it.
    const sshHostKey = session.hostKeyFingerprint;
    for (const bay of bays) {
      let info: OaServerInfo;
      try {
        info = await oa.showServerInfo(session, bay);
      } catch (err) {
        if (err instanceof oa.OaCommandError) continue; // an empty bay ("Bay 3 is empty", "No Server Blade Installed")
        throw err;
      }
      const boot = await oa.showServerBoot(session, bay).catch((err: unknown) => {
        if (err instanceof oa.OaCommandError) return null;
        throw err;
      });
      const row = rows.get(bay);
      const power = row?.power ?? (await oa.showServerStatus(session, bay)).power;
      machines.push(await bladeFacts(where, { ...options, ...(sshHostKey ? { sshHostKey } : {}) }, bay, info, row, boot?.bootOrder ?? [], power));
    }
    return machines;
  } catch (err) {
    if (err instanceof oa.OaAuthError) throw new DiscoveryAuthError(where, options.credential.name, 'wrong user name or password', { cause: err });
    if (err instanceof oa.OaUnreachableError || err instanceof oa.OaSessionLostError) throw new DiscoveryUnreachableError(where, err.message, { cause: err });
    throw err;
  } finally {
    await session.close().catch(() => undefined);
  }
}

async function bladeFacts(where: string, options: OaDiscoveryOptions & { sshHostKey?: string }, bay: number, info: OaServerInfo, row: OaServerListEntry | undefined, bootOrder: string[], power: 'on' | 'off' | 'unknown'): Promise<MachineFacts> {
  const notes: string[] = [];
  const ilo = [info.managementProcessor.ipAddress, row?.iloAddress].find((a) => a !== undefined && (ipv4ToNumber(a) ?? 0) !== 0);
  const oaBmc: HostBmc = {
    type: 'hp-oa',
    address: options.address,
    ...(options.port !== undefined && options.port !== 22 ? { port: options.port } : {}),
    credential: options.credential.name,
    ...(options.sshHostKey ? { sshHostKey: options.sshHostKey } : {}),
  };
  let bmc = oaBmc;
  if (options.bladeBmc === 'ilo') {
    const chosen = await iloBmc(ilo, info, options);
    if ('bmc' in chosen) bmc = chosen.bmc;
    else notes.push(`driven through the Onboard Administrator: ${chosen.why}`);
  }
  const cores = info.cpus.map((c) => Number(/\((\d+) cores?\)/i.exec(c)?.[1] ?? NaN));
  const facts: MachineFacts = {
    source: `${where} bay ${bay}`,
    fields: { bay, address: options.address },
    nics: bladeNics(info, bootOrder),
    bmc,
    enclosure: { name: '', bay },
    power,
    notes,
    ...(ilo ? { managementAddress: ilo, bmcAddresses: [ilo] } : {}),
  };
  if (info.manufacturer) facts.manufacturer = info.manufacturer;
  if (info.productName) facts.model = info.productName;
  if (info.serialNumber) facts.serial = info.serialNumber;
  if (info.memoryMiB !== undefined) facts.memoryGiB = info.memoryMiB / 1024;
  if (info.cpus.length > 0) {
    facts.cpus = info.cpus.length;
    facts.cpuModel = info.cpus[0]!.replace(/\s*\(\d+ cores?\)\s*$/i, '');
    if (cores.every(Number.isFinite)) facts.cores = cores.reduce((a, b) => a + b, 0);
  }
  if (!ilo) notes.push('the OA reports no iLO address for this blade');
  return facts;
}

/**
 * The blade's Ethernet NICs (FlexNICs, LOM ports, older "NIC n:" lines; not iSCSI or FCoE functions), by NIC number
 * (the OS's order), the one the IPL order's "PXE NIC n" names marked as network-booting.
 */
function bladeNics(info: OaServerInfo, bootOrder: readonly string[]): NicFact[] {
  const pxe = bootOrder.map((d) => /^PXE NIC\s*(\d+)/i.exec(d)?.[1]).find((n) => n !== undefined);
  const nics = info.nics
    .filter((n) => !/iscsi|fcoe|flexhba/i.test(n.name))
    .map((n, i) => ({ n, i, number: Number(/\(NIC (\d+)\)|^NIC (\d+)/i.exec(n.name)?.slice(1).find(Boolean) ?? NaN) }));
  nics.sort((a, b) => (Number.isNaN(a.number) ? 1e9 + a.i : a.number) - (Number.isNaN(b.number) ? 1e9 + b.i : b.number));
  return nics.map(({ n, number }) => ({ mac: n.mac, label: n.name, ...(pxe !== undefined && number === Number(pxe) ? { pxe: true } : {}) }));
}

/** The iLO as a Redfish BMC, or why the blade stays with the OA. */
async function iloBmc(ilo: string | undefined, info: OaServerInfo, options: OaDiscoveryOptions): Promise<{ bmc: HostBmc } | { why: string }> {
  if (!ilo) return { why: 'the OA reports no iLO address' };
  const mp = info.managementProcessor;
  if (!redfishCapable(mp.type, mp.firmwareVersion)) return { why: `its ${mp.type ?? 'iLO'} firmware ${mp.firmwareVersion ?? '(not reported)'} has no Redfish (iLO 4 from 2.30)` };
  if (!options.probeIlo || !options.iloCredential) return { why: 'no iLO credential (--ilo-credential NAME)' };
  const report = await options.probeIlo(ilo);
  if (report.type !== 'redfish' || !report.bmc) return { why: `its iLO ${ilo} does not answer Redfish over HTTPS (${report.tried.at(-1) ?? 'no answer'})` };
  if (!report.auth || report.auth.startsWith('refused')) return { why: `its iLO ${ilo} ${report.auth ?? 'was not logged in to'}` };
  const { type: _t, ...block } = report.bmc;
  return { bmc: { type: 'redfish', ...block } };
}

/** iLO 4 speaks Redfish from firmware 2.30, iLO 5 and later always; iLO 3 and older never. Unknown: try. */
export function redfishCapable(type: string | undefined, firmware: string | undefined): boolean {
  const generation = Number(/ilo\s*(\d+)/i.exec(type ?? '')?.[1] ?? NaN);
  if (Number.isNaN(generation)) return true;
  if (generation < 4) return false;
  if (generation > 4) return true;
  const version = /^(\d+)\.(\d+)/.exec(firmware ?? '');
  if (!version) return true;
  return Number(version[1]) * 100 + Number(version[2]) >= 230;
}
