// The forseti OS image (src/os-image), built from Debian packages and booted in QEMU (TCG) straight from its
// kernel and initramfs, in a network namespace with dnsmasq for DHCP and a receiver recording every POST:
// the wipe modes erase what they say and report it in curtin's event format, the inventory reads the machine
// without writing a byte and its report validates against schemas/inventory-report.schema.json.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv } from 'ajv';
import formatsPlugin from 'ajv-formats';
import { assembleOsImage, ensureOsImage, type OsImage } from '../src/os-image/build.ts';
import { DEFAULT_CACHE_DIR } from './vlab/assets.ts';
import { ImageLab, type Disk, type ReceivedRequest } from './os-image/harness.ts';
import { MIB, isZero, partitionedDisk, signaturesAt } from './os-image/disks.ts';

const TOKEN = 'os-image-test-token-0123456789';
const REPORT_PATH = '/v1/report/attempt-secret';

const skipReason =
  process.getuid?.() !== 0 ? 'needs root (network namespaces, taps)'
    : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun'
      : !existsSync('/usr/bin/qemu-system-x86_64') ? 'needs qemu-system-x86'
        : !existsSync('/usr/sbin/sfdisk') ? 'needs sfdisk (fdisk)'
          : false;

const cacheDir = process.env.FORSETI_OS_IMAGE_CACHE ?? process.env.FORSETI_VLAB_CACHE ?? DEFAULT_CACHE_DIR;

interface WipeEvent {
  name: string;
  description: string;
  event_type: string;
  origin: string;
  timestamp: number;
  level: string;
  result?: string;
  forseti?: Record<string, unknown>;
  files?: unknown[];
}

interface InventoryReport {
  boot: { mac: string; ip: string };
  nics: Array<{ mac: string; driver: string; boot: boolean }>;
  memory: { totalBytes: number; source: string };
  disks: Array<{ name: string; sizeBytes: number; serial: string; transport: string }>;
  dmi: { system: Record<string, string> };
  cpus: { sockets: number; threads: number };
  bmc?: { interface: string };
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function events(requests: ReceivedRequest[]): WipeEvent[] {
  return requests.filter((r) => r.path === REPORT_PATH).map((r) => JSON.parse(r.body) as WipeEvent);
}

const virtio = (serial: string) => (id: string): string => `virtio-blk-pci,drive=${id},serial=${serial}`;

describe('forseti OS image in QEMU', { skip: skipReason, timeout: 1_500_000 }, () => {
  let image: OsImage;
  let lab: ImageLab;
  let dir: string;

  before(async () => {
    image = await ensureOsImage({ cacheDir });
    dir = mkdtempSync(join(tmpdir(), 'forseti-os-image-'));
    lab = await ImageLab.start(dir);
  });
  after(async () => {
    await lab?.stop();
    if (dir && process.env.FORSETI_VLAB_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
  });

  test('the same packages and scripts give a byte-identical initramfs', async () => {
    const again = await assembleOsImage(cacheDir);
    assert.equal(again.key, image.manifest.key);
    const initrd = again.tree.initramfs();
    assert.equal(sha256(initrd), sha256(readFileSync(image.initrd)), 'a rebuild differs from the cached image');
    assert.equal(sha256(initrd), image.manifest.initrd.sha256);
    assert.equal(sha256(again.kernel), image.manifest.kernel.sha256);
  });

  test('wipe metadata: no signature left, first and last MiB zero, every disk reported, powered off', async (t) => {
    const disks = [partitionedDisk(dir, 'meta-a', 64), partitionedDisk(dir, 'meta-b', 48)];
    for (const disk of disks) {
      assert.match(signaturesAt(disk.file), /gpt/);
      assert.equal(signaturesAt(disk.file, disk.partitionOffsets[0]), 'ext4');
      assert.equal(signaturesAt(disk.file, disk.partitionOffsets[1]), 'swap');
    }
    const serialLog = join(dir, 'metadata-serial.log');
    const mac = '52:54:00:77:01:01';
    const seen = lab.requests.length;
    const result = await lab.boot(image, {
      mac, serialLog,
      disks: disks.map((d, i): Disk => ({ file: d.file, device: virtio(`META-${i}`) })),
      append: `forseti.mode=wipe forseti.wipe=metadata forseti.report=${lab.reportBase}${REPORT_PATH} forseti.token=${TOKEN} forseti.callback=${lab.reportBase}/v1/phone-home`,
    });
    t.diagnostic(readFileSync(serialLog, 'utf8').split('\n').filter((l) => l.startsWith('FORSETI-MARKER')).join(' | '));
    assert.equal(result.timedOut, false, 'the guest did not power off');
    assert.match(readFileSync(serialLog, 'utf8'), /FORSETI-MARKER: POWEROFF/);

    for (const disk of disks) {
      const data = readFileSync(disk.file);
      assert.equal(signaturesAt(disk.file), '', `${disk.file} still has a signature`);
      for (const offset of disk.partitionOffsets) assert.equal(signaturesAt(disk.file, offset), '', `${disk.file} still has a signature at ${offset}`);
      assert.ok(isZero(data.subarray(0, MIB)), 'first MiB is not zero');
      assert.ok(isZero(data.subarray(data.length - MIB)), 'last MiB is not zero');
    }

    const requests = lab.requests.slice(seen);
    const got = events(requests);
    for (const request of requests) assert.equal(request.authorization, `Bearer ${TOKEN}`);
    assert.deepEqual(got.map((e) => `${e.event_type} ${e.name} ${e.result ?? ''}`.trim()), [
      'start forseti-wipe',
      'start forseti-wipe/disk/vda', 'finish forseti-wipe/disk/vda SUCCESS',
      'start forseti-wipe/disk/vdb', 'finish forseti-wipe/disk/vdb SUCCESS',
      'finish forseti-wipe SUCCESS',
    ]);
    for (const event of got) {
      assert.equal(event.origin, 'forseti');
      assert.equal(typeof event.timestamp, 'number');
      assert.equal(event.level, 'INFO');
    }
    const finishes = got.filter((e) => e.event_type === 'finish' && e.name.startsWith('forseti-wipe/disk/'));
    assert.deepEqual(finishes.map((e) => e.forseti?.['sizeBytes']), [64 * MIB, 48 * MIB]);
    for (const event of finishes) {
      assert.equal(event.forseti?.['verified'], true);
      assert.match(String(event.forseti?.['method']), /wipefs -a on 2 partition\(s\) and the disk, first and last MiB zeroed/);
    }
    const phoneHome = requests.find((r) => r.path === '/v1/phone-home');
    assert.equal(phoneHome?.body, `role=&mac=${mac}&ip=${phoneHome?.remote}`);
  });

  test('inventory: a valid report with the real MAC, memory and disks; the disks are not written', async (t) => {
    const disks = [partitionedDisk(dir, 'inv-a', 64), partitionedDisk(dir, 'inv-b', 40)];
    const before = disks.map((d) => sha256(readFileSync(d.file)));
    const serialLog = join(dir, 'inventory-serial.log');
    const mac = '52:54:00:77:02:02';
    const uuid = '4c4c4544-0042-3510-8050-b4c04f564433';
    const seen = lab.requests.length;
    const result = await lab.boot(image, {
      mac, serialLog, memoryMiB: 384,
      disks: disks.map((d, i): Disk => ({ file: d.file, device: virtio(`INV-${i}`) })),
      extraArgs: ['-uuid', uuid, '-smbios', 'type=1,manufacturer=HP,product=ProLiant BL460c Gen8,serial=CZJ3110ABC',
        '-device', 'ipmi-bmc-sim,id=bmc0', '-device', 'isa-ipmi-kcs,bmc=bmc0'],
      append: `forseti.mode=inventory forseti.report=${lab.reportBase}${REPORT_PATH} forseti.token=${TOKEN}`,
    });
    t.diagnostic(readFileSync(serialLog, 'utf8').split('\n').filter((l) => l.startsWith('FORSETI-MARKER')).join(' | '));
    assert.equal(result.timedOut, false, 'the guest did not power off');
    assert.deepEqual(disks.map((d) => sha256(readFileSync(d.file))), before, 'inventory changed a disk');

    const requests = lab.requests.slice(seen);
    assert.equal(requests.length, 1);
    const [request] = requests;
    assert.equal(request?.authorization, `Bearer ${TOKEN}`);
    assert.equal(request?.contentType, 'application/json');
    const report = JSON.parse(request?.body ?? '') as InventoryReport;

    const ajv = new Ajv({ allErrors: true, strict: true });
    formatsPlugin.default(ajv, ['ipv4']);
    const validate = ajv.compile(JSON.parse(readFileSync(new URL('../schemas/inventory-report.schema.json', import.meta.url), 'utf8')) as object);
    assert.ok(validate(report), JSON.stringify(validate.errors, null, 2));

    assert.equal(report.boot.mac, mac);
    assert.equal(report.boot.ip, request?.remote);
    assert.deepEqual(report.nics.map((n) => [n.mac, n.driver, n.boot]), [[mac, 'virtio_net', true]]);
    assert.equal(report.memory.totalBytes, 384 * MIB);
    assert.equal(report.memory.source, 'dmi');
    assert.deepEqual(report.disks.map((d) => [d.name, d.sizeBytes, d.serial, d.transport]),
      [['vda', 64 * MIB, 'INV-0', 'virtio'], ['vdb', 40 * MIB, 'INV-1', 'virtio']]);
    assert.deepEqual(report.dmi.system, { ...report.dmi.system, vendor: 'HP', product: 'ProLiant BL460c Gen8', serial: 'CZJ3110ABC', uuid });
    assert.deepEqual({ sockets: report.cpus.sockets, threads: report.cpus.threads }, { sockets: 1, threads: 1 });
    assert.equal(report.bmc?.interface, 'ipmi', 'the BMC behind /dev/ipmi0 is missing');
  });

  test('wipe secure: NVMe Format NVM on the NVMe disk; the virtio disk and a MegaRAID logical drive zeroed with progress (WARN, named); a dead phone-home still powers off', async (t) => {
    const virtioDisk = join(dir, 'secure-virtio.raw');
    const nvmeDisk = join(dir, 'secure-nvme.raw');
    const raidDisk = join(dir, 'secure-raid.raw');
    for (const file of [virtioDisk, nvmeDisk, raidDisk]) writeFileSync(file, randomBytes(16 * MIB));
    const serialLog = join(dir, 'secure-serial.log');
    const seen = lab.requests.length;
    const result = await lab.boot(image, {
      mac: '52:54:00:77:03:03', serialLog,
      disks: [
        { file: virtioDisk, device: virtio('SEC-0') },
        { file: nvmeDisk, device: (id) => `nvme,drive=${id},serial=NVME-SEC-1` },
        // QEMU's LSI MegaRAID SAS 1078 (driver megaraid_sas, as the x3550 M3's ServeRAID M5015) shows its disks as logical drives
        { file: raidDisk, device: (id) => `scsi-hd,drive=${id},bus=raid0.0` },
      ],
      extraArgs: ['-device', 'megasas,id=raid0'],
      // nothing listens on port 9 of the agent's address: the phone-home fails, in bounded time
      append: `forseti.mode=wipe forseti.wipe=secure forseti.report=${lab.reportBase}${REPORT_PATH} forseti.token=${TOKEN} forseti.callback=http://10.77.0.1:9/v1/phone-home`,
    });
    const serial = readFileSync(serialLog, 'utf8');
    t.diagnostic(serial.split('\n').filter((l) => l.startsWith('FORSETI-MARKER')).join(' | '));
    assert.equal(result.timedOut, false, 'the guest did not power off');
    assert.match(serial, /FORSETI-MARKER: PHONE-HOME-FAILED/);
    assert.ok(isZero(readFileSync(virtioDisk)), 'the virtio disk is not all zero');
    assert.ok(isZero(readFileSync(nvmeDisk)), 'the NVMe disk is not all zero');
    assert.ok(isZero(readFileSync(raidDisk)), 'the RAID logical drive is not all zero');

    const got = events(lab.requests.slice(seen));
    const finish = (name: string): WipeEvent | undefined => got.find((e) => e.event_type === 'finish' && e.name === name);
    assert.equal(finish('forseti-wipe/disk/nvme0n1')?.result, 'SUCCESS');
    assert.match(String(finish('forseti-wipe/disk/nvme0n1')?.forseti?.['method']), /^NVMe Format NVM, secure erase setting [12]/);
    const virtioFinish = finish('forseti-wipe/disk/vda');
    assert.equal(virtioFinish?.result, 'WARN');
    assert.equal(virtioFinish?.level, 'WARN');
    assert.match(String(virtioFinish?.forseti?.['method']), /secure erase unsupported \(a virtio disk has no secure erase command\): whole disk zeroed/);
    const raidFinish = finish('forseti-wipe/disk/sda');
    assert.equal(raidFinish?.result, 'WARN');
    assert.match(String(raidFinish?.forseti?.['method']), /secure erase unsupported \(logical drive of a megaraid_sas RAID controller: no secure erase reaches the physical disks\): whole disk zeroed/);
    const progress = got.filter((e) => e.event_type === 'progress' && e.name === 'forseti-wipe/disk/vda').map((e) => Number(e.forseti?.['bytesDone']));
    assert.ok(progress.length >= 2, 'no periodic progress');
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b));
    assert.equal(progress.at(-1), 16 * MIB);
    const overall = finish('forseti-wipe');
    assert.equal(overall?.result, 'WARN');
    assert.ok(Array.isArray(overall?.files) && overall.files.length === 1, 'a run that is not SUCCESS carries its log');
  });

  test('an unknown wipe method (forseti.wipe=all) touches no disk, reports FAIL and powers off', async () => {
    const disk = partitionedDisk(dir, 'bad-args', 32);
    const before = sha256(readFileSync(disk.file));
    const serialLog = join(dir, 'bad-args-serial.log');
    const seen = lab.requests.length;
    const result = await lab.boot(image, {
      mac: '52:54:00:77:04:04', serialLog,
      disks: [{ file: disk.file, device: virtio('BAD-0') }],
      append: `forseti.wipe=all forseti.report=${lab.reportBase}${REPORT_PATH} forseti.token=${TOKEN} forseti.callback=${lab.reportBase}/v1/phone-home`,
    });
    assert.equal(result.timedOut, false, 'the guest did not power off');
    assert.equal(sha256(readFileSync(disk.file)), before);
    const requests = lab.requests.slice(seen);
    assert.deepEqual(events(requests).map((e) => [e.event_type, e.name, e.result, e.level]), [['finish', 'forseti-wipe', 'FAIL', 'ERROR']]);
    assert.equal(requests.some((r) => r.path === '/v1/phone-home'), false, 'a failed wipe phoned home');
  });
});
