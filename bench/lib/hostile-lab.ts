// Labs a hostile commit can build within the caps (1 MiB per file, 64 MiB per lab), each aimed at one thing the
// loader does with what a commit writes, and a normal lab of the same size. Used by bench/commit-load.bench.ts and,
// small, by the tests that count the work a load does.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateLab, hostYaml } from './generate-lab.ts';

/** Just under the 1 MiB a lab file may be. */
export const FILE_BYTES = 1024 * 1024 - 4096;

const repeatTo = (unit: string, bytes: number): string => unit.repeat(Math.floor(bytes / unit.length));

export interface HostileKind {
  name: string;
  what: string;
  /** Writes file number `i` (and what it names) into the lab `dir`; returns the bytes written. */
  write(dir: string, i: number, bytes: number): number;
}

function put(dir: string, path: string, text: string): number {
  mkdirSync(join(dir, path, '..'), { recursive: true });
  writeFileSync(join(dir, path), text);
  return Buffer.byteLength(text);
}

/** A profile whose config template is `body` (a file of its own, as large as a file may be). */
function profileWithConfig(dir: string, i: number, body: string): number {
  const profile = `apiVersion: forseti/v1\nkind: Profile\nname: hostile-${i}\nboot:\n  image: talos\n  cmdline: console=ttyS0\n  config: {name: user-data, file: configs/hostile-${i}}\n`;
  return put(dir, `profiles/hostile-${i}.yaml`, profile) + put(dir, `configs/hostile-${i}`, body);
}

export const HOSTILE_KINDS: readonly HostileKind[] = [
  {
    name: 'placeholder',
    what: "config templates of '{{' and a run of spaces (the placeholder regex was cubic)",
    write: (dir, i, bytes) => profileWithConfig(dir, i, `{{${' '.repeat(bytes - 3)}x`),
  },
  {
    name: 'template-problems',
    what: 'config templates of {{ x }} unknown variables, 100,000 problems each (capped per file)',
    write: (dir, i, bytes) => profileWithConfig(dir, i, repeatTo('{{ x }}\n', bytes)),
  },
  {
    name: 'secret-scan',
    what: "config templates of 'a.a.a.' runs and 'password=' with runs of spaces (the secret patterns were quadratic)",
    write: (dir, i, bytes) => profileWithConfig(dir, i, `${repeatTo('a.', bytes / 2)}://@\npassword=${' '.repeat(bytes / 2 - 16)}&\n`),
  },
  {
    name: 'keys',
    what: 'host files of one flow mapping with 60,000+ keys (refused at the node cap before composing)',
    write: (dir, i, bytes) => {
      const keys: string[] = [];
      for (let k = 0, size = 2; size < bytes - 16; k++) {
        const key = `k${k}: ${k}`;
        keys.push(key);
        size += key.length + 2;
      }
      return put(dir, `hosts/keys-${i}.yaml`, `{${keys.join(', ')}}\n`);
    },
  },
  {
    name: 'keys-under-cap',
    what: 'host files of 9,990 keys with long values, just under the node cap: composed, every key a schema problem',
    write: (dir, i, bytes) => {
      const value = 'v'.repeat(Math.floor(bytes / 9990) - 12);
      const lines = Array.from({ length: 9990 }, (_, k) => `k${String(k).padStart(4, '0')}: ${value}`);
      return put(dir, `hosts/keys-${i}.yaml`, `${lines.join('\n')}\n`);
    },
  },
  {
    name: 'duplicate-keys',
    what: 'host files of 9,990 keys, each twice (yaml compared every key with every earlier one)',
    write: (dir, i, bytes) => {
      const value = 'v'.repeat(Math.floor(bytes / 9990) - 12);
      const lines = Array.from({ length: 9990 }, (_, k) => `k${String(k % 4995).padStart(4, '0')}: ${value}`);
      return put(dir, `hosts/dup-${i}.yaml`, `${lines.join('\n')}\n`);
    },
  },
  {
    name: 'escapes',
    what: "image URLs of '%41' repeated (the escape check was quadratic; now over the schema's 8 KiB)",
    write: (dir, i, bytes) => put(dir, `images/esc-${i}.yaml`, `apiVersion: forseti/v1\nkind: Image\nname: esc-${i}\nkernel: {url: 'http://mirror.lan/${repeatTo('%41', bytes - 200)}', sha256: ${'a'.repeat(64)}}\n`),
  },
  {
    name: 'invisible',
    what: 'host files of 9,990 label values each hiding U+202E (a problem each, capped per file)',
    write: (dir, i, bytes) => {
      const value = 'x'.repeat(Math.floor(bytes / 9990) - 24);
      const lines = Array.from({ length: 9990 }, (_, k) => `  l${k}: "${value}\\u202E"`);
      return put(dir, `hosts/bidi-${i}.yaml`, `labels:\n${lines.join('\n')}\n`);
    },
  },
  {
    name: 'ca-file',
    what: 'a 1 MiB CA file of BEGIN CERTIFICATE lines, named by 60,000 hosts (a lazy regex per BEGIN, once per host)',
    write: (dir, i, bytes) => {
      if (i === 0) return put(dir, 'certs/ca.pem', repeatTo('-----BEGIN CERTIFICATE-----\n', bytes));
      // the other files' worth: hosts naming it, as many as the site's /16 has addresses for
      let written = 0;
      for (let n = (i - 1) * 3000; n < Math.min(i * 3000, 60_000) && written < bytes; n++) {
        const host = hostYaml(n, 'talos-worker').replace('bmc: {type: manual}', 'bmc: {type: redfish, address: 10.9.1.1, credential: c, tls: {ca: certs/ca.pem}}');
        written += put(dir, `hosts/h${n}.yaml`, host);
      }
      return written;
    },
  },
];

/** The template lab (a valid one) plus `files` hostile files of `kind`; `bytes` each. Returns the lab's bytes added. */
export function writeHostileLab(dir: string, kind: HostileKind, files: number, bytes = FILE_BYTES): number {
  generateLab(dir, 2);
  let total = 0;
  for (let i = 0; i < files; i++) total += kind.write(dir, i, bytes);
  return total;
}

/**
 * A host file as a documented lab writes it (~1 KB: a description, hardware, disks, labels): ordinary work for every
 * check. Addresses stay in the /16 of generateLab's site, so a normal lab holds at most 63,750 of them.
 */
export function normalHostYaml(i: number): string {
  const base = hostYaml(i, i % 2 ? 'slurm-compute' : 'talos-worker').replace(
    'hardware: {memoryGiB: 64, disks: [{sizeGB: 100}]}',
    ['hardware:', '  model: HP ProLiant BL460c Gen8', '  cpus: 2', '  cores: 16', '  memoryGiB: 128', '  firmware: uefi', '  disks:', '    - {name: sda, sizeGB: 300, type: ssd}', '    - {name: sdb, sizeGB: 300, type: ssd}'].join('\n'),
  );
  const description = `description: "Blade ${i} of enclosure asgard-${Math.floor(i / 16)}, bay ${(i % 16) + 1}; compute node of the batch partition, racked in row ${i % 7}, patched to switch port ${i % 48}. Owner: HPC team; call the on-call engineer before wiping."`;
  const notes = [
    `# Serial CZ3${String(i).padStart(6, '0')}ASG, asset tag LAB-${String(i).padStart(6, '0')}; warranty until 2027-06-30 (care pack H7J34A5).`,
    '# Firmware: iLO 4 2.82, System ROM I31 2020-04-08, Smart Array P220i 8.32; upgraded together, never one alone.',
    '# History: DIMM B3 replaced 2024-02 (case 5345xxxx), mezzanine NIC reseated 2024-09 after link flaps on port 2.',
    '# Boot order in the ROM: PXE on the first FlexLOM port, then the local disk; forseti decides which to use.',
  ].join('\n');
  return `${notes}\n${base.replace(/labels: \{rack: r\d+\}\n$/, '')}${description}\nlabels:\n  rack: r${i % 20}\n  row: row-${i % 7}\n  partition: batch\n  owner: hpc-team\n  switch: sw-${i % 12}\n  bay: "${(i % 16) + 1}"\n`;
}

/** A normal lab of about `bytes` (at most 63,750 hosts): the template plus as many ordinary hosts as fit. */
export function writeNormalLab(dir: string, bytes: number): { bytes: number; hosts: number } {
  generateLab(dir, 0);
  let written = 0;
  let hosts = 0;
  for (; written < bytes && hosts < 63_750; hosts++) {
    const text = normalHostYaml(hosts);
    writeFileSync(join(dir, 'hosts', `h${hosts}.yaml`), text);
    written += Buffer.byteLength(text);
  }
  return { bytes: written, hosts };
}
