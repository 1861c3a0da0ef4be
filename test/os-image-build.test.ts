// The pieces of the forseti OS image build (src/os-image) on small inputs, and the guest's shell libraries run by
// busybox as the image runs them: ELF reading against readelf, the library closure, module order, reproducible
// initramfs bytes, JSON from shell, and the parsers of ipmitool, dmidecode, hdparm and nvme-cli output.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import type { DebianPackage } from '../src/os-image/debian-packages.ts';
import { NotElfError, readElfDynamicInfo } from '../src/os-image/elf.ts';
import { ImagePathConflictError, ImageTree } from '../src/os-image/image-tree.ts';
import { KernelModuleNotFoundError, resolveModules } from '../src/os-image/kernel-modules.ts';
import { LibraryClosure, MissingLibraryError, type PackageSource } from '../src/os-image/library-closure.ts';

const GUEST_LIB = fileURLToPath(new URL('../src/os-image/guest/lib/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'forseti-os-image-build-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('ELF dynamic section', () => {
  test('interpreter and DT_NEEDED of a host executable match readelf', () => {
    const file = '/bin/ls';
    const info = readElfDynamicInfo(readFileSync(file), file);
    const dynamic = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
    const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    assert.deepEqual(info.needed, needed);
    const interpreter = /Requesting program interpreter: ([^\]]+)\]/.exec(execFileSync('readelf', ['-l', file], { encoding: 'utf8' }))?.[1];
    assert.equal(info.interpreter, interpreter);
  });

  test('a shared object names itself', () => {
    const file = execFileSync('readlink', ['-f', '/lib/x86_64-linux-gnu/libc.so.6'], { encoding: 'utf8' }).trim();
    assert.equal(readElfDynamicInfo(readFileSync(file), file).soname, 'libc.so.6');
  });

  test('not an ELF file is a clear error', () => {
    assert.throws(() => readElfDynamicInfo(Buffer.from('#!/bin/sh\n'), 'script.sh'), (error: unknown) => error instanceof NotElfError && /script\.sh: not an ELF file/.test(error.message));
  });
});

describe('image tree', () => {
  const fill = (tree: ImageTree, order: number[]): void => {
    const adds = [
      () => tree.file('usr/bin/tool', Buffer.from('tool'), 0o755),
      () => tree.symlink('bin/sh', 'busybox'),
      () => tree.file('init', Buffer.from('#!/bin/sh\n'), 0o755),
      () => tree.add({ kind: 'chardev', path: 'dev/console', major: 5, minor: 1 }),
    ];
    for (const index of order) adds[index]?.();
  };

  test('the same files in any order give the same bytes, parents first', () => {
    const a = new ImageTree();
    const b = new ImageTree();
    fill(a, [0, 1, 2, 3]);
    fill(b, [3, 2, 1, 0]);
    assert.deepEqual(a.initramfs(), b.initramfs());
    assert.equal(a.digest(), b.digest());
    const listing = execFileSync('busybox', ['cpio', '-t'], { input: gunzipSync(a.initramfs()), encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] });
    assert.deepEqual(listing.trim().split('\n'), ['bin', 'bin/sh', 'dev', 'dev/console', 'init', 'usr', 'usr/bin', 'usr/bin/tool']);
  });

  test('a change of content changes the digest; two different files at one path are refused', () => {
    const a = new ImageTree();
    const b = new ImageTree();
    fill(a, [0]);
    b.file('usr/bin/tool', Buffer.from('tool2'), 0o755);
    assert.notEqual(a.digest(), b.digest());
    a.file('usr/bin/tool', Buffer.from('tool'), 0o755);
    assert.throws(() => a.file('usr/bin/tool', Buffer.from('other')), ImagePathConflictError);
  });
});

describe('kernel modules', () => {
  const tree = join(work, 'lib/modules/6.1.0-test/kernel');
  const module = (path: string, modinfo: string): void => {
    mkdirSync(dirname(join(tree, path)), { recursive: true });
    writeFileSync(join(tree, path), Buffer.from(`\x7fELF...\0${modinfo}\0license=GPL\0`, 'latin1'));
  };
  module('drivers/net/nic.ko', 'firmware=vendor/nic.fw\0depends=mdio,libcrc');
  module('drivers/net/mdio.ko', 'depends=');
  module('lib/libcrc.ko', 'depends=crc-core');
  module('lib/crc-core.ko', 'depends=');
  writeFileSync(join(work, 'lib/modules/6.1.0-test/modules.builtin'), 'kernel/lib/crc-core.ko\n');

  test('dependencies first, built-in ones left out, firmware named', () => {
    const resolved = resolveModules(tree, ['nic']);
    assert.deepEqual(resolved.map((m) => m.name), ['mdio', 'libcrc', 'nic']);
    assert.deepEqual(resolved.find((m) => m.name === 'nic')?.firmware, ['vendor/nic.fw']);
  });

  test('a module the kernel lacks is an error naming it', () => {
    assert.throws(() => resolveModules(tree, ['megaraid_sas']), (error: unknown) => error instanceof KernelModuleNotFoundError && error.module === 'megaraid_sas');
  });
});

describe('library closure', () => {
  // Two fake packages made of the host's own files: "tool" holds /bin/true, "libc6" the C library and loader.
  const libcFile = execFileSync('readlink', ['-f', '/lib/x86_64-linux-gnu/libc.so.6'], { encoding: 'utf8' }).trim();
  const loaderFile = execFileSync('readlink', ['-f', '/lib64/ld-linux-x86-64.so.2'], { encoding: 'utf8' }).trim();
  const pkg = (name: string): DebianPackage => ({ name, version: '1.0', root: join(work, 'pkg', name) });
  const packages = new Map([['tool', pkg('tool')], ['libc6', pkg('libc6')], ['lsb-base', pkg('lsb-base')]]);
  mkdirSync(join(work, 'pkg/tool/bin'), { recursive: true });
  copyFileSync('/bin/true', join(work, 'pkg/tool/bin/true'));
  mkdirSync(join(work, 'pkg/libc6/lib/x86_64-linux-gnu'), { recursive: true });
  mkdirSync(join(work, 'pkg/libc6/lib64'), { recursive: true });
  mkdirSync(join(work, 'pkg/lsb-base/usr/share'), { recursive: true });
  copyFileSync(libcFile, join(work, 'pkg/libc6/lib/x86_64-linux-gnu/libc-real.so'));
  symlinkSync('libc-real.so', join(work, 'pkg/libc6/lib/x86_64-linux-gnu/libc.so.6'));
  copyFileSync(loaderFile, join(work, 'pkg/libc6/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'));
  symlinkSync('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', join(work, 'pkg/libc6/lib64/ld-linux-x86-64.so.2'));
  const depends: Record<string, string[]> = { tool: ['lsb-base', 'libc6'], libc6: [], 'lsb-base': [] };
  const fetched: string[] = [];
  const source: PackageSource = {
    get: async (name) => {
      fetched.push(name);
      const found = packages.get(name);
      if (!found) throw new Error(`no package ${name}`);
      return found;
    },
    depends: async (p) => depends[p.name] ?? [],
  };

  test('an executable comes with the libraries its Depends provide and a loader symlink', async () => {
    const tree = new ImageTree();
    const closure = new LibraryClosure(tree, source);
    await closure.addExecutable({ package: 'tool', paths: ['usr/bin/true', 'bin/true'], dest: 'usr/bin/true' });
    const entries = new Map(tree.sorted().map((e) => [e.path, e]));
    assert.equal(entries.get('usr/bin/true')?.kind, 'file');
    const libc = entries.get('lib/x86_64-linux-gnu/libc.so.6');
    assert.ok(libc?.kind === 'file' && libc.data.equals(readFileSync(libcFile)), 'libc.so.6 is the file its symlink points to');
    assert.equal(entries.get('lib/x86_64-linux-gnu/ld-linux-x86-64.so.2')?.kind, 'file');
    assert.deepEqual(entries.get('lib64/ld-linux-x86-64.so.2'), { kind: 'symlink', path: 'lib64/ld-linux-x86-64.so.2', target: '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' });
    assert.ok(fetched.includes('libc6'));
    // lsb-base was searched (it is in the Depends) but holds no library: it is not part of the image
    assert.deepEqual(closure.packages.map((p) => p.name), ['tool', 'libc6']);
  });

  test('a soname no package provides is an error naming what was searched', async () => {
    depends['tool'] = ['lsb-base'];
    try {
      await assert.rejects(new LibraryClosure(new ImageTree(), source).addExecutable({ package: 'tool', paths: ['bin/true'], dest: 'bin/true' }),
        (error: unknown) => error instanceof MissingLibraryError && error.neededBy === 'tool:/bin/true' && error.searched.includes('lsb-base')
          && /^no package provides (ld-linux-x86-64\.so\.2|libc\.so\.6) \(needed by tool:\/bin\/true\); searched /.test(error.message));
    } finally {
      depends['tool'] = ['lsb-base', 'libc6'];
    }
  });
});

describe('guest shell libraries, under busybox', () => {
  // PATH holds busybox applets only, as in the image: awk, sed and tr are busybox's, not the host's.
  const applets = join(work, 'applets');
  const busybox = join(applets, 'busybox');
  mkdirSync(applets, { recursive: true });
  symlinkSync(execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim(), busybox);
  execFileSync(busybox, ['--install', '-s', applets]);
  const run = (script: string, input = ''): string =>
    execFileSync(busybox, ['sh', '-c', `. ${GUEST_LIB}json.sh; ${script}`], { input, encoding: 'utf8', env: { PATH: applets, LOG: '/dev/null' } });

  test('JSON strings keep printable ASCII, escaped', () => {
    const text = run(`json_str "$(printf 'a"b\\\\c\\tnew\\nline \\303\\251 end')"`);
    assert.equal(JSON.parse(text), 'a"b\\cnewline  end');
    assert.equal(run('json_int 007; echo; json_int -5; echo; json_int 12x; echo'), '7\n-5\n\n');
    assert.deepEqual(JSON.parse(run(`json_obj a "$(json_str x)" b '' c "$(json_arr 1 '' 2)" d "$(printf '1\\n\\n2\\n' | json_lines)"`)), { a: 'x', c: [1, 2], d: [1, 2] });
  });

  test('report events have the fields of curtin\'s webhook events', () => {
    const script = `. ${GUEST_LIB}report.sh; say() { :; }; post_json() { printf '%s' "$2"; }; BOOT_EPOCH=1700000000 REPORT_URL=http://agent/report
      report_event finish forseti-wipe/disk/sda 'sda done' FAIL "$(json_obj disk '"sda"')"`;
    const event = JSON.parse(run(script)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(event), ['name', 'description', 'event_type', 'origin', 'timestamp', 'level', 'result', 'forseti']);
    assert.deepEqual({ ...event, timestamp: typeof event['timestamp'] }, {
      name: 'forseti-wipe/disk/sda', description: 'failed: sda done', event_type: 'finish', origin: 'forseti',
      timestamp: 'number', level: 'ERROR', result: 'FAIL', forseti: { disk: 'sda' },
    });
  });

  // ipmitool prints LAN parameters as printf("%-24s: ...") (lib/ipmi_lanp.c); values of an iLO 4 on DHCP
  const LAN_PRINT = [
    'Set in Progress         : Set Complete',
    'IP Address Source       : DHCP Address',
    'IP Address              : 10.20.0.41',
    'Subnet Mask             : 255.255.255.0',
    'MAC Address             : 9C:8E:99:1A:2B:3C',
    'Default Gateway IP      : 10.20.0.1',
    'Default Gateway MAC     : 00:00:00:00:00:00',
    '802.1q VLAN ID          : Disabled',
  ].join('\n');

  test('the BMC address, source and MAC are read from ipmitool lan print', () => {
    const out = run(`. ${GUEST_LIB}inventory.sh; for f in 'IP Address' 'IP Address Source' 'MAC Address' 'Default Gateway IP' 'Nothing'; do printf '%s\\n' "$LAN" | lan_field "$f"; echo "|"; done`.replace('$LAN', `'${LAN_PRINT}'`));
    assert.equal(out, '10.20.0.41\n|\nDHCP Address\n|\n9C:8E:99:1A:2B:3C\n|\n10.20.0.1\n|\n|\n');
  });

  test('installed DIMMs are read from dmidecode -t 17, empty slots left out', () => {
    const dmidecode = `# dmidecode 3.4
Getting SMBIOS data from sysfs.
SMBIOS 2.8 present.

Handle 0x1100, DMI type 17, 40 bytes
Memory Device
\tArray Handle: 0x1000
\tSize: 16 GB
\tLocator: PROC  1 DIMM  1
\tType: DDR3
\tSpeed: 1600 MT/s
\tManufacturer: HP
\tSerial Number: Not Specified
\tPart Number: 713756-081

Handle 0x1101, DMI type 17, 40 bytes
Memory Device
\tArray Handle: 0x1000
\tSize: No Module Installed
\tLocator: PROC  1 DIMM  2
\tType: Unknown

Handle 0x1102, DMI type 17, 40 bytes
Memory Device
\tSize: 512 MB
\tLocator: DIMM 0
\tType: RAM
\tSpeed: Unknown
`;
    const out = run(`. ${GUEST_LIB}inventory.sh; dmidecode() { cat; }; dimms`, dmidecode);
    assert.equal(out, 'PROC  1 DIMM  1\t17179869184\tDDR3\t1600\tHP\tNot Specified\t713756-081\nDIMM 0\t536870912\tRAM\t\t\t\t\n');
  });

  // hdparm -I prints the Security section as in its identify.c: "\t\t" for a set bit, "\tnot\t" for a clear one
  const hdparmSecurity = (frozen: boolean): string => `ATA device, with non-removable media
\tModel Number:       ST1000NM0033-9ZM173
Security: 
\tMaster password revision code = 65534
\t\tsupported
\tnot\tenabled
\tnot\tlocked
${frozen ? '\t\tfrozen' : '\tnot\tfrozen'}
\tnot\texpired: security count
\t\tsupported: enhanced erase
\t110min for SECURITY ERASE UNIT. 110min for ENHANCED SECURITY ERASE UNIT.
Logical Unit WWN Device Identifier: 5000c500abcdef01
`;

  test('the ATA security state is read from hdparm -I, frozen or not', () => {
    const frozen = run(`. ${GUEST_LIB}wipe.sh; ata_security`, hdparmSecurity(true)).split('\n');
    assert.ok(frozen.includes('frozen') && frozen.includes('supported') && frozen.includes('supported: enhanced erase'));
    const thawed = run(`. ${GUEST_LIB}wipe.sh; ata_security`, hdparmSecurity(false)).split('\n');
    assert.ok(thawed.includes('not frozen') && !thawed.includes('frozen'));
  });

  test('nvme id-ctrl fields are read as numbers', () => {
    const idCtrl = 'vid       : 0x144d\nfna       : 0x4\nsanicap   : 0x3\n';
    assert.equal(run(`. ${GUEST_LIB}wipe.sh; id=$(cat); echo $(( $(hex_field fna "$id") & 4 )) $(( $(hex_field sanicap "$id") & 1 ))`, idCtrl), '4 1\n');
  });
});
