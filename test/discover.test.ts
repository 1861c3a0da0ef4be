// `forseti discover oa|redfish|ipmi`: an enclosure's blades or a BMC's systems become proposed host files that
// validate with the lab, written into the lab, to a directory, or committed on a new branch (never on main).
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { cp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { parseServerInfo, parseServerList } from '../src/bmc/oa/parse.ts';
import { UsageError } from '../src/cli/args.ts';
import { bmcCommand } from '../src/cli/commands/bmc.ts';
import { discoverCommand } from '../src/cli/commands/discover.ts';
import type { MachineFacts } from '../src/discover/facts.ts';
import { indexLab } from '../src/discover/lab-index.ts';
import { proposeHosts } from '../src/discover/propose-host.ts';
import type { Proposal } from '../src/discover/propose-host.ts';
import { loadLab } from '../src/model/load.ts';
import type { Lab } from '../src/model/types.ts';
import { forseti } from './fixtures/cli-run.ts';
import { startFakeBmc } from './fixtures/ipmi/support.ts';
import type { FakeBmc } from './fixtures/ipmi/support.ts';
import { ASGARD_BAYS, startFakeOa } from './fixtures/oa/oa-server.ts';
import type { FakeOa } from './fixtures/oa/oa-server.ts';
import { startRedfishBmc } from './fixtures/redfish/bmc.ts';
import type { RedfishBmc } from './fixtures/redfish/bmc.ts';
import { selfSignedCert } from './fixtures/redfish/certs.ts';
import { personality } from './fixtures/redfish/personalities/index.ts';
import { mockupResources, syntheticBmc } from './fixtures/redfish/resources.ts';

const TEMPLATE = fileURLToPath(new URL('../lab-repo-template/', import.meta.url));
const MOCKUP = fileURLToPath(new URL('../../shared/redfish-mockups/public-rackmount1', import.meta.url));

/** What a run printed; `json()` reads stdout of a run with --json. */
type Run = { json: () => RunJson } & Record<'stdout' | 'stderr', string> & { code: number };

interface RunJson {
  proposals: Array<{ kind: string; machine: string; name?: string; file?: string; why?: string; host?: HostDoc | string }>;
  written?: { paths: string[]; commit?: string };
  problems: string[];
  error?: string;
}

interface HostDoc {
  name: string;
  macs: string[];
  ip: string;
  bmc: Record<string, unknown>;
  enclosure?: { name: string; bay: number };
  hardware?: { model?: string; memoryGiB?: number; cpus?: number; cores?: number; disks?: Array<{ sizeGB: number; type?: string }> };
  role: string;
  labels?: Record<string, string>;
}

const work = mkdtempSync(join(tmpdir(), 'forseti-discover-'));
const secretsFile = join(work, 'secrets.yaml');
/** Servers to close when the file's tests are done, last started first. */
const stop: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const s of stop.reverse()) await s();
  await rm(work, { recursive: true, force: true });
});

async function discover(...argv: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await discoverCommand([...argv, '--secrets', secretsFile], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {} });
  return { code, stdout, stderr, json: () => JSON.parse(stdout) as RunJson };
}

/** The lab-repo-template without its own hosts: a lab the enclosure is imported into. */
async function freshLab(name: string): Promise<string> {
  const dir = join(work, name);
  await cp(TEMPLATE, dir, { recursive: true });
  for (const f of await readdir(join(dir, 'hosts'))) await rm(join(dir, 'hosts', f));
  return dir;
}

async function validLab(dir: string): Promise<Lab> {
  const { lab, problems } = await loadLab(dir);
  assert.ok(lab, problems.map((p) => `${p.ref.file}:${p.ref.line}: ${p.message}`).join('\n'));
  return lab;
}

function git(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => execFile('git', args, { cwd }, (err, stdout, stderr) => (err ? reject(new Error(`git ${args.join(' ')}: ${stderr}`)) : resolve(stdout))));
}

describe('OA parsers for discovery', () => {
  it('SHOW SERVER LIST: columns found by heading, [Absent] bays, the iLO address, power', () => {
    const list = parseServerList(
      [
        '',
        'Bay iLO Name                      iLO IP Address  Status   Power   UID Partner',
        '--- ----------------------------- --------------- -------- ------- --- -------',
        '  1 ILOCZ3401A001                 10.77.1.101     OK       On      Off',
        '  2 [Absent]',
        ' 13 ILOCZ3401A013                 [Unknown]       Degraded Off     On  ',
        'Totals: 2 server blades installed, 1 powered on.',
      ].join('\r\n'),
    );
    assert.deepEqual(list, [
      { bay: 1, present: true, columns: { 'iLO Name': 'ILOCZ3401A001', 'iLO IP Address': '10.77.1.101', Status: 'OK', Power: 'On', UID: 'Off' }, iloName: 'ILOCZ3401A001', iloAddress: '10.77.1.101', status: 'OK', power: 'on' },
      { bay: 2, present: false, columns: {} },
      { bay: 13, present: true, columns: { 'iLO Name': 'ILOCZ3401A013', Status: 'Degraded', Power: 'Off', UID: 'On' }, iloName: 'ILOCZ3401A013', status: 'Degraded', power: 'off' },
    ]);
  });

  it('SHOW SERVER NAMES has the same layout: the server name and serial by heading', () => {
    const list = parseServerList(
      'Bay Server Name                                       Serial Number   Status   Power   UID Partner\n' +
        '--- ------------------------------------------------- --------------- -------- ------- --- -------\n' +
        '  7 HP ProLiant BL460c Gen8                           CZ3401XY07      OK       On      Off\n',
    );
    assert.equal(list?.[0]?.serverName, 'HP ProLiant BL460c Gen8');
    assert.equal(list?.[0]?.serialNumber, 'CZ3401XY07');
    assert.equal(parseServerList('Invalid Arguments\n'), null);
  });

  it('SHOW SERVER INFO: a Fibre Channel WWPN is no MAC', () => {
    const info = parseServerInfo(
      '\tFlexFabric Embedded Ethernet\n\t\tEthernet FlexNIC (NIC 1) LOM1:1-a\t9C:8E:99:4A:10:01\n\tMezzanine Card 1: HP QMH2572 8Gb FC HBA\n\t\tPort 1: 50:01:43:80:12:34:56:78\n',
      1,
    );
    assert.deepEqual(info.nics, [{ name: 'Ethernet FlexNIC (NIC 1) LOM1:1-a', mac: '9c:8e:99:4a:10:01' }]);
  });
});

describe('forseti discover oa', () => {
  let oa: FakeOa;
  before(async () => {
    oa = await startFakeOa({ inventory: 'asgard' });
    stop.push(() => oa.close());
    for (const bay of [3, 6, 10]) oa.bay(bay).power = 'On';
    await writeFile(secretsFile, `asgard-oa: {username: ${oa.user}, password: ${oa.password}}\n`);
  });
  const oaArgs = (): string[] => ['oa', '127.0.0.1', '--port', String(oa.port), '--credential', 'asgard-oa'];

  it('16 bays become 16 host files that validate with the lab: MACs, bays, memory, iLO addresses as the OA reports them; a second run proposes nothing', async () => {
    const lab = await freshLab('oa-lab');
    const run = await discover(...oaArgs(), '--lab', lab, '--enclosure', 'asgard', '--json');
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const result = run.json();
    assert.equal(result.proposals.filter((p) => p.kind === 'proposed').length, 16);
    assert.equal(result.written?.paths.length, 16);
    const loaded = await validLab(lab);
    assert.equal(loaded.hosts.size, 16);
    const ips = new Set<string>();
    for (let bay = 1; bay <= 16; bay++) {
      const name = `asgard-${String(bay).padStart(2, '0')}`;
      const text = await readFile(join(lab, 'hosts', `${name}.yaml`), 'utf8');
      const doc = parse(text) as HostDoc;
      const blade = oa.bay(bay);
      const mac = (i: number): string => blade.macs[i]!.toLowerCase();
      // NIC 1 (LOM1:1-a, "PXE NIC 1" in the IPL order) first, then NIC 2, 3, 4: the OS's order.
      assert.deepEqual(doc.macs, [mac(0), mac(2), mac(1), mac(3)], name);
      assert.deepEqual(doc.enclosure, { name: 'asgard', bay });
      assert.equal(doc.hardware?.memoryGiB, ASGARD_BAYS[bay - 1]!.memoryGB, name);
      assert.equal(doc.hardware?.cpus, ASGARD_BAYS[bay - 1]!.cpus.length);
      assert.equal(doc.hardware?.model, 'HP ProLiant BL460c Gen8');
      assert.equal(doc.labels?.['management-address'], blade.iloAddress);
      assert.equal(doc.labels?.['serial'], blade.serial);
      assert.deepEqual(doc.bmc, { type: 'hp-oa', address: '127.0.0.1', port: oa.port, credential: 'asgard-oa', sshHostKey: oa.hostKeyFingerprint });
      assert.equal(doc.role, 'off');
      assert.match(text, /^# yaml-language-server: \$schema=\.\.\/\.\.\/schemas\/host\.schema\.json\n/);
      assert.match(text, /role off is a placeholder/);
      if (blade.power === 'On') assert.match(text, /power on when found\.\n# role off is a placeholder: merged as is, the agent powers this machine off/);
      ips.add(doc.ip);
    }
    assert.equal(ips.size, 16);
    assert.ok(!ips.has('10.77.0.1') && !ips.has('10.77.0.5'), 'neither the gateway nor the agent');

    const again = await discover(...oaArgs(), '--lab', lab, '--json');
    assert.equal(again.code, 0, again.stdout + again.stderr);
    const second = again.json();
    assert.deepEqual(new Set(second.proposals.map((p) => p.kind)), new Set(['declared']));
    assert.equal(second.proposals.length, 16);
    assert.equal(second.written, undefined);
    assert.equal((await readdir(join(lab, 'hosts'))).length, 16);
  });

  it('the template lab, whose hosts are these blades already: every bay skipped, the enclosure named from the lab', async () => {
    const lab = join(work, 'template');
    await cp(TEMPLATE, lab, { recursive: true });
    const run = await discover(...oaArgs(), '--lab', lab);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /16 machines found/);
    assert.equal((run.stdout.match(/^ {2}skipped /gm) ?? []).length, 16);
    assert.match(run.stdout, /skipped {2}OA 127\.0\.0\.1:\d+ \(enclosure asgard\) bay 1: its MAC 9c:8e:99:4a:10:01 is declared by host bld-001/);
  });

  it('empty bays, a name pattern, --out: one file per populated bay in the directory, the lab untouched', async () => {
    const sparse = await startFakeOa({ inventory: 'asgard', emptyBays: [2, 9, 16] });
    stop.push(() => sparse.close());
    await writeFile(secretsFile, `asgard-oa: {username: ${sparse.user}, password: ${sparse.password}}\n`);
    const lab = await freshLab('oa-out-lab');
    const out = join(work, 'proposed');
    const dry = await discover('oa', '127.0.0.1', '--port', String(sparse.port), '--credential', 'asgard-oa', '--lab', lab, '--enclosure', 'asgard', '--dry-run');
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.equal((dry.stdout.match(/^ {2}proposed hosts\/asgard-\d\d\.yaml/gm) ?? []).length, 13);
    assert.deepEqual(await readdir(join(lab, 'hosts')), [], 'a dry run writes nothing');
    const notRepo = await discover('oa', '127.0.0.1', '--port', String(sparse.port), '--credential', 'asgard-oa', '--lab', lab, '--enclosure', 'asgard', '--branch', 'x');
    assert.equal(notRepo.code, 1);
    assert.match(notRepo.stderr, /is not a Git repository/);
    const run = await discover('oa', '127.0.0.1', '--port', String(sparse.port), '--credential', 'asgard-oa', '--lab', lab, '--enclosure', 'asgard', '--name-pattern', 'bld-{bay:03}', '--first-ip', '10.77.0.101', '--out', out);
    await writeFile(secretsFile, `asgard-oa: {username: ${oa.user}, password: ${oa.password}}\n`);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const files = (await readdir(out)).sort();
    assert.equal(files.length, 13);
    assert.ok(!files.includes('bld-002.yaml') && !files.includes('bld-009.yaml') && !files.includes('bld-016.yaml'));
    assert.equal((parse(await readFile(join(out, 'bld-001.yaml'), 'utf8')) as HostDoc).ip, '10.77.0.101');
    assert.deepEqual(await readdir(join(lab, 'hosts')), []);
    // Copied into the lab, they validate.
    for (const f of files) await cp(join(out, f), join(lab, 'hosts', f));
    assert.equal((await validLab(lab)).hosts.size, 13);
    // A file of that name is never overwritten.
    const again = await discover('oa', '127.0.0.1', '--port', String(oa.port), '--credential', 'asgard-oa', '--lab', await freshLab('oa-out-lab-2'), '--enclosure', 'asgard', '--name-pattern', 'bld-{bay:03}', '--out', out);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /bld-001\.yaml exists: a host file is never overwritten; nothing was written/);
  });

  it('--branch: a new branch holds exactly the new files; main, HEAD, the index and the working tree are untouched', async () => {
    const repo = await freshLab('oa-repo');
    await writeFile(join(repo, 'hosts', 'README.md'), 'Machines of the lab.\n');
    await git(['init', '-q', '-b', 'main'], repo);
    await git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'add', '-A'], repo);
    await git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'lab'], repo);
    const main = (await git(['rev-parse', 'main'], repo)).trim();
    await writeFile(join(repo, 'notes.txt'), 'uncommitted\n');

    const run = await discover(...oaArgs(), '--lab', repo, '--enclosure', 'asgard', '--branch', 'forseti/discovered/asgard', '--json');
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const commit = run.json().written?.commit ?? '';
    assert.equal((await git(['rev-parse', 'main'], repo)).trim(), main);
    assert.equal((await git(['rev-parse', 'HEAD'], repo)).trim(), main);
    assert.equal((await git(['rev-parse', 'forseti/discovered/asgard'], repo)).trim(), commit);
    assert.equal((await git(['rev-parse', `${commit}^`], repo)).trim(), main);
    assert.equal(await git(['status', '--porcelain'], repo), '?? notes.txt\n');
    assert.deepEqual(await readdir(join(repo, 'hosts')), ['README.md']);
    const changed = (await git(['diff', '--name-status', 'main', commit], repo)).trim().split('\n');
    assert.deepEqual(changed, Array.from({ length: 16 }, (_, i) => `A\thosts/asgard-${String(i + 1).padStart(2, '0')}.yaml`));
    // The branch's tree validates.
    const checkout = join(work, 'oa-repo-branch');
    await git(['worktree', 'add', '-q', checkout, commit], repo);
    assert.equal((await validLab(checkout)).hosts.size, 16);

    for (const branch of ['main', 'forseti/discovered/asgard']) {
      const refused = await discover(...oaArgs(), '--lab', repo, '--enclosure', 'asgard', '--branch', branch);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, branch === 'main' ? /branch main: proposals never go on the main line/ : /exists already/);
    }
    assert.equal((await git(['rev-parse', 'main'], repo)).trim(), main);
  });

  it('--blade-bmc ilo: a blade whose iLO answers Redfish gets it (certificate pinned); an old or silent iLO leaves the blade with the OA, and the file says why', async () => {
    const cert = selfSignedCert('IP:127.0.0.1');
    const ilo = await startRedfishBmc({ resources: personality('ilo4').resources(), behaviour: personality('ilo4').behaviour, tls: { key: cert.key, cert: cert.cert } });
    stop.push(() => ilo.close());
    const enclosure = await startFakeOa({ inventory: 'asgard', emptyBays: [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] });
    stop.push(() => enclosure.close());
    enclosure.bay(1).iloAddress = '127.0.0.1';
    enclosure.bay(2).iloAddress = '127.0.0.2'; // nothing listens there
    enclosure.bay(16).iloAddress = '127.0.0.3'; // iLO 4 1.51: no Redfish before 2.30, never asked
    await writeFile(secretsFile, `asgard-oa: {username: ${enclosure.user}, password: ${enclosure.password}}\nasgard-ilo: {username: ${ilo.username}, password: ${ilo.password}}\n`);
    const lab = await freshLab('oa-ilo-lab');
    const run = await discover('oa', '127.0.0.1', '--port', String(enclosure.port), '--credential', 'asgard-oa', '--lab', lab, '--enclosure', 'asgard', '--blade-bmc', 'ilo', '--ilo-credential', 'asgard-ilo', '--ilo-port', String(ilo.port));
    await writeFile(secretsFile, `asgard-oa: {username: ${oa.user}, password: ${oa.password}}\n`);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const read = async (bay: number): Promise<{ doc: HostDoc; text: string }> => {
      const text = await readFile(join(lab, 'hosts', `asgard-${String(bay).padStart(2, '0')}.yaml`), 'utf8');
      return { doc: parse(text) as HostDoc, text };
    };
    const first = await read(1);
    assert.deepEqual(first.doc.bmc, { type: 'redfish', address: '127.0.0.1', port: ilo.port, credential: 'asgard-ilo', tls: { fingerprint: `sha256:${cert.fingerprint256}` } });
    const second = await read(2);
    assert.equal(second.doc.bmc['type'], 'hp-oa');
    assert.match(second.text, /# driven through the Onboard Administrator: its iLO 127\.0\.0\.2 does not answer Redfish over HTTPS/);
    const old = await read(16);
    assert.equal(old.doc.bmc['type'], 'hp-oa');
    assert.match(old.text, /# driven through the Onboard Administrator: its iLO4 firmware 1\.51 Jun 16 2014 has no Redfish \(iLO 4 from 2\.30\)/);
    await validLab(lab);
  });

  it('a refused credential: exit 1, said clearly, the password never printed, nothing written', async () => {
    const lab = await freshLab('oa-refused');
    await writeFile(secretsFile, 'asgard-oa: {username: Administrator, password: not-the-oa-pass-4}\n');
    const run = await discover(...oaArgs(), '--lab', lab, '--enclosure', 'asgard');
    await writeFile(secretsFile, `asgard-oa: {username: ${oa.user}, password: ${oa.password}}\n`);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /OA 127\.0\.0\.1:\d+ refused the credential "asgard-oa": wrong user name or password/);
    assert.ok(!(run.stdout + run.stderr).includes('not-the-oa-pass-4'));
    assert.deepEqual(await readdir(join(lab, 'hosts')), []);
  });

  it('usage: the kind, the credential, --out with --branch, a pattern placeholder, the enclosure name', async () => {
    await assert.rejects(discover('nas', '10.0.0.1', '--credential', 'x'), UsageError);
    await assert.rejects(discover('oa', '10.0.0.1'), /--credential NAME is required/);
    await assert.rejects(discover('oa', '10.0.0.1', '--credential', 'x', '--out', 'a', '--branch', 'b'), /exclude each other/);
    await assert.rejects(discover('oa', '10.0.0.1', '--credential', 'x', '--name-pattern', 'n-{system}'), /unknown placeholder \{system\}/);
    await assert.rejects(discover('redfish', '10.0.0.1', '--credential', 'x', '--mac', '02:00:00:00:00:01'), /--mac applies to discover ipmi only/);
    await assert.rejects(discover(...oaArgs(), '--lab', await freshLab('oa-unnamed')), /name the enclosure with --enclosure NAME \(the lab declares no host in this enclosure\)/);
  });
});

describe('forseti discover redfish', () => {
  const cert = selfSignedCert('IP:127.0.0.1');
  let labs = 0;

  async function serve(resources: Map<string, Record<string, unknown>>, behaviour = {}): Promise<RedfishBmc> {
    const bmc = await startRedfishBmc({ resources, behaviour, tls: { key: cert.key, cert: cert.cert } });
    stop.push(() => bmc.close());
    await writeFile(secretsFile, `lab-bmc: {username: ${bmc.username}, password: ${bmc.password}}\n`);
    return bmc;
  }

  /** Into a lab of its own: the personalities share the synthetic server's MACs and serial. */
  async function importInto(bmc: RedfishBmc, ...extra: string[]): Promise<{ run: Run; hosts: HostDoc[]; lab: string }> {
    const lab = await freshLab(`redfish-lab-${++labs}`);
    const run = await discover('redfish', '127.0.0.1', '--port', String(bmc.port), '--credential', 'lab-bmc', '--lab', lab, '--json', ...extra);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const hosts = run.json().proposals.flatMap((p) => (p.kind === 'proposed' ? [p.host as HostDoc] : []));
    await validLab(lab);
    return { run, hosts, lab };
  }

  it('the real CLI reads the lab through the tree reader: a host file linked to /dev/zero is a problem of the lab, a FIFO is named; neither hangs it', async () => {
    const bmc = await serve(personality('ilo4').resources(), personality('ilo4').behaviour);
    const lab = await freshLab(`redfish-lab-${++labs}`);
    await symlink('/dev/zero', join(lab, 'hosts/a-zero.yaml'));
    // a FIFO outside the lab, through a link: read with readFile, it blocked the command for good
    const outsideFifo = join(work, `fifo-${labs}`);
    execFileSync('mkfifo', [outsideFifo]);
    await symlink(outsideFifo, join(lab, 'hosts/a-fifo.yaml'));
    const args = ['discover', 'redfish', '127.0.0.1', '--port', String(bmc.port), '--credential', 'lab-bmc', '--lab', lab, '--secrets', secretsFile, '--json'];
    const zero = await forseti(args, { timeoutMs: 60_000 });
    assert.equal(zero.code, 1, zero.stdout + zero.stderr);
    const report = JSON.parse(zero.stdout) as RunJson;
    const outsideLab = 'the path leads outside the lab repository (through a symbolic link, or into .git); forseti reads only files inside it';
    assert.deepEqual(report.problems, [`hosts/a-fifo.yaml:1:1: ${outsideLab}`, `hosts/a-zero.yaml:1:1: ${outsideLab}`]);
    await rm(join(lab, 'hosts/a-zero.yaml'));
    await rm(join(lab, 'hosts/a-fifo.yaml'));
    execFileSync('mkfifo', [join(lab, 'hosts/b-fifo.yaml')]);
    const fifo = await forseti(args, { timeoutMs: 60_000 });
    assert.equal(fifo.code, 1, fifo.stdout + fifo.stderr);
    assert.match((JSON.parse(fifo.stdout) as RunJson).error ?? '', /hosts\/b-fifo\.yaml is a FIFO; forseti reads regular files only/);
    assert.equal(existsSync(join(lab, 'hosts/cz3412asgd.yaml')), false, 'nothing written');
  });

  it('HPE iLO 4: the MACs from HostCorrelation, model, serial, memory, the certificate pinned', async () => {
    const bmc = await serve(personality('ilo4').resources(), personality('ilo4').behaviour);
    const { hosts, lab } = await importInto(bmc);
    assert.equal(hosts.length, 1);
    const host = hosts[0]!;
    assert.equal(host.name, 'cz3412asgd');
    assert.deepEqual(host.macs, ['9c:8e:99:4a:10:03', '9c:8e:99:4a:10:04']);
    assert.deepEqual(host.hardware, { model: 'HP ProLiant BL460c Gen8', cpus: 2, memoryGiB: 128 });
    assert.deepEqual(host.bmc, { type: 'redfish', address: '127.0.0.1', port: bmc.port, credential: 'lab-bmc', tls: { fingerprint: `sha256:${cert.fingerprint256}` } });
    const text = await readFile(join(lab, 'hosts', 'cz3412asgd.yaml'), 'utf8');
    assert.match(text, /MACs from HostCorrelation \(iLO 4\)/);
  });

  for (const id of ['idrac9', 'bmcweb']) {
    it(`${personality(id).title}: MACs from EthernetInterfaces, drives from Storage`, async () => {
      const bmc = await serve(personality(id).resources(), personality(id).behaviour);
      const { hosts } = await importInto(bmc, '--name-pattern', `${id}-{serial}`);
      assert.equal(hosts.length, 1);
      const host = hosts[0]!;
      assert.ok(host.name.startsWith(`${id}-`));
      assert.ok(host.macs.length >= 1);
      assert.equal(host.hardware?.disks?.length, 2);
      assert.ok(host.bmc['tls']);
    });
  }

  it('the DMTF public-rackmount1 mockup: its system, NICs, drives and UEFI boot mode', { skip: existsSync(join(MOCKUP, 'index.json')) ? false : `no mockup at ${MOCKUP}` }, async () => {
    const bmc = await serve(mockupResources(MOCKUP));
    const { hosts, lab } = await importInto(bmc);
    const host = hosts[0]!;
    assert.equal(host.name, '437xr1138r2');
    assert.deepEqual(host.macs, ['12:44:6a:3b:04:11', 'aa:bb:cc:dd:ee:00', 'aa:bb:cc:dd:ee:fe']);
    assert.equal(host.hardware?.model, 'Contoso 3500');
    assert.equal(host.hardware?.memoryGiB, 96);
    assert.deepEqual(host.hardware?.disks?.map((d) => d.sizeGB), [8000, 4000]);
    assert.equal((host.hardware as { firmware?: string }).firmware, 'uefi');
    const again = await discover('redfish', '127.0.0.1', '--port', String(bmc.port), '--credential', 'lab-bmc', '--lab', lab, '--json');
    assert.equal(again.code, 0);
    assert.equal(again.json().proposals[0]?.kind, 'declared');
  });

  it('a service with several systems: a host each with bmc.system, forseti bmc drives each its own; an Id no host file can name is skipped', async () => {
    const bmc = await serve(syntheticBmc({ systems: ['Blade1', 'Blade2', 'x\ny'] }));
    const { hosts, lab, run } = await importInto(bmc, '--name-pattern', 'cm-{system}');
    assert.deepEqual(hosts.map((h) => [h.name, h.bmc['system']]), [['cm-blade1', 'Blade1'], ['cm-blade2', 'Blade2']]);
    assert.match(run.stdout, /has an Id a host file cannot name \(bmc\.system\): skipped/);
    let stdout = '';
    const code = await bmcCommand(['cm-blade2', 'status', '--lab', lab, '--secrets', secretsFile, '--json'], { stdout: (t) => (stdout += t), stderr: () => undefined, env: {} });
    assert.equal(code, 0);
    assert.ok(bmc.requests.some((r) => r.method === 'GET' && r.path === '/redfish/v1/Systems/Blade2'));
    assert.equal((JSON.parse(stdout) as { host: string }).host, 'cm-blade2');
  });

  it('a refused credential: exit 1 and the login failure said', async () => {
    const bmc = await serve(personality('idrac9').resources(), personality('idrac9').behaviour);
    await writeFile(secretsFile, 'lab-bmc: {username: admin, password: wrong-redfish-pass-2}\n');
    const run = await discover('redfish', '127.0.0.1', '--port', String(bmc.port), '--credential', 'lab-bmc', '--lab', await freshLab('redfish-refused'));
    assert.equal(run.code, 1);
    assert.match(run.stderr, /Redfish 127\.0\.0\.1:\d+ refused the credential "lab-bmc": refused or failed/);
    assert.ok(!(run.stdout + run.stderr).includes('wrong-redfish-pass-2'));
  });
});

describe('forseti discover ipmi', () => {
  let ipmi: FakeBmc;
  before(async () => {
    ipmi = await startFakeBmc('discover-ipmi', { manufacturerId: 2 });
    stop.push(() => ipmi.stop());
  });

  it('without --mac: the identity read, the machine refused because IPMI reports no NIC MACs, nothing written', async () => {
    await writeFile(secretsFile, `imm: {username: ${ipmi.sim.user}, password: ${ipmi.sim.password}}\n`);
    const lab = await freshLab('ipmi-lab');
    const run = await discover('ipmi', '127.0.0.1', '--port', String(ipmi.sim.port), '--credential', 'imm', '--lab', lab);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /refused {2}IPMI 127\.0\.0\.1:\d+: IPMI does not report the MACs of the host's NICs \(`ipmitool lan print` shows only the BMC's own\): give the boot NIC's MAC with --mac/);
    assert.deepEqual(await readdir(join(lab, 'hosts')), []);
  });

  it('with --mac: a host file with the BMC block (the cipher suite it took) that validates', async () => {
    await writeFile(secretsFile, `imm: {username: ${ipmi.sim.user}, password: ${ipmi.sim.password}}\n`);
    const lab = await freshLab('ipmi-lab-2');
    const run = await discover('ipmi', '127.0.0.1', '--port', String(ipmi.sim.port), '--credential', 'imm', '--lab', lab, '--mac', 'E4:1F:13:6C:2A:10', '--name-pattern', 'oden', '--json');
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const doc = parse(await readFile(join(lab, 'hosts', 'oden.yaml'), 'utf8')) as HostDoc;
    assert.deepEqual(doc.macs, ['e4:1f:13:6c:2a:10']);
    assert.deepEqual(doc.bmc, { type: 'ipmi', address: '127.0.0.1', port: ipmi.sim.port, credential: 'imm', cipherSuite: 3 });
    await validLab(lab);
  });

  it('a refused password: exit 1', async () => {
    await writeFile(secretsFile, 'imm: {username: admin, password: not-the-imm-pass-5}\n');
    const run = await discover('ipmi', '127.0.0.1', '--port', String(ipmi.sim.port), '--credential', 'imm', '--lab', await freshLab('ipmi-lab-3'), '--mac', 'e4:1f:13:6c:2a:10');
    assert.equal(run.code, 1);
    assert.match(run.stderr, /IPMI 127\.0\.0\.1:\d+ refused the credential "imm"/);
    assert.ok(!(run.stdout + run.stderr).includes('not-the-imm-pass-5'));
  });
});

describe('proposeHosts (pure)', () => {
  let lab: Lab;
  before(async () => {
    lab = await validLab(TEMPLATE);
  });
  const facts = (over: Partial<MachineFacts> = {}): MachineFacts => ({
    source: 'test bay 1',
    fields: { bay: 1, enclosure: 'rack' },
    nics: [{ mac: '02:00:00:00:aa:01' }],
    bmc: { type: 'manual' },
    notes: [],
    ...over,
  });
  const propose = (machines: MachineFacts[], pattern = 'n-{bay:02}', l: Lab = lab): Proposal[] => proposeHosts(machines, indexLab(l, [...l.hosts.keys()].map((h) => `${h}.yaml`)), { namePattern: pattern, command: 'test' });

  it('skips a machine the lab declares: by MAC, serial label, enclosure bay, or its management controller', () => {
    const [byMac, bayTaken, byIlo] = propose([
      facts({ nics: [{ mac: '02:00:00:00:aa:09' }, { mac: '9C:8E:99:4A:11:07' }] }),
      facts({ enclosure: { name: 'asgard', bay: 4 } }),
      facts({ managementAddress: '10.77.1.111' }),
    ]);
    assert.deepEqual(byMac, { kind: 'declared', machine: 'test bay 1', host: 'bld-007', why: 'its MAC 9c:8e:99:4a:11:07 is declared by host bld-007' });
    assert.equal(bayTaken?.kind === 'declared' && bayTaken.host, 'bld-004');
    assert.equal(byIlo?.kind === 'declared' && byIlo.host, 'bld-011');
  });

  it('refuses: no MAC, a name taken, a pattern without a value; a duplicate MAC in one run is skipped', () => {
    const out = propose([facts({ nics: [{ mac: 'ff:ff:ff:ff:ff:ff' }, { mac: 'zz' }] }), facts({ fields: { bay: 7 } }), facts({ fields: { bay: 17 } }), facts({ fields: {}, nics: [{ mac: '02:00:00:00:aa:02' }] })], 'bld-{bay:03}');
    assert.match(out[0]!.kind === 'refused' ? out[0]!.why : '', /no MAC address/);
    assert.match(out[1]!.kind === 'refused' ? out[1]!.why : '', /the name bld-007 is taken/);
    assert.equal(out[2]!.kind, 'proposed');
    assert.match(out[3]!.kind === 'refused' ? out[3]!.why : '', /uses \{bay\}, which was not reported/);
    const dup = propose([facts(), facts({ fields: { bay: 2 } })]);
    assert.equal(dup[1]!.kind === 'declared' && dup[1]!.host, 'n-01');
  });

  it('what a BMC says cannot add a key or a line: its strings stay one quoted scalar each', async () => {
    const [p] = propose([facts({ model: 'X\nrole: talos-worker\npower: on', serial: 'S1"\n#', nics: [{ mac: '02:00:00:00:aa:03', label: 'eth0\nip: 1.2.3.4' }] })]);
    assert.equal(p?.kind, 'proposed');
    if (p?.kind !== 'proposed') return;
    const doc = parse(p.yaml) as HostDoc;
    assert.equal(doc.role, 'off');
    assert.equal(doc.hardware?.model, 'X role: talos-worker power: on');
    assert.equal(doc.labels?.['serial'], 'S1" #');
    assert.equal(doc.ip, p.document.ip);
    const dir = await freshLab('pure-lab');
    await writeFile(join(dir, p.file), p.yaml);
    await validLab(dir);
  });

  it('junk serials are no serials; the network-booting NIC goes first; addresses skip the pool, agent, gateway and BMCs', () => {
    const [p] = propose([facts({ serial: 'To Be Filled By O.E.M.', nics: [{ mac: '02:00:00:00:aa:04' }, { mac: '02:00:00:00:aa:05', pxe: true }], bmc: { type: 'ipmi', address: '10.77.0.2', credential: 'x' } })]);
    assert.equal(p?.kind, 'proposed');
    if (p?.kind !== 'proposed') return;
    assert.equal(p.document.labels, undefined);
    assert.deepEqual(p.document.macs, ['02:00:00:00:aa:05', '02:00:00:00:aa:04']);
    assert.equal(p.document.ip, '10.77.0.3', '10.77.0.1 is the gateway, .2 the BMC');
  });

  it('a lab without a role that keeps machines off: refused, and why', () => {
    const noOff: Lab = { ...lab, profiles: new Map([...lab.profiles].filter(([, p]) => p.boot.kind !== 'off')) };
    const [p] = propose([facts()], 'n-{bay}', noOff);
    assert.match(p?.kind === 'refused' ? p.why : '', /no profile that keeps a machine off/);
  });

  it('bmc.system is for Redfish BMCs only', async () => {
    const dir = await freshLab('system-lab');
    await writeFile(join(dir, 'hosts', 'n1.yaml'), 'apiVersion: forseti/v1\nkind: Host\nname: n1\nmacs: [02:00:00:00:bb:01]\nip: 10.77.0.30\nbmc: {type: ipmi, address: 10.77.1.30, credential: x, system: "1"}\nrole: off\n');
    const { problems } = await loadLab(dir);
    assert.deepEqual(problems.map((p) => `${p.ref.file}:${p.ref.line}: ${p.message}`), ['hosts/n1.yaml:6: bmc.system: applies to Redfish BMCs only']);
  });
});
