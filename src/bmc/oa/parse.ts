// Parsers for the Onboard Administrator's command line output (HP BladeSystem c7000/c3000, OA firmware 3.x-4.x):
// `SHOW SERVER STATUS`, `SHOW SERVER INFO`, `SHOW SERVER BOOT`, `SHOW SERVER LIST`, and the OA's error lines. The OA prints
// "Label: value" lines indented with tabs under a section title such as "Blade #3 Status:".
//
// Checked against public code that drives real c7000 OAs (HP's CLI user guide itself was not available to us):
//  - ClusterLabs/fence-agents agents/hpblade/fence_hpblade.py: `show server status N` read with
//    /^\s*Power: (.*?)\s*$/; `poweron server N`; `poweroff server N force`; `exit` to log out.
//  - opnfv/fuel deploy/dha_adapters/hp_adapter.py: `show server info N`, NICs as "…LOM1:1-a<space>MAC" and
//    "Product Name:"; "No Server Blade Installed" / "Invalid Arguments" for a bay without a blade;
//    `set server boot first {pxe|hdd} <bays>`; `show server boot N`, whose devices follow the line
//    "IPL Devices (Boot Order):" one per line, tab-indented, named "PXE NIC 1", "Hard Drive …", "CD-ROM", "USB",
//    "Diskette Drive …"; its earlier revision matched them UNnumbered ("Boot Order):", "\tPXE NIC 1", "\tHard Drive").
//  - an HP blade driver in a public lab-automation script: "Blade #N Status:" then /Power:\s+(\S+)/; older
//    firmware's "NIC 1: MAC" lines in SHOW SERVER INFO; SET SERVER BOOT FIRST answered "… Blade #N … boot order
//    changed to PXE"; POWERON answered "Powering on blade 7."; the syntax
//    `REBOOT SERVER {ALL | <bay>[{,|-}<bay>]} [FORCE] [{NORMAL|PXE|HDD|RBSU|CD|FLOPPY|USB}]`.
//  - a public Java lab-automation library that reads blade MACs with `show SERVER INFO N`: NIC lines as "Ethernet
//    FlexNIC LOM:1-a - MAC", "NIC 1 MAC Address: MAC", "Ethernet FlexNIC (NIC 1) LOM:1-a MAC" and "Ethernet FlexNIC
//    (NIC 1) LOM1:1-a MAC"; the OS's eth0-eth3 are NIC 1-4 = LOM ports 1-a, 2-a, 1-b, 2-b; a standby OA answers "Not
//    a valid request while running in standby mode".
// Not confirmed by any source we found: the exact label of the one-time boot line in SHOW SERVER BOOT (we accept
// "One time boot from" in either capitalisation) and the wording of REBOOT's reply (never parsed: only errors are).

export type OaPower = 'on' | 'off' | 'unknown';

export interface OaServerStatus {
  bay: number;
  power: OaPower;
  /** The OA's word for it: "On", "Off", … */
  powerText: string;
  health?: string;
  wattage?: number;
  uidLed?: string;
  /** Diagnostic Status lines, e.g. {"iLO Network": "OK"}. */
  diagnostics: Record<string, string>;
}

export interface OaNic {
  /** The OA's label, e.g. "Ethernet FlexNIC (NIC 1) LOM1:1-a" or "NIC 1". */
  name: string;
  /** Lower-case, colon-separated. */
  mac: string;
}

export interface OaServerInfo {
  bay: number;
  type?: string;
  manufacturer?: string;
  productName?: string;
  partNumber?: string;
  serialNumber?: string;
  uuid?: string;
  serverName?: string;
  romVersion?: string;
  cpus: string[];
  memoryMiB?: number;
  nics: OaNic[];
  managementProcessor: {
    type?: string;
    name?: string;
    firmwareVersion?: string;
    ipAddress?: string;
    mac?: string;
  };
}

/** What the OA will boot the blade from once, at its next boot; null: none (the blade's own boot order). */
export type OaOneTimeBoot = 'pxe' | 'hdd' | 'cd' | 'floppy' | 'usb' | 'rbsu' | 'other' | null;
/** A device of the IPL order, classified. */
export type OaBootDevice = Exclude<OaOneTimeBoot, null>;

export interface OaServerBoot {
  bay: number;
  oneTimeBoot: OaOneTimeBoot;
  /** As printed, e.g. "PXE NIC", "None". */
  oneTimeBootText: string;
  /** The IPL devices in boot order, as printed (a leading "1. " numbering, if any, removed). */
  bootOrder: string[];
  /** The first IPL device, classified; undefined when the OA listed none. */
  firstBootDevice?: OaBootDevice;
}

// Six colon-separated bytes and no more: a Fibre Channel mezzanine's WWPN ("Port 1: 50:01:43:80:…", eight bytes) in
// the same SHOW SERVER INFO output is no MAC.
const MAC = /(?<![0-9A-Fa-f:])([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})(?![0-9A-Fa-f:])/;

/**
 * The OA's own error report in a command's output, or null. The OA prints errors as text and keeps the
 * session: "Error: …", "Invalid Arguments", "Bay 3 is empty", "… is not a valid …".
 */
export function findOaError(output: string): string | null {
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (/^error\b/i.test(line) || /^invalid (arguments|command)/i.test(line) || /^bay \d+ is empty/i.test(line) || /\bis not a valid\b/i.test(line)) return line;
    if (/^there is no (server )?blade in (this )?bay/i.test(line) || /\bno server blade installed\b/i.test(line)) return line;
    if (/^not a valid request while running in standby mode/i.test(line)) return line; // the standby OA of a pair
  }
  return null;
}

/** "Label: value" pairs of one section (indentation ignored); the first occurrence of a label wins. */
function fields(lines: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of lines) {
    const m = /^\s*([^:]+?):\s?(.*)$/.exec(line);
    if (m && !out.has(m[1]!.trim())) out.set(m[1]!.trim(), m[2]!.trim());
  }
  return out;
}

function lines(output: string): string[] {
  return output.replace(/\r/g, '').split('\n');
}

export function parseServerStatus(output: string, bay: number): OaServerStatus {
  const all = lines(output);
  const diagStart = all.findIndex((l) => /^\s*Diagnostic Status:\s*$/.test(l));
  const head = diagStart === -1 ? all : all.slice(0, diagStart);
  const f = fields(head);
  const powerText = f.get('Power') ?? '';
  const power: OaPower = /^on$/i.test(powerText) ? 'on' : /^off$/i.test(powerText) ? 'off' : 'unknown';
  const status: OaServerStatus = { bay, power, powerText, diagnostics: {} };
  const health = f.get('Health');
  if (health) status.health = health;
  const watts = Number.parseInt(f.get('Current Wattage used') ?? '', 10);
  if (Number.isFinite(watts)) status.wattage = watts;
  const uid = f.get('Unit Identification LED');
  if (uid) status.uidLed = uid;
  if (diagStart !== -1) {
    for (const line of all.slice(diagStart + 1)) {
      const m = /^\s+(\S.*?)\s{2,}(\S.*?)\s*$/.exec(line);
      if (m) status.diagnostics[m[1]!] = m[2]!;
      else if (line.trim() !== '') break;
    }
  }
  return status;
}

export function parseServerInfo(output: string, bay: number): OaServerInfo {
  const all = lines(output);
  const mpStart = all.findIndex((l) => /^\s*Management Processor Information:\s*$/.test(l));
  const blade = mpStart === -1 ? all : all.slice(0, mpStart);
  const mp = mpStart === -1 ? [] : all.slice(mpStart + 1);
  const f = fields(blade);
  const info: OaServerInfo = { bay, cpus: [], nics: [], managementProcessor: {} };
  const set = <K extends keyof OaServerInfo>(key: K, label: string): void => {
    const v = f.get(label);
    if (v && v !== '[Unknown]') (info as unknown as Record<string, string>)[key] = v;
  };
  set('type', 'Type');
  set('manufacturer', 'Manufacturer');
  set('productName', 'Product Name');
  set('partNumber', 'Part Number');
  set('serialNumber', 'Serial Number');
  set('uuid', 'UUID');
  set('serverName', 'Server Name');
  set('romVersion', 'ROM Version');
  const memory = /^(\d+)\s*MB/i.exec(f.get('Memory') ?? '');
  if (memory) info.memoryMiB = Number(memory[1]);
  for (const line of blade) {
    const cpu = /^\s*CPU \d+:\s*(.+)$/.exec(line);
    if (cpu) info.cpus.push(cpu[1]!.trim());
    const mac = MAC.exec(line);
    if (mac) {
      const name = line.slice(0, mac.index).trim().replace(/\s*(MAC Address)?:?$/i, '').trim();
      info.nics.push({ name, mac: mac[1]!.toLowerCase() });
    }
  }
  const m = fields(mp);
  const mpField = (label: string): string | undefined => {
    const v = m.get(label);
    return v && v !== '[Unknown]' ? v : undefined;
  };
  const mpInfo = info.managementProcessor;
  const type = mpField('Type');
  const name = mpField('Name');
  const fw = mpField('Firmware Version');
  const ip = mpField('IP Address');
  const mpMac = MAC.exec(mpField('MAC Address') ?? '');
  if (type) mpInfo.type = type;
  if (name) mpInfo.name = name;
  if (fw) mpInfo.firmwareVersion = fw;
  if (ip) mpInfo.ipAddress = ip;
  if (mpMac) mpInfo.mac = mpMac[1]!.toLowerCase();
  return info;
}

/** One row of SHOW SERVER LIST (or SHOW SERVER NAMES): a bay, and what its columns say. */
export interface OaServerListEntry {
  bay: number;
  /** false: the row says "[Absent]" (no blade in the bay). */
  present: boolean;
  /** Every column but Bay, by its heading, as printed ("[Unknown]" and empty cells left out). */
  columns: Record<string, string>;
  iloName?: string;
  /** The blade's iLO address ("iLO IP Address"). */
  iloAddress?: string;
  serverName?: string;
  serialNumber?: string;
  status?: string;
  power?: OaPower;
}

/**
 * SHOW SERVER LIST (and SHOW SERVER NAMES): a fixed-width table, a heading line over a rule of dashes, one row per
 * bay, "[Absent]" for an empty one, then "Totals: N server blades installed, M powered on." The layout is that of
 * SHOW SERVER NAMES in public code that reads real c7000 OAs (bmc-toolbox/bmclib's c7000 provider tests: "Bay Server
 * Name … Serial Number Status Power UID Partner", "[Absent]", the Totals line; an OA report in a public Ericsson ENM
 * expansion tool, with "[Unknown]" serials). SHOW SERVER LIST has the same layout with the iLO's name and address
 * instead of the server name and serial (HP's OA CLI user guide); no sample of it was available to us, so columns are
 * found by their heading and the rule under it, never by position. Null when the output holds no such table.
 */
export function parseServerList(output: string): OaServerListEntry[] | null {
  const all = lines(output);
  const rule = all.findIndex((l) => /^\s*-{3}(\s+-+)+\s*$/.test(l));
  if (rule < 1) return null;
  const heading = all[rule - 1]!;
  const spans: Array<{ start: number; name: string }> = [];
  for (const m of all[rule]!.matchAll(/-+/g)) spans.push({ start: m.index, name: '' });
  spans.forEach((span, i) => (span.name = heading.slice(span.start, spans[i + 1]?.start ?? heading.length).trim()));
  if (!/^bay$/i.test(spans[0]?.name ?? '')) return null;
  const cell = (row: string, i: number): string => row.slice(spans[i]!.start, spans[i + 1]?.start ?? row.length).trim();
  const entries: OaServerListEntry[] = [];
  for (const row of all.slice(rule + 1)) {
    if (row.trim() === '' || /^\s*totals:/i.test(row)) break;
    const bayText = /^\s*(\S+)/.exec(row)?.[1] ?? '';
    if (!/^\d{1,2}$/.test(bayText)) continue; // "1A"/"1B": the halves of a double-dense bay, not a c-Class bay number
    const bay = Number(bayText);
    if (/\[absent\]/i.test(row)) {
      entries.push({ bay, present: false, columns: {} });
      continue;
    }
    const entry: OaServerListEntry = { bay, present: true, columns: {} };
    for (let i = 1; i < spans.length; i++) {
      const value = cell(row, i);
      if (value === '' || value === '[Unknown]') continue;
      const name = spans[i]!.name;
      entry.columns[name] = value;
      if (/ip address/i.test(name)) entry.iloAddress = value;
      else if (/^ilo name$/i.test(name)) entry.iloName = value;
      else if (/^server name$/i.test(name)) entry.serverName = value;
      else if (/^serial number$/i.test(name)) entry.serialNumber = value;
      else if (/^status$/i.test(name)) entry.status = value;
      else if (/^power$/i.test(name)) entry.power = /^on$/i.test(value) ? 'on' : /^off$/i.test(value) ? 'off' : 'unknown';
    }
    entries.push(entry);
  }
  return entries;
}

export function parseServerBoot(output: string, bay: number): OaServerBoot {
  const all = lines(output);
  const f = fields(all);
  const text = f.get('One time boot from') ?? f.get('One Time Boot from') ?? f.get('One Time Boot From') ?? '';
  const bootOrder: string[] = [];
  // The devices follow "IPL Devices (Boot Order):", one per line, numbered or not, up to a blank line.
  const start = all.findIndex((l) => /^\s*IPL Devices \(Boot Order\):\s*$/i.test(l));
  if (start !== -1) {
    for (const line of all.slice(start + 1)) {
      const device = line.trim().replace(/^\d+\.\s+/, '');
      if (device === '') {
        if (bootOrder.length > 0) break;
        continue;
      }
      if (/:$/.test(device)) break; // the next section's title
      bootOrder.push(device);
    }
  }
  const boot: OaServerBoot = { bay, oneTimeBoot: oneTimeBootOf(text), oneTimeBootText: text, bootOrder };
  const first = bootOrder[0];
  if (first !== undefined) boot.firstBootDevice = bootDeviceOf(first);
  return boot;
}

function oneTimeBootOf(text: string): OaOneTimeBoot {
  const t = text.trim().toLowerCase();
  if (t === '' || t === 'none' || t === 'normal') return null;
  return bootDeviceOf(t);
}

function bootDeviceOf(text: string): OaBootDevice {
  const t = text.trim().toLowerCase();
  if (t.includes('pxe')) return 'pxe';
  if (t.includes('hard drive') || t === 'hdd' || t.includes('hard disk')) return 'hdd';
  if (t.includes('cd')) return 'cd';
  if (t.includes('floppy') || t.includes('diskette')) return 'floppy';
  if (t.includes('usb')) return 'usb';
  if (t.includes('rbsu')) return 'rbsu';
  return 'other';
}
