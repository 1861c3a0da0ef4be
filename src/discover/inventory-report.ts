// The inventory document the forseti OS image POSTs in inventory mode (schemas/inventory-report.schema.json), read
// from an untrusted machine: bounded in size, strict UTF-8 and JSON, valid against the schema, printable ASCII in
// every string (the image's JSON writer keeps nothing else: src/os-image/guest/lib/json.sh), and consistent with
// itself and with the MAC the agent saw PXE-boot. Anything else is refused whole with the JSON path it concerns;
// nothing of a refused report is used.
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import formatsPlugin from 'ajv-formats';
import { SCHEMA_DIR } from '../model/schemas.ts';

export const INVENTORY_FORMAT = 'forseti-inventory/v1';
/** A real machine's report is 5–50 kB (a JBOD of 300 disks about 150 kB); the schema's bounds allow more. */
export const DEFAULT_MAX_INVENTORY_BYTES = 1024 * 1024;

export interface InventoryNic {
  name: string;
  mac: string;
  driver?: string;
  link: boolean;
  speedMbps?: number;
  boot: boolean;
  ipv4?: string;
}

export interface InventoryDisk {
  name: string;
  model?: string;
  vendor?: string;
  serial?: string;
  sizeBytes: number;
  type: 'hdd' | 'ssd' | 'nvme';
  rotational: boolean;
  transport: 'nvme' | 'virtio' | 'sata' | 'sas' | 'usb' | 'scsi';
  removable: boolean;
  controller?: string;
  logicalDrive: boolean;
}

export interface InventoryBmc {
  interface: 'ipmi';
  manufacturerId?: number;
  firmware?: string;
  ipmiVersion?: string;
  address?: string;
  addressSource?: 'static' | 'dhcp' | 'bios' | 'other';
  netmask?: string;
  gateway?: string;
  mac?: string;
}

type Fields<K extends string> = Partial<Record<K, string>>;

/** schemas/inventory-report.schema.json as TypeScript; only `read` of an InventoryReader makes one. */
export interface InventoryReport {
  format: typeof INVENTORY_FORMAT;
  timestamp: number;
  image: string;
  boot: { interface?: string; mac?: string; ip?: string };
  dmi: {
    system?: Fields<'vendor' | 'product' | 'version' | 'serial' | 'uuid' | 'sku' | 'family'>;
    board?: Fields<'vendor' | 'product' | 'serial'>;
    bios?: Fields<'vendor' | 'version' | 'date'>;
    chassis?: Fields<'vendor' | 'serial' | 'assetTag'>;
  };
  cpus: { model?: string; sockets: number; cores: number; threads: number };
  memory: {
    totalBytes: number;
    source: 'dmi' | 'kernel';
    usableBytes: number;
    dimms: Array<{ locator?: string; sizeBytes: number; type?: string; speedMTs?: number; manufacturer?: string; serial?: string; partNumber?: string }>;
  };
  disks: InventoryDisk[];
  nics: InventoryNic[];
  bmc?: InventoryBmc;
}

/** A report refused: where it came from, the JSON path concerned ('' for the whole document), and why. */
export class InventoryReportError extends Error {
  override readonly name = 'InventoryReportError';
  constructor(readonly from: string, readonly path: string, readonly reason: string) {
    super(`inventory report from ${from} refused: ${path ? `${path}: ` : ''}${reason}`);
  }
}

export interface InventoryReaderOptions {
  /** Default DEFAULT_MAX_INVENTORY_BYTES. */
  maxBytes?: number;
}

export interface InventoryContext {
  /** Where the report came from, for the refusal: the sender's address, "10.77.0.201". */
  from: string;
  /** The MAC the agent saw PXE-boot and handed the inventory image to: the report must list a NIC with it. */
  bootedMac?: string;
}

const PRINTABLE = /^[\x20-\x7e]*$/;

/** Reads inventory reports; the agent creates one (it compiles the schema) and keeps it. */
export class InventoryReader {
  readonly maxBytes: number;
  /** Compiled at the first report (~30 ms an agent's start need not wait for). */
  private compiled: ValidateFunction | null = null;

  constructor(options: InventoryReaderOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_INVENTORY_BYTES;
  }

  private get validate(): ValidateFunction {
    if (this.compiled) return this.compiled;
    // allErrors off: the first problem is enough to refuse, and a hostile document cannot make the answer long.
    const ajv = new Ajv({ allErrors: false, strict: true });
    formatsPlugin.default(ajv, ['ipv4']);
    this.compiled = ajv.compile(JSON.parse(readFileSync(new URL('inventory-report.schema.json', SCHEMA_DIR), 'utf8')) as object);
    return this.compiled;
  }

  /** The report in `body`, or InventoryReportError naming what is wrong. */
  read(body: Uint8Array | string, context: InventoryContext): InventoryReport {
    const refuse = (path: string, reason: string): never => {
      throw new InventoryReportError(context.from, path, reason);
    };
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    if (bytes.byteLength > this.maxBytes) refuse('', `${bytes.byteLength} bytes, more than the cap of ${this.maxBytes}`);
    let text = '';
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      refuse('', 'not UTF-8 text');
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      refuse('', `not JSON (${String((err as Error).message).slice(0, 80)})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) refuse('', 'not a JSON object');
    const format = (value as { format?: unknown }).format;
    if (format !== INVENTORY_FORMAT) refuse('/format', `${typeof format === 'string' ? JSON.stringify(format.slice(0, 40)) : 'missing'}, not "${INVENTORY_FORMAT}"`);
    if (!this.validate(value)) {
      const e = this.validate.errors?.[0];
      refuse(e?.instancePath ?? '', `${e?.message ?? 'not valid'} (schemas/inventory-report.schema.json)`);
    }
    const report = value as InventoryReport;
    checkStrings(report, '', refuse);
    checkConsistent(report, context, refuse);
    return report;
  }
}

/** Every string printable ASCII: what the image writes, and nothing that can break a line or hide in one. */
function checkStrings(value: unknown, path: string, refuse: (path: string, reason: string) => never): void {
  if (typeof value === 'string') {
    if (!PRINTABLE.test(value)) {
      const bad = [...value].find((c) => !PRINTABLE.test(c)) ?? '';
      refuse(path, `holds U+${(bad.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}; the forseti image writes printable ASCII only`);
    }
    return;
  }
  if (Array.isArray(value)) value.forEach((v, i) => checkStrings(v, `${path}/${i}`, refuse));
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) checkStrings(v, `${path}/${k}`, refuse);
}

function checkConsistent(report: InventoryReport, context: InventoryContext, refuse: (path: string, reason: string) => never): void {
  const booted = report.nics.map((n, i) => ({ n, i })).filter(({ n }) => n.boot);
  if (booted.length > 1) refuse(`/nics/${booted[1]!.i}/boot`, `a second NIC marked boot (${booted[0]!.n.name} is); the report comes from one NIC`);
  const bootNic = booted[0]?.n;
  if (report.boot.mac !== undefined && bootNic !== undefined && bootNic.mac !== report.boot.mac) {
    refuse('/boot/mac', `${report.boot.mac} is not the MAC of the NIC marked boot (${bootNic.name}, ${bootNic.mac})`);
  }
  if (report.boot.mac !== undefined && !report.nics.some((n) => n.mac === report.boot.mac)) refuse('/boot/mac', `${report.boot.mac} is the MAC of no NIC the report lists`);
  if (context.bootedMac !== undefined) {
    const mac = normalizeMac(context.bootedMac);
    if (!report.nics.some((n) => n.mac === mac)) refuse('/nics', `no NIC has the MAC ${mac} the machine PXE-booted with: a report for another machine?`);
  }
}

/** Lower case, colons: `52-54-00-AA-BB-CC` → `52:54:00:aa:bb:cc`. */
export function normalizeMac(mac: string): string {
  return mac.trim().toLowerCase().replace(/-/g, ':');
}
