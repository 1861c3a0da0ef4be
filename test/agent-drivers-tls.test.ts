// bmc.tls from the lab repository to the Redfish driver: a host loaded from a lab (its CA file read from the
// commit), turned into a driver by the agent's factory, talking HTTPS to the fixture BMC.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { BmcState } from '../src/bmc/bmc-state.ts';
import { createDriver } from '../src/bmc/driver-factory.ts';
import type { Secrets } from '../src/secrets/secrets.ts';
import type { BmcDriver } from '../src/bmc/driver.ts';
import { BmcTlsError } from '../src/bmc/tls.ts';
import { createLogger } from '../src/log.ts';
import { loadLabOrThrow } from '../src/model/load.ts';
import type { Host } from '../src/model/types.ts';
import { startRedfishBmc, type RedfishBmc } from './fixtures/redfish/bmc.ts';
import { issuedCert, selfSignedCert, testCa } from './fixtures/redfish/certs.ts';
import { syntheticBmc } from './fixtures/redfish/resources.ts';

const MINIMAL = new URL('./fixtures/labs/minimal/', import.meta.url);

describe('bmc.tls in the lab reaches the Redfish driver', () => {
  const ca = testCa('lab BMC CA');
  const otherCa = testCa('someone else');
  let bmc: RedfishBmc;
  let dir = '';
  const logged: string[] = [];
  const log = createLogger({ level: 'warn', destination: new Writable({ write: (c: Buffer, _e, cb) => void (logged.push(c.toString()), cb()) }) });
  const drivers: BmcDriver[] = [];

  before(async () => {
    const cert = issuedCert(ca, 'IP:127.0.0.1');
    bmc = await startRedfishBmc({ resources: syntheticBmc(), tls: { key: cert.key, cert: cert.cert } });
    dir = mkdtempSync(join(tmpdir(), 'forseti-lab-tls-'));
    cpSync(MINIMAL, dir, { recursive: true });
    mkdirSync(join(dir, 'certs'));
    writeFileSync(join(dir, 'certs/bmc-ca.pem'), ca.cert);
    writeFileSync(join(dir, 'certs/other-ca.pem'), otherCa.cert);
    const host = (name: string, n: number, tls: string): string => `apiVersion: forseti/v1
kind: Host
name: ${name}
macs: [aa:bb:cc:00:00:0${n}]
ip: 10.9.0.${20 + n}
bmc: {type: redfish, address: 127.0.0.1, port: ${bmc.port}, credential: bmc, tls: ${tls}}
role: off
`;
    writeFileSync(join(dir, 'hosts/by-ca.yaml'), host('by-ca', 3, '{ca: certs/bmc-ca.pem}'));
    writeFileSync(join(dir, 'hosts/wrong-ca.yaml'), host('wrong-ca', 4, '{ca: certs/other-ca.pem}'));
    writeFileSync(join(dir, 'hosts/pinned.yaml'), host('pinned', 5, `{fingerprint: 'sha256:${cert.fingerprint256}'}`));
    writeFileSync(join(dir, 'hosts/wrong-pin.yaml'), host('wrong-pin', 6, `{fingerprint: 'sha256:${selfSignedCert('IP:127.0.0.1').fingerprint256}'}`));
    writeFileSync(join(dir, 'hosts/insecure.yaml'), host('insecure', 7, '{insecure: true}'));
  });
  after(async () => {
    for (const d of drivers) await d.close?.();
    await bmc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // One BMC state for every driver of the suite, as the agent keeps one across the drivers it rebuilds per commit.
  const state = new BmcState();

  async function driverFor(name: string): Promise<BmcDriver> {
    const lab = await loadLabOrThrow(dir);
    const host = lab.hosts.get(name) as Host;
    const secrets = { resolve: () => ({ username: bmc.username, password: bmc.password }) } as unknown as Secrets; // a stub: no file, no env
    const driver = createDriver(host, secrets, { minIntervalMs: 0, timeoutMs: 5000, retries: 0 }, log, { state });
    drivers.push(driver);
    return driver;
  }

  it('trusts the CA file the lab names (and no other)', async () => {
    assert.equal(await (await driverFor('by-ca')).powerState(), 'on');
    await assert.rejects((await driverFor('wrong-ca')).powerState(), (e: unknown) => e instanceof BmcTlsError && /host wrong-ca .*TLS: /.test(e.message));
  });

  it('trusts exactly the pinned fingerprint, written sha256:AB:CD:…', async () => {
    assert.equal(await (await driverFor('pinned')).powerState(), 'on');
    await assert.rejects((await driverFor('wrong-pin')).powerState(), (e: unknown) => e instanceof BmcTlsError && /is not the pinned/.test(e.message));
  });

  it('insecure: true connects unverified and the agent log warns once for that BMC', async () => {
    assert.equal(await (await driverFor('insecure')).powerState(), 'on');
    assert.equal(await (await driverFor('insecure')).powerState(), 'on');
    const warnings = logged.filter((l) => l.includes('TLS verification of this BMC is off'));
    assert.equal(warnings.length, 1, logged.join(''));
    assert.match(warnings[0] ?? '', /"host":"insecure"/);
    assert.ok(!logged.join('').includes(bmc.password), 'no password in the log');
  });
});
