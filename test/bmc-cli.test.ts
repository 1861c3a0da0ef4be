// `forseti bmc HOST OPERATION` against real peers on 127.0.0.1: OpenIPMI's ipmi_sim (IPMI) and the stand-in
// Onboard Administrator (SSH), with credentials from a secrets file and from the lab's SOPS file.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { UsageError } from '../src/cli/args.ts';
import { bmcCommand } from '../src/cli/commands/bmc.ts';
import { startFakeBmc } from './fixtures/ipmi/support.ts';
import type { FakeBmc } from './fixtures/ipmi/support.ts';
import { startFakeOa } from './fixtures/oa/oa-server.ts';
import type { FakeOa } from './fixtures/oa/oa-server.ts';
import { startRedfishBmc } from './fixtures/redfish/bmc.ts';
import type { RedfishBmc } from './fixtures/redfish/bmc.ts';
import { selfSignedCert } from './fixtures/redfish/certs.ts';
import { personality } from './fixtures/redfish/personalities/index.ts';
import { encryptSopsYaml } from './fixtures/sops-encrypt.ts';

const MINIMAL_LAB = fileURLToPath(new URL('./fixtures/labs/minimal/', import.meta.url));
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('forseti bmc', () => {
  let dir: string;
  let lab: string;
  let secretsFile: string;
  let env: NodeJS.ProcessEnv;
  let ipmi: FakeBmc;
  let oa: FakeOa;
  let redfish: RedfishBmc;

  const bmc = async (...argv: string[]): Promise<Run> => {
    let stdout = '';
    let stderr = '';
    const code = await bmcCommand([...argv, '--lab', lab, '--secrets', secretsFile], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env });
    return { code, stdout, stderr };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fbmc-cli-'));
    lab = join(dir, 'lab');
    await cp(MINIMAL_LAB, lab, { recursive: true });
    [ipmi, oa] = await Promise.all([startFakeBmc('cli-ipmi'), startFakeOa()]);
    // A Redfish BMC that keeps no Once, over HTTPS with a self-signed certificate the lab pins (or pins wrongly).
    const cert = selfSignedCert('IP:127.0.0.1');
    const once = personality('once-not-kept');
    redfish = await startRedfishBmc({ resources: once.resources(), behaviour: once.behaviour, tls: { key: cert.key, cert: cert.cert } });
    const redfishHost = (name: string, n: number, bmc: string): string =>
      `apiVersion: forseti/v1\nkind: Host\nname: ${name}\nmacs: [aa:bb:cc:00:00:3${n}]\nip: 10.9.0.3${n}\nbmc: ${bmc}\nhardware: {firmware: bios}\nrole: off\npower: off\n`;
    const pin = (fp: string): string => `{fingerprint: 'sha256:${fp}'}`;
    await writeFile(join(lab, 'hosts', 'rf-1.yaml'), redfishHost('rf-1', 1, `{type: redfish, address: 127.0.0.1, port: ${redfish.port}, credential: lab-redfish, tls: ${pin(cert.fingerprint256)}}`));
    await writeFile(join(lab, 'hosts', 'rf-pin.yaml'), redfishHost('rf-pin', 2, `{type: redfish, address: 127.0.0.1, port: ${redfish.port}, credential: lab-redfish, tls: ${pin(selfSignedCert('IP:127.0.0.1').fingerprint256)}}`));
    await writeFile(join(lab, 'hosts', 'rf-gone.yaml'), redfishHost('rf-gone', 3, `{type: redfish, address: 127.0.0.1, port: 9, credential: lab-redfish, tls: ${pin(cert.fingerprint256)}}`));
    await writeFile(join(lab, 'hosts', 'rf-nocred.yaml'), redfishHost('rf-nocred', 4, `{type: redfish, address: 127.0.0.1, port: ${redfish.port}, credential: nobody-has-it, tls: ${pin(cert.fingerprint256)}}`));
    await writeFile(
      join(lab, 'hosts', 'ipmi-1.yaml'),
      `apiVersion: forseti/v1\nkind: Host\nname: ipmi-1\nmacs: [aa:bb:cc:00:00:21]\nip: 10.9.0.21\nbmc: {type: ipmi, address: 127.0.0.1, port: ${ipmi.sim.port}, credential: lab-ipmi}\nrole: off\npower: off\n`,
    );
    await writeFile(
      join(lab, 'hosts', 'bld-003.yaml'),
      `apiVersion: forseti/v1\nkind: Host\nname: bld-003\nmacs: [9c:8e:99:4a:10:03]\nip: 10.9.0.23\nbmc: {type: hp-oa, address: 127.0.0.1, port: ${oa.port}, credential: asgard-oa}\nenclosure: {name: asgard, bay: 3}\nrole: off\npower: off\n`,
    );
    // The IPMI password from the agent's secrets file; the OA's from the lab's SOPS file.
    secretsFile = join(dir, 'secrets.yaml');
    await writeFile(secretsFile, `lab-ipmi: {username: ${ipmi.sim.user}, password: ${ipmi.sim.password}}\nlab-redfish: {username: ${redfish.username}, password: ${redfish.password}}\n`, { mode: 0o600 });
    const identity = await generateIdentity();
    await writeFile(join(dir, 'age.key'), `${identity}\n`, { mode: 0o600 });
    await writeFile(join(lab, 'secrets.sops.yaml'), await encryptSopsYaml({ 'asgard-oa': { username: oa.user, password: oa.password } }, [await identityToRecipient(identity)]));
    env = { FORSETI_AGE_KEY_FILE: join(dir, 'age.key') };
  });
  after(async () => {
    await Promise.all([ipmi?.stop(), oa?.close(), redfish?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('IPMI: on, status --json, pxe, off against ipmi_sim', async () => {
    const on = await bmc('ipmi-1', 'on');
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stdout, /^ipmi-1 \(ipmi 127\.0\.0\.1:\d+\): on done, power on$/m);
    const status = await bmc('ipmi-1', 'status', '--json');
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).power, 'on');
    const pxe = await bmc('ipmi-1', 'pxe');
    assert.equal(pxe.code, 0, pxe.stderr);
    assert.match(pxe.stdout, /boot override pxe/);
    assert.equal(await ipmi.chassis('boot'), 'pxe');
    const off = await bmc('ipmi-1', 'off');
    assert.equal(off.code, 0, off.stderr);
    assert.equal(await ipmi.chassis('power'), '0');
  });

  it('HP OA: status, pxe, cycle and inventory --json, with the password from the lab\'s SOPS file', async () => {
    const status = await bmc('bld-003', 'status');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^bld-003 \(hp-oa 127\.0\.0\.1:\d+ bay 3\): power off, boot override none$/m);
    assert.equal((await bmc('bld-003', 'pxe')).code, 0);
    const cycle = await bmc('bld-003', 'cycle');
    assert.equal(cycle.code, 0, cycle.stderr);
    assert.deepEqual(oa.bay(3).boots, ['PXE NIC']);
    const inventory = await bmc('bld-003', 'inventory', '--json');
    assert.equal(inventory.code, 0, inventory.stderr);
    const report = JSON.parse(inventory.stdout);
    assert.equal(report.inventory.model, 'ProLiant BL460c Gen8');
    assert.equal(report.inventory.macs[0], '9c:8e:99:4a:10:03');
    assert.equal(report.inventory.managementAddress, '10.77.1.103');
  });

  it('a BMC error exits 1 naming host and BMC, without the password', async () => {
    const wrong = join(dir, 'wrong.yaml');
    await writeFile(wrong, `asgard-oa: {username: ${oa.user}, password: wrong-oa-password}\n`);
    let stderr = '';
    const code = await bmcCommand(['bld-003', 'status', '--lab', lab, '--secrets', wrong], { stdout: () => undefined, stderr: (t) => (stderr += t), env });
    assert.equal(code, 1);
    assert.match(stderr, /host bld-003 \(BMC 127\.0\.0\.1:\d+ bay 3\)/);
    assert.ok(!stderr.includes('wrong-oa-password') && !stderr.includes(oa.password));
  });

  it('every BMC failure exits 1, each saying what failed: TLS pin, unreachable, missing credential, secrets file, read-back', async () => {
    const ok = await bmc('rf-1', 'status');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^rf-1 \(redfish 127\.0\.0\.1:\d+\): power on, boot override none$/m);
    const pin = await bmc('rf-pin', 'status');
    assert.equal(pin.code, 1, 'a refused TLS pin is a BMC error, not a usage error');
    assert.match(pin.stderr, /host rf-pin \(BMC 127\.0\.0\.1:\d+\): powerState: GET \/redfish\/v1: TLS: .*is not the pinned/);
    const gone = await bmc('rf-gone', 'status');
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /host rf-gone .*unreachable after 2 attempt\(s\).*ECONNREFUSED/);
    const nocred = await bmc('rf-nocred', 'status');
    assert.equal(nocred.code, 1);
    assert.match(nocred.stderr, /nobody-has-it/);
    let stderr = '';
    const missing = await bmcCommand(['rf-1', 'status', '--lab', lab, '--secrets', join(dir, 'no-such-secrets.yaml')], { stdout: () => undefined, stderr: (t) => (stderr += t), env });
    assert.equal(missing, 1);
    assert.match(stderr, /cannot read the credentials \(.*no-such-secrets\.yaml.*ENOENT/);
    // The BMC keeps no Once: it says what the BMC holds now.
    const pxe = await bmc('rf-1', 'pxe');
    assert.equal(pxe.code, 1);
    assert.match(pxe.stderr, /this BMC keeps no one-time boot override; it holds Pxe\/Continuous\/Legacy for every boot now/);
    assert.equal((await bmc('rf-1', 'status')).stdout.includes('boot override pxe (persistent, bios)'), true);
    for (const r of [pin, gone, nocred, pxe]) assert.ok(!r.stderr.includes(redfish.password));
  });

  it('WoL cannot power off: exit 1, saying so', async () => {
    const off = await bmc('node-1', 'off');
    assert.equal(off.code, 1);
    assert.match(off.stderr, /node-1.*cannot power a machine off/);
  });

  it('usage errors: unknown operation, unknown host', async () => {
    await assert.rejects(bmc('bld-003', 'explode'), UsageError);
    await assert.rejects(bmc('nope', 'status'), (err: Error) => err instanceof UsageError && /no host named nope/.test(err.message));
  });

  it('through the forseti command: exit 2 on usage, 1 on a refused TLS pin, 0 on success', async () => {
    // Not spawnSync: the stand-in OA lives in this process and must keep answering.
    const forseti = (...argv: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--import', 'tsx', MAIN, 'bmc', ...argv], { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
        });
      });
    const [usage, ok, pinned] = await Promise.all([forseti('bld-003'), forseti('bld-003', 'status', '--json', '--lab', lab), forseti('rf-pin', 'status', '--lab', lab, '--secrets', secretsFile)]);
    assert.equal(usage.code, 2);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).bmc.bay, 3);
    assert.equal(pinned.code, 1, `a refused TLS pin exits 1: ${pinned.stderr}`);
    assert.match(pinned.stderr, /is not the pinned/);
  });
});
