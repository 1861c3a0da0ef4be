// `forseti bmc probe`: against every Redfish personality of the fixture BMC over HTTPS, OpenIPMI's ipmi_sim and the
// stand-in Onboard Administrator: what answers, its login, its quirks, and a `bmc:` block that validates as part of a
// host file.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import type { ProbeReport } from '../src/bmc/probe.ts';
import { UsageError } from '../src/cli/args.ts';
import { bmcCommand } from '../src/cli/commands/bmc.ts';
import { validatorFor } from '../src/model/schemas.ts';
import { startFakeBmc } from './fixtures/ipmi/support.ts';
import type { FakeBmc } from './fixtures/ipmi/support.ts';
import { startFakeOa } from './fixtures/oa/oa-server.ts';
import type { FakeOa } from './fixtures/oa/oa-server.ts';
import { startRedfishBmc } from './fixtures/redfish/bmc.ts';
import type { RedfishBmc } from './fixtures/redfish/bmc.ts';
import { selfSignedCert } from './fixtures/redfish/certs.ts';
import { PERSONALITIES } from './fixtures/redfish/personalities/index.ts';

let dir = '';
let secretsFile = '';
const cert = selfSignedCert('IP:127.0.0.1');
const stop: Array<() => Promise<unknown>> = [];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fbmc-probe-'));
  secretsFile = join(dir, 'secrets.yaml');
});
after(async () => {
  for (const s of stop.reverse()) await s();
  await rm(dir, { recursive: true, force: true });
});

async function probe(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await bmcCommand(['probe', ...argv], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {} });
  return { code, stdout, stderr };
}

/** The block inside a host file, validated as schemas/host.schema.json takes it. */
function assertValidBlock(report: ProbeReport, extra: Record<string, unknown> = {}): void {
  const host = { apiVersion: 'forseti/v1', kind: 'Host', name: 'probed', macs: ['02:00:00:00:09:01'], ip: '10.9.0.91', bmc: report.bmc, role: 'off', ...extra };
  const validate = validatorFor('Host');
  assert.ok(validate(host), JSON.stringify(validate.errors));
}

/** Per personality: the login the probe reports and quirks it must name. */
const EXPECT: Record<string, { auth: RegExp; quirks: RegExp[]; checkBoot?: boolean }> = {
  ilo4: { auth: /^session login/, quirks: [/no PowerCycle: a power cycle is ForceRestart/, /no GracefulShutdown: a soft off presses the power button/, /BootSourceOverrideSupported \(iLO 4\)/, /no BootSourceOverrideMode/, /HPE PostState \(now FinishedPost\)/] },
  ilo5: { auth: /^session login/, quirks: [/no PowerCycle/, /HPE PostState/] },
  idrac9: { auth: /^session login/, quirks: [] },
  supermicro: { auth: /^session login/, quirks: [/no PowerCycle/] },
  xcc: { auth: /^session login/, quirks: [/no PowerCycle/] },
  bmcweb: { auth: /^session login/, quirks: [/reset types behind @Redfish\.ActionInfo/] },
  'no-sessions': { auth: /^HTTP Basic \(tried first: no session service in the service root\)/, quirks: [/names no session service: forseti logs in with HTTP Basic/] },
  'once-not-kept': { auth: /^session login/, quirks: [/keeps no one-time boot override \(Once read back as Continuous\)/], checkBoot: true },
};

describe('forseti bmc probe: Redfish personalities over HTTPS', () => {
  for (const p of PERSONALITIES) {
    it(`${p.title}: answers, logs in, names its quirks, gives a valid bmc block pinning its certificate`, async () => {
      const bmc: RedfishBmc = await startRedfishBmc({ resources: p.resources(), behaviour: p.behaviour, tls: { key: cert.key, cert: cert.cert } });
      stop.push(() => bmc.close());
      await writeFile(secretsFile, `lab-bmc: {username: ${bmc.username}, password: ${bmc.password}}\n`);
      const expect = EXPECT[p.id]!;
      const run = await probe('127.0.0.1', '--port', String(bmc.port), '--credential', 'lab-bmc', '--secrets', secretsFile, '--json', ...(expect.checkBoot ? ['--check-boot'] : []));
      assert.equal(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout) as ProbeReport;
      assert.equal(report.type, 'redfish');
      assert.match(report.auth ?? '', expect.auth);
      for (const q of expect.quirks) assert.ok(report.quirks.some((x) => q.test(x)), `${q} in ${JSON.stringify(report.quirks)}`);
      assert.deepEqual(report.bmc, { type: 'redfish', address: '127.0.0.1', port: bmc.port, credential: 'lab-bmc', tls: { fingerprint: `sha256:${cert.fingerprint256}` } });
      assertValidBlock(report);
      assert.ok(!run.stdout.includes(bmc.password));
      if (expect.checkBoot) {
        assert.equal((bmc.resource('/redfish/v1/Systems/1')['Boot'] as Record<string, string>)['BootSourceOverrideEnabled'], 'Disabled', 'the boot check set the override back');
      }
    });
  }

  it('without a credential: what answers, and a block to fill in; the human output carries the YAML', async () => {
    const bmc = await startRedfishBmc({ resources: PERSONALITIES[0]!.resources(), behaviour: PERSONALITIES[0]!.behaviour, tls: { key: cert.key, cert: cert.cert } });
    stop.push(() => bmc.close());
    const run = await probe('127.0.0.1', '--port', String(bmc.port));
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /answers: redfish over HTTPS, certificate sha256 /);
    const yaml = run.stdout.slice(run.stdout.indexOf('bmc:'));
    const block = parse(yaml) as { bmc: ProbeReport['bmc'] };
    assert.equal(block.bmc?.credential, 'CHANGE-ME');
    assertValidBlock({ bmc: block.bmc } as ProbeReport);
    assert.equal(bmc.requests.filter((r) => r.auth !== 'none').length, 0, 'nothing but the service root was read');
  });
});

describe('forseti bmc probe: IPMI and the Onboard Administrator', () => {
  let ipmi: FakeBmc;
  let oa: FakeOa;
  before(async () => {
    [ipmi, oa] = await Promise.all([startFakeBmc('probe-ipmi'), startFakeOa({ emptyBays: [5, 9] })]);
    stop.push(() => ipmi.stop(), () => oa.close());
    await writeFile(join(dir, 'other.yaml'), `lab-ipmi: {username: ${ipmi.sim.user}, password: ${ipmi.sim.password}}\nlab-oa: {username: ${oa.user}, password: ${oa.password}}\n`);
  });

  it('ipmi_sim, found by --type auto on its port: RMCP+, cipher suite 3 after 17 was refused, its identity', async () => {
    const run = await probe('127.0.0.1', '--port', String(ipmi.sim.port), '--credential', 'lab-ipmi', '--secrets', join(dir, 'other.yaml'), '--json');
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as ProbeReport;
    assert.equal(report.type, 'ipmi');
    assert.match(report.tried.join('\n'), /Redfish over HTTPS at 127\.0\.0\.1:\d+: .*ECONNREFUSED[\s\S]*Onboard Administrator over SSH at 127\.0\.0\.1:\d+: .*ECONNREFUSED[\s\S]*IPMI over RMCP at 127\.0\.0\.1:\d+: IPMI v2\.0/);
    assert.equal(report.auth, 'RMCP+ session, cipher suite 3 (17 refused)');
    assert.match(report.identity[0] ?? '', /MontaVista/);
    assert.ok(report.quirks.includes('no DCMI power reading'));
    assert.deepEqual(report.bmc, { type: 'ipmi', address: '127.0.0.1', port: ipmi.sim.port, credential: 'lab-ipmi' });
    assertValidBlock(report);
  });

  it('the Onboard Administrator: its SSH banner, the populated bays, a block with the enclosure to fill in', async () => {
    const run = await probe('127.0.0.1', '--type', 'hp-oa', '--port', String(oa.port), '--credential', 'lab-oa', '--secrets', join(dir, 'other.yaml'), '--json');
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as ProbeReport;
    assert.equal(report.type, 'hp-oa');
    assert.match(report.transport ?? '', /^SSH \(SSH-2\.0-/);
    assert.deepEqual(report.bays, [1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16]);
    assert.equal(report.auth, 'password login over SSH');
    assertValidBlock(report, { enclosure: { name: 'asgard', bay: 3 } });
    const human = await probe('127.0.0.1', '--type', 'hp-oa', '--port', String(oa.port), '--credential', 'lab-oa', '--secrets', join(dir, 'other.yaml'));
    assert.match(human.stdout, /^enclosure: \{name: ENCLOSURE, bay: 1\}  # populated bays: 1, 2, 3, 4, 6/m);
  });

  it('a wrong password: exit 1, the refusal said, the password not', async () => {
    await writeFile(join(dir, 'wrong.yaml'), 'lab-oa: {username: Administrator, password: not-the-oa-pass-9}\n');
    const run = await probe('127.0.0.1', '--type', 'hp-oa', '--port', String(oa.port), '--credential', 'lab-oa', '--secrets', join(dir, 'wrong.yaml'));
    assert.equal(run.code, 1);
    assert.match(run.stdout, /login: refused or failed/);
    assert.ok(!run.stdout.includes('not-the-oa-pass-9'));
  });

  it('nothing there: exit 1 naming what was tried; usage errors exit 2', async () => {
    const run = await probe('127.0.0.1', '--port', '9');
    assert.equal(run.code, 1);
    assert.match(run.stdout, /nothing answered as a Redfish service, an Onboard Administrator or an IPMI BMC/);
    await assert.rejects(probe('127.0.0.1', '--type', 'snmp'), UsageError);
    await assert.rejects(probe('not an address'), UsageError);
    await assert.rejects(probe('127.0.0.1', '--port', '70000'), UsageError);
  });
});
