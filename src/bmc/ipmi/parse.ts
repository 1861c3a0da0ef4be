// Parsers for ipmitool's human-readable output (ipmitool 1.8.x wording).

export type ChassisPower = 'on' | 'off' | 'unknown';

/** `Chassis Power is on` / `Chassis Power is off`. */
export function parsePowerStatus(text: string): ChassisPower {
  const match = /Chassis Power is (on|off)\b/i.exec(text);
  return match ? (match[1]!.toLowerCase() as 'on' | 'off') : 'unknown';
}

/** The Boot Device Selector, in IPMI's terms; `other` keeps ipmitool's wording. */
export type BootSelector = 'none' | 'pxe' | 'disk' | 'cdrom' | 'bios-setup' | 'other';

/** Boot parameter 5 (boot flags) as `chassis bootparam get 5` prints it. */
export interface BootFlags {
  /** "Boot Flag Valid": the BMC will apply the override at the next boot. */
  valid: boolean;
  /** "Options apply to all future boots" (else only the next one). */
  persistent: boolean;
  /** "BIOS EFI boot" (else "BIOS PC Compatible (legacy) boot"). */
  efi: boolean;
  selector: BootSelector;
  /** ipmitool's text after "Boot Device Selector :". */
  selectorText: string;
}

const SELECTORS: ReadonlyArray<[RegExp, BootSelector]> = [
  [/^No override/i, 'none'],
  [/^Force PXE/i, 'pxe'],
  [/^Force Boot from default Hard-Drive$/i, 'disk'],
  [/^Force Boot from CD\/DVD/i, 'cdrom'],
  [/^Force Boot into BIOS Setup/i, 'bios-setup'],
];

export function parseBootFlags(text: string): BootFlags | null {
  const selectorText = /Boot Device Selector\s*:\s*(.+)/.exec(text)?.[1]?.trim();
  if (selectorText === undefined) return null;
  return {
    valid: /-\s*Boot Flag Valid\b/.test(text),
    persistent: /Options apply to all future boots/.test(text),
    efi: /BIOS EFI boot/.test(text),
    selector: SELECTORS.find(([re]) => re.test(selectorText))?.[1] ?? 'other',
    selectorText,
  };
}

/** `Key : value` lines (mc info, fru print), first occurrence wins; indented continuation lines are skipped. */
export function parseKeyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^\s*([^:]+?)\s+:\s?(.*)$/.exec(line);
    if (!match) continue;
    const key = match[1]!.trim();
    const value = match[2]!.trim();
    if (!out.has(key) && value.length > 0) out.set(key, value);
  }
  return out;
}

export interface McInfo {
  manufacturerId: number | null;
  manufacturerName: string | null;
  productName: string | null;
  firmwareRevision: string | null;
}

export function parseMcInfo(text: string): McInfo {
  const kv = parseKeyValues(text);
  const id = Number.parseInt(kv.get('Manufacturer ID') ?? '', 10);
  return {
    manufacturerId: Number.isNaN(id) ? null : id,
    manufacturerName: kv.get('Manufacturer Name') ?? null,
    productName: kv.get('Product Name') ?? null,
    firmwareRevision: kv.get('Firmware Revision') ?? null,
  };
}

/** `Instantaneous power reading:   123 Watts`; null when absent. */
export function parsePowerReading(text: string): number | null {
  const match = /Instantaneous power reading\s*:\s*(\d+(?:\.\d+)?)\s*Watts/i.exec(text);
  return match ? Number(match[1]) : null;
}

/** Boot option parameter 0 (IPMI v2.0 Table 28-14): `Set In Progress : set in progress`; null when absent. */
export type SetInProgress = 'set complete' | 'set in progress' | 'commit write';

export function parseSetInProgress(text: string): SetInProgress | null {
  const match = /Set In Progress\s*:\s*(set complete|set in progress|commit write)/i.exec(text);
  return match ? (match[1]!.toLowerCase() as SetInProgress) : null;
}
