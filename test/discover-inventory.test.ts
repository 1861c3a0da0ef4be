// The inventory image's report of an unknown machine: refused whole when it is not what the image writes (size,
// encoding, schema, characters, a report that contradicts itself or names another machine), else turned into the
// facts proposeHosts takes; whatever the machine says stays one quoted scalar or one comment line in the host file.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { cp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { factsFromInventory } from '../src/discover/from-inventory.ts';
import type { InventoryFactsOptions } from '../src/discover/from-inventory.ts';
import { InventoryReader, InventoryReportError } from '../src/discover/inventory-report.ts';
import type { InventoryReport } from '../src/discover/inventory-report.ts';
import { indexLab } from '../src/discover/lab-index.ts';
import { proposeHosts } from '../src/discover/propose-host.ts';
import type { Proposal } from '../src/discover/propose-host.ts';
import { loadLab } from '../src/model/load.ts';
import type { Lab } from '../src/model/types.ts';
import { bl460cGen8, qemuGuest, whitebox, withValue } from './fixtures/inventory-reports.ts';
import type { Json } from './fixtures/inventory-reports.ts';

const TEMPLATE = fileURLToPath(new URL('../lab-repo-template/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'forseti-discover-inventory-'));
after(() => rm(work, { recursive: true, force: true }));

const reader = new InventoryReader();
const read = (doc: unknown, bootedMac?: string): InventoryReport => reader.read(JSON.stringify(doc), { from: '10.77.0.201', ...(bootedMac ? { bootedMac } : {}) });

function refusal(doc: unknown, options: { bootedMac?: string; raw?: string | Uint8Array; reader?: InventoryReader } = {}): InventoryReportError {
  try {
    (options.reader ?? reader).read(options.raw ?? JSON.stringify(doc), { from: '10.77.0.201', ...(options.bootedMac ? { bootedMac: options.bootedMac } : {}) });
  } catch (err) {
    assert.ok(err instanceof InventoryReportError, String(err));
    return err;
  }
  assert.fail('the report was accepted');
}

describe('InventoryReader: what is refused', () => {
  const table: Array<{ what: string; doc?: Json; raw?: string | Uint8Array; bootedMac?: string; path: string; reason: RegExp }> = [
    { what: 'larger than the cap', raw: JSON.stringify({ ...qemuGuest(), image: 'x'.repeat(200) }) + ' '.repeat(2 * 1024 * 1024), path: '', reason: /^\d+ bytes, more than the cap of 1048576$/ },
    { what: 'not UTF-8', raw: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), path: '', reason: /^not UTF-8 text$/ },
    { what: 'not JSON', raw: '{"format": "forseti-inventory/v1",', path: '', reason: /^not JSON/ },
    { what: 'a JSON array', raw: '[1,2]', path: '', reason: /^not a JSON object$/ },
    { what: 'half a million nested arrays (a parse bomb within the cap)', raw: `{"format":"forseti-inventory/v1","image":${'['.repeat(500_000)}${']'.repeat(500_000)}}`, path: '', reason: /must have required property 'timestamp'/ },
    { what: 'another format', doc: { ...qemuGuest(), format: 'forseti-inventory/v2' }, path: '/format', reason: /^"forseti-inventory\/v2", not "forseti-inventory\/v1"$/ },
    { what: 'a key the schema does not know', doc: { ...qemuGuest(), role: 'talos-worker' }, path: '', reason: /must NOT have additional properties/ },
    { what: 'a MAC that is no MAC', doc: withValue(qemuGuest(), '/nics/0/mac', '52:54:00:77:02:02\nrole: x'), path: '/nics/0/mac', reason: /must match pattern/ },
    { what: 'a string longer than the schema allows', doc: withValue(qemuGuest(), '/dmi/system/product', 'P'.repeat(257)), path: '/dmi/system/product', reason: /must NOT have more than 256 characters/ },
    { what: 'a negative size', doc: withValue(qemuGuest(), '/disks/0/sizeBytes', -1), path: '/disks/0/sizeBytes', reason: /must be >= 0/ },
    { what: 'a BMC address that is no IPv4 address', doc: withValue(bl460cGen8(), '/bmc/address', '10.77.1.117 # x'), path: '/bmc/address', reason: /must match format "ipv4"/ },
    { what: 'too many disks', doc: withValue(qemuGuest(), '/disks', Array.from({ length: 513 }, () => (qemuGuest()['disks'] as Json[])[0])), path: '/disks', reason: /must NOT have more than 512 items/ },
    { what: 'a newline in the model', doc: withValue(qemuGuest(), '/dmi/system/product', 'X\nrole: talos-worker'), path: '/dmi/system/product', reason: /holds U\+000A; the forseti image writes printable ASCII only/ },
    { what: 'a carriage return in a serial', doc: withValue(qemuGuest(), '/dmi/system/serial', 'S1\r#'), path: '/dmi/system/serial', reason: /holds U\+000D/ },
    { what: 'a right-to-left override in a disk model', doc: withValue(qemuGuest(), '/disks/1/model', 'evil\u202Etxt.exe'), path: '/disks/1/model', reason: /holds U\+202E/ },
    { what: 'a line separator in a NIC name', doc: withValue(qemuGuest(), '/nics/0/name', 'eth0\u2028ip: 1.2.3.4'), path: '/nics/0/name', reason: /holds U\+2028/ },
    { what: 'a NUL in the CPU model', doc: withValue(qemuGuest(), '/cpus/model', 'Xeon\u0000'), path: '/cpus/model', reason: /holds U\+0000/ },
    { what: 'two NICs marked boot', doc: withValue(bl460cGen8(), '/nics/0/boot', true), path: '/nics/1/boot', reason: /a second NIC marked boot \(eno1 is\)/ },
    { what: 'a boot MAC that is not the boot NIC', doc: withValue(bl460cGen8(), '/boot/mac', '9c:8e:99:4a:20:01'), path: '/boot/mac', reason: /is not the MAC of the NIC marked boot \(eno2, 9c:8e:99:4a:20:02\)/ },
    { what: 'a boot MAC no NIC has', doc: withValue(withValue(qemuGuest(), '/nics/0/boot', false), '/boot/mac', '52:54:00:00:00:09'), path: '/boot/mac', reason: /is the MAC of no NIC the report lists/ },
    { what: 'a report naming another machine than the one that PXE-booted', doc: qemuGuest(), bootedMac: '52:54:00:77:09:09', path: '/nics', reason: /no NIC has the MAC 52:54:00:77:09:09 the machine PXE-booted with: a report for another machine\?/ },
  ];
  for (const row of table) {
    it(row.what, () => {
      const err = refusal(row.doc, { ...(row.raw !== undefined ? { raw: row.raw } : {}), ...(row.bootedMac ? { bootedMac: row.bootedMac } : {}) });
      assert.equal(err.path, row.path);
      assert.match(err.reason, row.reason);
      assert.equal(err.from, '10.77.0.201');
      assert.match(err.message, /^inventory report from 10\.77\.0\.201 refused: /);
    });
  }

  it('a smaller cap is the operator\'s to set', () => {
    const err = refusal(undefined, { raw: JSON.stringify(bl460cGen8()), reader: new InventoryReader({ maxBytes: 1024 }) });
    assert.match(err.reason, /more than the cap of 1024/);
  });

  it('the reports the image writes are accepted, the PXE MAC given in either case', () => {
    for (const doc of [qemuGuest(), bl460cGen8(), whitebox()]) assert.equal(read(doc).format, 'forseti-inventory/v1');
    assert.equal(read(bl460cGen8(), '9C-8E-99-4A-20-01').boot.mac, '9c:8e:99:4a:20:02');
  });
});

describe('factsFromInventory and the proposed host', () => {
  let lab: Lab;
  before(async () => {
    const loaded = await loadLab(TEMPLATE);
    assert.ok(loaded.lab);
    lab = loaded.lab;
  });
  const propose = (report: InventoryReport, options: InventoryFactsOptions = {}, l: Lab = lab): Proposal =>
    proposeHosts([factsFromInventory(report, options)], indexLab(l, [...l.hosts.keys()].map((h) => `${h}.yaml`)), { namePattern: '{serial}', fallbackPattern: 'node-{mac}', command: 'forseti agent (discovery)' })[0]!;

  /** The proposal's file, written into a copy of the template without its hosts, must validate. */
  async function validates(p: Proposal, name: string): Promise<void> {
    assert.equal(p.kind, 'proposed', JSON.stringify(p));
    if (p.kind !== 'proposed') return;
    const dir = join(work, name);
    await cp(TEMPLATE, dir, { recursive: true });
    for (const f of await readdir(join(dir, 'hosts'))) await rm(join(dir, 'hosts', f));
    await writeFile(join(dir, p.file), p.yaml);
    const { problems } = await loadLab(dir);
    assert.deepEqual(problems.map((x) => `${x.ref.file}:${x.ref.line}: ${x.message}`), []);
  }

  const table: Array<{ what: string; report: () => Json; options?: InventoryFactsOptions; name: string; macs: string[]; hardware: unknown; bmc: unknown; labels?: Record<string, string>; comments: RegExp[] }> = [
    {
      what: 'the QEMU guest: its MAC, 384 MiB, two virtio disks by kernel name, a BMC without an address stays manual',
      report: qemuGuest,
      name: 'czj3110abc',
      macs: ['52:54:00:77:02:02'],
      hardware: { model: 'HP ProLiant BL460c Gen8', cpus: 1, cores: 1, memoryGiB: 0.38, disks: [{ name: 'vda', sizeGB: 0.067, type: 'hdd' }, { name: 'vdb', sizeGB: 0.042, type: 'hdd' }] },
      bmc: { type: 'manual' },
      labels: { serial: 'CZJ3110ABC' },
      comments: [/^ {2}- 52:54:00:77:02:02 {2}# eth0 virtio_net, boot NIC \(network boot enabled\)$/m, /^# it has an IPMI BMC without an address: bmc stays manual$/m, /^ {2}# disks as reported: vda; vdb$/m],
    },
    {
      what: 'a BL460c Gen8: the NIC that PXE-booted first, 128 GiB, 2 sockets and 16 cores, the logical drive, iLO 4 left for the human',
      report: bl460cGen8,
      name: 'cz3401xy17',
      macs: ['9c:8e:99:4a:20:02', '9c:8e:99:4a:20:01'],
      hardware: { model: 'HP ProLiant BL460c Gen8', cpus: 2, cores: 16, memoryGiB: 128, disks: [{ name: 'sda', sizeGB: 300, type: 'hdd' }] },
      bmc: { type: 'manual' },
      labels: { serial: 'CZ3401XY17', 'management-address': '10.77.1.117' },
      comments: [
        /^# CPUs: 2 × Intel\(R\) Xeon\(R\) CPU E5-2670 0 @ 2\.60GHz, 16 cores, 32 threads$/m,
        /^# RAID logical drives \(sizes are the arrays'\): sda on hpsa$/m,
        /^# its BMC, as the machine reports it: 10\.77\.1\.117 \(IPMI 2\.0, HPE, firmware 2\.78, address by dhcp\)$/m,
        /^# bmc stays manual: to let forseti drive it, set \{type: ipmi, address: 10\.77\.1\.117, credential: NAME\} \(forseti bmc probe 10\.77\.1\.117\)$/m,
        /^ {2}# disks as reported: sda HP LOGICAL VOLUME$/m,
      ],
    },
    {
      what: 'the same blade on a site that names a discovery credential: its iLO becomes the IPMI BMC; UEFI as the agent saw it',
      report: bl460cGen8,
      options: { bmcCredential: 'ilo-discovered', firmware: 'uefi' },
      name: 'cz3401xy17',
      macs: ['9c:8e:99:4a:20:02', '9c:8e:99:4a:20:01'],
      hardware: { model: 'HP ProLiant BL460c Gen8', cpus: 2, cores: 16, memoryGiB: 128, disks: [{ name: 'sda', sizeGB: 300, type: 'hdd' }], firmware: 'uefi' },
      bmc: { type: 'ipmi', address: '10.77.1.117', credential: 'ilo-discovered' },
      labels: { serial: 'CZ3401XY17', 'management-address': '10.77.1.117' },
      comments: [/^# bmc uses the site's discovery credential: check that it answers \(forseti bmc probe 10\.77\.1\.117\)$/m],
    },
    {
      what: 'a whitebox: no serial (named by its MAC), the kernel\'s memory, NVMe and SATA SSD, the USB stick left out',
      report: whitebox,
      name: 'node-a8a159000001',
      macs: ['a8:a1:59:00:00:01', 'a8:a1:59:00:00:02'],
      hardware: { cpus: 1, cores: 6, memoryGiB: 31.25, disks: [{ name: 'nvme0n1', sizeGB: 500.1, type: 'nvme' }, { name: 'sda', sizeGB: 120, type: 'ssd' }] },
      bmc: { type: 'manual' },
      comments: [
        /^# the firmware reports no system serial number \(DMI\)$/m,
        /^# memory: what the kernel manages \(the firmware lists no DIMMs\)/m,
        /^# left out, removable or USB: sdb SanDisk Cruzer Blade$/m,
        /^ {2}- a8:a1:59:00:00:02 {2}# enp2s0 igb no link$/m,
        /^ {2}# disks as reported: nvme0n1 Samsung SSD 970 EVO 500GB; sda KINGSTON SA400S3$/m,
      ],
    },
  ];
  for (const row of table) {
    it(row.what, async () => {
      const p = propose(read(row.report()), row.options);
      assert.equal(p.kind, 'proposed', JSON.stringify(p));
      if (p.kind !== 'proposed') return;
      assert.equal(p.name, row.name);
      assert.deepEqual(p.document.macs, row.macs);
      assert.deepEqual(p.document.hardware, row.hardware);
      assert.deepEqual(p.document.bmc, row.bmc);
      assert.deepEqual(p.document.labels, row.labels);
      assert.equal(p.document.role, 'off');
      for (const c of row.comments) assert.match(p.yaml, c);
      await validates(p, `valid-${row.name}-${row.options ? 'opt' : 'plain'}`);
    });
  }

  it('a machine the lab declares (its PXE MAC is bld-007\'s) is skipped', () => {
    const doc = withValue(withValue(whitebox(), '/nics/0/mac', '9c:8e:99:4a:11:07'), '/boot/mac', '9c:8e:99:4a:11:07');
    const p = propose(read(doc));
    assert.deepEqual(p, { kind: 'declared', machine: 'inventory of 9c:8e:99:4a:11:07', host: 'bld-007', why: 'its MAC 9c:8e:99:4a:11:07 is declared by host bld-007' });
  });

  it('the MAC the agent saw PXE-boot goes first even when the image got its address on another NIC', () => {
    const p = propose(read(bl460cGen8(), '9c:8e:99:4a:20:01'), { bootedMac: '9c:8e:99:4a:20:01' });
    assert.equal(p.kind === 'proposed' && p.document.macs.join(' '), '9c:8e:99:4a:20:01 9c:8e:99:4a:20:02');
  });

  // Printable ASCII passes the reader: quotes, YAML indicators, comment marks, flow brackets, anchors, tags, a
  // document marker. Each must come back from the YAML as exactly the string the machine sent, in one document with
  // the keys a host has, and the lab must still validate.
  const hostile = ['"quoted", \'single\'', 'a: b', '- item', '# not a comment', '{role: talos-worker}', '[x, y]', '&anchor *alias', '!!binary AAAA', '--- ...', '|', '>-', '%YAML 1.2', '@at `tick`', 'key: value # power: on', 'null', 'true', '0x1F', '12:34:56', '~', '  leading and trailing  ', '\\n not a newline \\"'];
  const fields: Array<[string, (doc: { hardware?: { model?: string }; labels?: Record<string, string> }) => unknown, string]> = [
    ['/dmi/system/product', (d) => d.hardware?.model, 'model'],
    ['/dmi/system/serial', (d) => d.labels?.['serial'], 'serial'],
  ];
  for (const [path, readBack, what] of fields) {
    it(`strings with quotes and YAML specials in the ${what} stay one scalar, read back as sent`, async () => {
      for (const [i, text] of hostile.entries()) {
        const p = propose(read(withValue(withValue(bl460cGen8(), '/dmi/system/vendor', 'Vendor'), path, text)));
        assert.equal(p.kind, 'proposed', `${text}: ${JSON.stringify(p)}`);
        if (p.kind !== 'proposed') continue;
        const docs = parseAllDocuments(p.yaml);
        assert.equal(docs.length, 1, text);
        const doc = docs[0]!.toJS() as Record<string, unknown>;
        assert.deepEqual(Object.keys(doc), ['apiVersion', 'kind', 'name', 'description', 'macs', 'ip', 'bmc', 'hardware', 'role', 'labels'], text);
        assert.equal(doc['role'], 'off', text);
        const sent = text.trim().replace(/\s+/g, ' ');
        assert.equal(readBack(doc as never), what === 'model' ? `Vendor ${sent}` : sent, text);
        if (i % 7 === 0) await validates(p, `hostile-${what}-${i}`);
      }
    });
  }

  it('disk models, NIC names and drivers, the CPU model and the BMC firmware with YAML specials end up in comments only', async () => {
    let doc = bl460cGen8();
    doc = withValue(doc, '/disks/0/model', 'M: {x} # y');
    doc = withValue(doc, '/nics/0/name', 'eno1: - [a]');
    doc = withValue(doc, '/nics/0/driver', '"drv"');
    doc = withValue(doc, '/cpus/model', 'role: talos-worker');
    doc = withValue(doc, '/bmc/firmware', '--- !!js/function');
    const p = propose(read(doc));
    assert.equal(p.kind, 'proposed');
    if (p.kind !== 'proposed') return;
    const docs = parseAllDocuments(p.yaml);
    assert.equal(docs.length, 1);
    const parsed = docs[0]!.toJS() as Record<string, unknown>;
    assert.equal(parsed['role'], 'off');
    assert.deepEqual(parsed['macs'], ['9c:8e:99:4a:20:02', '9c:8e:99:4a:20:01']);
    assert.deepEqual(parsed['bmc'], { type: 'manual' });
    for (const line of p.yaml.split('\n')) if (/talos-worker|drv|js\/function|\{x\}/.test(line)) assert.match(line, /^\s*(- \S+ {2})?#/, line);
    await validates(p, 'hostile-comments');
  });
});
