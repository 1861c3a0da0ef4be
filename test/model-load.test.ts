import { deepStrictEqual, equal, ok } from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatProblem, loadLab, loadLabOrThrow } from '../src/model/load.ts';
import { LabInvalidError } from '../src/model/errors.ts';

const MINIMAL = fileURLToPath(new URL('./fixtures/labs/minimal/', import.meta.url));
const TEMPLATE = fileURLToPath(new URL('../lab-repo-template/', import.meta.url));

test('defaults are applied and MACs, checksums and labels normalised', async () => {
  const { lab, problems } = await loadLab(MINIMAL);
  deepStrictEqual(problems, []);
  ok(lab);
  deepStrictEqual(lab.site.dhcp, { mode: 'full', leaseSeconds: 3600, pool: { start: '10.9.0.200', end: '10.9.0.250' } });
  deepStrictEqual(lab.site.agent, { address: '10.9.0.2', httpPort: 8080, tftpPort: 69 });
  deepStrictEqual(lab.site.policies, { provisionTimeoutSeconds: 900, stepTimeoutSeconds: 300, afterConverged: 'disk' });
  deepStrictEqual(lab.site.network.dns, []);

  const node1 = lab.hosts.get('node-1');
  ok(node1);
  deepStrictEqual(node1.macs, ['aa:bb:cc:00:00:01']);
  deepStrictEqual(node1.hardware, { memoryGiB: 64, disks: [{ sizeGB: 100 }], firmware: 'bios', arch: 'x86_64' });
  equal(node1.power, 'on');
  deepStrictEqual(node1.labels, {});
  deepStrictEqual(node1.refs.ip, { file: 'hosts/node-1.yaml', line: 5, col: 5 });
  deepStrictEqual(node1.refs['macs.0'], { file: 'hosts/node-1.yaml', line: 4, col: 8 });

  const node2 = lab.hosts.get('node-2');
  ok(node2);
  equal(node2.power, 'off');
  equal(node2.role, 'off');
  deepStrictEqual(node2.labels, { rack: '3', spare: 'true' });
  deepStrictEqual(node2.hardware, { disks: [], firmware: 'bios', arch: 'x86_64' });

  const worker = lab.profiles.get('worker');
  ok(worker);
  equal(worker.afterInstall, 'disk');
  deepStrictEqual(worker.boot, {
    kind: 'image',
    image: 'tiny',
    cmdline: 'console=ttyS0 cfg={{ urls.config }}',
    config: { name: 'cfg.yaml', template: 'host: {{ host.name }}\n', secret: true },
  });
  deepStrictEqual(lab.profiles.get('off')?.boot, { kind: 'off' });
  deepStrictEqual(lab.profiles.get('off')?.requires, {});

  const tiny = lab.images.get('tiny');
  ok(tiny);
  equal(tiny.kernel.sha256, '0123456789abcdef'.repeat(4));
  deepStrictEqual(tiny.initrds.map((f) => f.url), ['http://mirror.lan/initrd']);
});

test('the lab repository template loads clean with every host, profile and image', async () => {
  const { lab, problems } = await loadLab(TEMPLATE);
  deepStrictEqual(problems.map(formatProblem), []);
  ok(lab);
  equal(lab.hosts.size, 18);
  deepStrictEqual([...lab.profiles.keys()].sort(), ['ceph-osd', 'debian-node', 'netboot-xyz', 'off', 'openstack-compute', 'slurm-compute', 'talos-controlplane', 'talos-omni', 'talos-worker', 'wipe']);
  deepStrictEqual([...lab.images.keys()].sort(), ['debian-12', 'talos', 'ubuntu-24-04', 'wipe']);
  const bld004 = lab.hosts.get('bld-004');
  deepStrictEqual(bld004?.enclosure, { name: 'asgard', bay: 4 });
  equal(bld004?.hardware.memoryGiB, 8);
  equal(lab.hosts.get('oden')?.bmc.cipherSuite, 3);
  const talos = lab.profiles.get('talos-worker')?.boot;
  ok(talos?.kind === 'image' && talos.config?.file === 'configs/talos-worker.yaml');
  ok(talos.config.template.includes('type: worker'));
  ok(talos.cmdline.startsWith('talos.platform=metal console=tty0'));
  equal(lab.images.get('debian-12')?.initrds.length, 1);
  // Slurm, OpenStack and Ceph nodes install Ubuntu by autoinstall from a NoCloud seed, converged by its reports.
  for (const name of ['slurm-compute', 'openstack-compute', 'ceph-osd']) {
    const profile = lab.profiles.get(name);
    ok(profile?.boot.kind === 'image' && profile.boot.image === 'ubuntu-24-04', name);
    ok(profile.boot.cmdline.includes('autoinstall ds=nocloud-net;s={{ urls.nocloud }}'), name);
    equal(profile.boot.config?.name, 'user-data', name);
    deepStrictEqual(profile.converge, { mode: 'any', signals: [{ kind: 'installerReports' }], stepTimeoutSeconds: 1800 }, name);
  }
  // Every role that boots something converges on a signal its OS (or forseti itself) gives.
  const signalsOf = (name: string): string[] => lab.profiles.get(name)?.converge.signals.map((s) => s.kind) ?? [];
  deepStrictEqual(signalsOf('talos-controlplane'), ['talosEvents']);
  deepStrictEqual(signalsOf('talos-worker'), ['talosEvents']);
  deepStrictEqual(signalsOf('netboot-xyz'), ['menuServed']);
  deepStrictEqual(signalsOf('debian-node'), ['installerReports', 'phoneHome']);
  deepStrictEqual(signalsOf('wipe'), ['installerReports', 'phoneHome']);
  const expectedRam = [4, 14, 32, 8, 8, 8, 8, 16, 8, 8, 8, 8, 32, 8, 8, 8];
  expectedRam.forEach((gib, i) => equal(lab.hosts.get(`bld-${String(i + 1).padStart(3, '0')}`)?.hardware.memoryGiB, gib));
});

test('every template file names its schema by a path that exists', () => {
  for (const file of ['site.yaml', 'hosts/bld-001.yaml', 'profiles/wipe.yaml', 'images/talos.yaml']) {
    const first = readFileSync(join(TEMPLATE, file), 'utf8').split('\n')[0] ?? '';
    const m = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
    ok(m, file);
    ok(readFileSync(join(TEMPLATE, file, '..', m[1] ?? ''), 'utf8').includes('"$schema"'), file);
  }
});

test('2,000 generated hosts load and validate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-many-'));
  try {
    cpSync(MINIMAL, dir, { recursive: true });
    writeFileSync(join(dir, 'site.yaml'), readFileSync(join(MINIMAL, 'site.yaml'), 'utf8').replace('10.9.0.0/24', '10.9.0.0/16'));
    for (let i = 0; i < 2000; i++) {
      const name = `n-${i}`;
      const mac = `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      writeFileSync(join(dir, 'hosts', `${name}.yaml`), [
        'apiVersion: forseti/v1', 'kind: Host', `name: ${name}`, `macs: [${mac}]`, `ip: 10.9.${10 + (i >> 8)}.${i & 255}`,
        'bmc: {type: manual}', 'hardware:', '  memoryGiB: 64', '  disks:', '    - {sizeGB: 100}', 'role: worker', '',
      ].join('\n'));
    }
    const { lab, problems } = await loadLab(dir);
    deepStrictEqual(problems.map(formatProblem), []);
    equal(lab?.hosts.size, 2002);
    equal(lab?.hosts.get('n-1999')?.ip, '10.9.17.207');
    deepStrictEqual(lab?.hosts.get('n-1999')?.refs.role, { file: 'hosts/n-1999.yaml', line: 11, col: 7 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loadLabOrThrow throws LabInvalidError with every problem', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-empty-'));
  try {
    await loadLabOrThrow(dir).then(
      () => ok(false, 'should throw'),
      (e: unknown) => {
        ok(e instanceof LabInvalidError);
        deepStrictEqual(e.problems.map((p) => p.code), ['missing-site']);
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dhcp.relays: the declared relays reach the site; an address that is not IPv4 is refused at its line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-relays-'));
  try {
    cpSync(MINIMAL, dir, { recursive: true });
    const site = readFileSync(join(dir, 'site.yaml'), 'utf8');
    writeFileSync(join(dir, 'site.yaml'), site.replace('dhcp:\n', 'dhcp:\n  relays: [10.50.0.1, 10.51.0.1]\n'));
    const { lab, problems } = await loadLab(dir);
    deepStrictEqual(problems, []);
    deepStrictEqual(lab?.site.dhcp.relays, ['10.50.0.1', '10.51.0.1']);

    writeFileSync(join(dir, 'site.yaml'), site.replace('dhcp:\n', 'dhcp:\n  relays: [10.50.0.1, relay.example.net]\n'));
    const bad = await loadLab(dir);
    equal(bad.lab, null);
    ok(bad.problems.some((p) => p.ref.file === 'site.yaml' && p.ref.line === 9 && /relays/.test(formatProblem(p))), bad.problems.map(formatProblem).join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
