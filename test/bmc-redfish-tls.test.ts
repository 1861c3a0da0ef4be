// HTTPS to a Redfish BMC with a self-signed certificate: refused by default, trusted through a per-host CA, a
// SHA-256 fingerprint pin (checked on every connection), or tls.insecure (with one warning per BMC).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CommandQueue } from '../src/bmc/command-queue.ts';
import type { BmcTarget } from '../src/bmc/driver.ts';
import { BmcState } from '../src/bmc/bmc-state.ts';
import { createRedfishDriver } from '../src/bmc/redfish-driver.ts';
import type { RedfishDriver } from '../src/bmc/redfish-driver.ts';
import { BmcTlsError } from '../src/bmc/tls.ts';
import { startRedfishBmc } from './fixtures/redfish/bmc.ts';
import type { RedfishBmc } from './fixtures/redfish/bmc.ts';
import { selfSignedCert } from './fixtures/redfish/certs.ts';
import type { TestCert } from './fixtures/redfish/certs.ts';
import { syntheticBmc } from './fixtures/redfish/resources.ts';

describe('Redfish driver over HTTPS', () => {
  let forAddress: TestCert; // names 127.0.0.1, as a CA-issued BMC certificate would
  let forOtherName: TestCert; // names someone else, as most factory BMC certificates do
  const bmcs: RedfishBmc[] = [];
  const drivers: RedfishDriver[] = [];
  const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];

  before(() => {
    forAddress = selfSignedCert('IP:127.0.0.1');
    forOtherName = selfSignedCert('DNS:bmc.other.example');
  });
  after(async () => {
    for (const d of drivers) await d.close();
    for (const b of bmcs) await b.close();
  });

  async function httpsBmc(cert: TestCert): Promise<RedfishBmc> {
    const bmc = await startRedfishBmc({ resources: syntheticBmc(), tls: { key: cert.key, cert: cert.cert } });
    bmcs.push(bmc);
    return bmc;
  }

  // One owner's BMC state for the drivers of this suite, as the agent has one for its drivers.
  const state = new BmcState();

  function driverFor(bmc: RedfishBmc, tls?: BmcTarget['tls'], retries = 0): RedfishDriver {
    const driver = createRedfishDriver(
      { host: 'secure1', address: bmc.address, port: bmc.port, username: bmc.username, password: bmc.password, ...(tls ? { tls } : {}) },
      {
        state,
        queue: new CommandQueue({ minIntervalMs: 0 }),
        http: { retries, retryDelayMs: 0, timeoutMs: 5000 },
        log: { warn: (fields, message) => void warnings.push({ fields, message }) },
      },
    );
    drivers.push(driver);
    return driver;
  }

  async function failure(driver: RedfishDriver): Promise<BmcTlsError> {
    const err = await driver.powerState().catch((e: unknown) => e);
    assert.ok(err instanceof BmcTlsError, String(err));
    assert.match(err.message, /^host secure1 \(BMC 127\.0\.0\.1:\d+\): powerState: GET \/redfish\/v1: TLS: /);
    return err;
  }

  it('refuses a self-signed certificate by default, before any request is sent', async () => {
    const bmc = await httpsBmc(forAddress);
    const err = await failure(driverFor(bmc));
    assert.match(err.message, /self[- ]signed/i);
    assert.equal(bmc.requests.length, 0);
  });

  it('trusts the BMC through its own CA (tls.ca), name checked', async () => {
    const bmc = await httpsBmc(forAddress);
    assert.equal(await driverFor(bmc, { ca: forAddress.cert }).powerState(), 'on');
    // Another host's CA is no trust at all; and a CA does not excuse a certificate naming someone else.
    await failure(driverFor(bmc, { ca: forOtherName.cert }));
    const misnamed = await httpsBmc(forOtherName);
    const err = await failure(driverFor(misnamed, { ca: forOtherName.cert }));
    assert.match(err.message, /ERR_TLS_CERT_ALTNAME_INVALID|does not match|not in the cert/i);
  });

  it('trusts exactly the pinned certificate (tls.fingerprint256), whatever it names', async () => {
    const bmc = await httpsBmc(forOtherName);
    const pinned = driverFor(bmc, { fingerprint256: forOtherName.fingerprint256.toLowerCase().replace(/:/g, '') });
    assert.equal(await pinned.powerState(), 'on');
    const err = await failure(driverFor(bmc, { fingerprint256: forAddress.fingerprint256 }));
    assert.match(err.message, /is not the pinned/);
    assert.ok(bmc.requests.every((r) => r.method !== 'GET' || r.auth === 'session' || r.path === '/redfish/v1'));
  });

  it('checks the pin on every new connection: a swapped certificate is refused', async () => {
    const bmc = await httpsBmc(forAddress);
    // One retry: the GET may first go out on the kept-alive socket the server just closed.
    const driver = driverFor(bmc, { fingerprint256: forAddress.fingerprint256 }, 1);
    assert.equal(await driver.powerState(), 'on');
    const before = bmc.requests.length;
    bmc.setCertificate(forOtherName); // closes the open connection too
    const err = await driver.powerState().catch((e: unknown) => e);
    assert.ok(err instanceof BmcTlsError, String(err));
    assert.match(err.message, /GET \/redfish\/v1\/Systems\/1: TLS: .*is not the pinned/);
    assert.equal(bmc.requests.length, before);
  });

  it('tls.insecure skips verification, and warns once per BMC', async () => {
    const bmc = await httpsBmc(forOtherName);
    const seen = warnings.length;
    assert.equal(await driverFor(bmc, { insecure: true }).powerState(), 'on');
    assert.equal(await driverFor(bmc, { insecure: true }).powerState(), 'on');
    const mine = warnings.slice(seen);
    assert.equal(mine.length, 1);
    assert.deepEqual(mine[0]?.fields, { host: 'secure1', bmc: `127.0.0.1:${bmc.port}` });
    assert.match(mine[0]!.message, /TLS verification of this BMC is off/);
  });
});
