// A proposed host document as YAML text, with the comments a reviewer needs next to the values they concern. Values
// are written plain only when YAML 1.2 reads them back as the same string (names, MACs, addresses); anything else a
// BMC said is double-quoted JSON, which YAML reads as the same string whatever it holds, so nothing a machine reports
// can add a key or a line to the file.
import type { Host, HostHardware } from '../model/types.ts';

/** A host file's document as discovery writes it: the lab's Host (src/model/types.ts) as YAML spells it. */
export type HostDocument = Pick<Host, 'name' | 'description' | 'macs' | 'ip' | 'bmc' | 'enclosure' | 'role'> & {
  apiVersion: 'forseti/v1';
  kind: 'Host';
  hardware?: Partial<Omit<HostHardware, 'arch'>>;
  labels?: Record<string, string>;
};

/** Comments placed in the file: above it, after a MAC (by index), after `ip` and `role`, under `hardware`. */
export interface HostComments {
  header: string[];
  macs: string[];
  ip?: string;
  role?: string;
  hardware: string[];
}

const PLAIN = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;
// What YAML 1.2's core schema would read as something other than a string, and YAML 1.1's base-60 numbers (a MAC of
// digits only, 12:34:56:78:90:12, is one to a 1.1 reader).
const NOT_A_STRING = /^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|[-+]?[0-9]+|[-+]?[0-9]+(?::[0-5]?[0-9])+(?:\.[0-9]*)?|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;

export function scalar(value: string | number | boolean): string {
  if (typeof value !== 'string') return String(value);
  return PLAIN.test(value) && !NOT_A_STRING.test(value) ? value : JSON.stringify(value);
}

/** One comment line: no line breaks or control characters, bounded. */
export function commentText(text: string): string {
  return oneLine(text, 160);
}

/** Control characters and line breaks out, whitespace collapsed, at most `max` characters. */
export function oneLine(text: string, max: number): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s+/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

const trailing = (comment: string | undefined): string => (comment ? `  # ${commentText(comment)}` : '');

export function renderHostYaml(doc: HostDocument, comments: HostComments, schemaComment?: string): string {
  const out: string[] = [];
  if (schemaComment) out.push(schemaComment);
  for (const line of comments.header) out.push(`# ${commentText(line)}`);
  out.push(`apiVersion: ${doc.apiVersion}`, `kind: ${doc.kind}`, `name: ${scalar(doc.name)}`);
  if (doc.description !== undefined) out.push(`description: ${scalar(doc.description)}`);
  out.push('macs:');
  doc.macs.forEach((mac, i) => out.push(`  - ${scalar(mac)}${trailing(comments.macs[i])}`));
  out.push(`ip: ${scalar(doc.ip)}${trailing(comments.ip)}`);
  out.push('bmc:');
  for (const [key, value] of Object.entries(doc.bmc)) {
    if (value === undefined) continue;
    if (key === 'tls' && typeof value === 'object') {
      out.push('  tls:');
      for (const [k, v] of Object.entries(value as Record<string, string | boolean>)) out.push(`    ${k}: ${scalar(v)}`);
    } else out.push(`  ${key}: ${scalar(value as string | number)}`);
  }
  if (doc.enclosure) out.push('enclosure:', `  name: ${scalar(doc.enclosure.name)}`, `  bay: ${doc.enclosure.bay}`);
  const hw = doc.hardware ?? {};
  if (Object.keys(hw).length > 0 || comments.hardware.length > 0) {
    out.push('hardware:');
    if (hw.model !== undefined) out.push(`  model: ${scalar(hw.model)}`);
    if (hw.cpus !== undefined) out.push(`  cpus: ${hw.cpus}`);
    if (hw.cores !== undefined) out.push(`  cores: ${hw.cores}`);
    if (hw.memoryGiB !== undefined) out.push(`  memoryGiB: ${hw.memoryGiB}`);
    if (hw.disks !== undefined && hw.disks.length > 0) {
      out.push('  disks:');
      for (const d of hw.disks) {
        const fields = [d.name !== undefined ? `name: ${scalar(d.name)}` : '', `sizeGB: ${d.sizeGB}`, d.type !== undefined ? `type: ${d.type}` : ''].filter(Boolean);
        out.push(`    - ${fields.join('\n      ')}`);
      }
    }
    if (hw.firmware !== undefined) out.push(`  firmware: ${hw.firmware}`);
    for (const c of comments.hardware) out.push(`  # ${commentText(c)}`);
  }
  out.push(`role: ${scalar(doc.role)}${trailing(comments.role)}`);
  const labels = Object.entries(doc.labels ?? {});
  if (labels.length > 0) {
    out.push('labels:');
    // A label value is always quoted: a serial like 12345 stays a string.
    for (const [k, v] of labels) out.push(`  ${k}: ${JSON.stringify(v)}`);
  }
  return `${out.join('\n')}\n`;
}
