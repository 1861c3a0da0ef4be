// Conformance: the Redfish driver against the DMTF `public-rackmount1` mockup, served read-only from the shared
// mockups directory (../shared/redfish-mockups/ next to the repository), with Reset and PATCH applied in memory.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { CommandQueue } from '../src/bmc/command-queue.ts';
import { createRedfishDriver } from '../src/bmc/redfish-driver.ts';
import type { RedfishDriver } from '../src/bmc/redfish-driver.ts';
import { startRedfishBmc } from './fixtures/redfish/bmc.ts';
import type { RedfishBmc } from './fixtures/redfish/bmc.ts';
import { mockupResources } from './fixtures/redfish/resources.ts';
import type { ResourceMap } from './fixtures/redfish/resources.ts';

const MOCKUP = fileURLToPath(new URL('../../shared/redfish-mockups/public-rackmount1', import.meta.url));
const SYSTEM = '/redfish/v1/Systems/437XR1138R2';
const missing = existsSync(`${MOCKUP}/index.json`) ? false : `the DMTF mockup is not at ${MOCKUP} (CI provides ../shared/redfish-mockups next to the repository)`;

describe('Redfish driver against the DMTF public-rackmount1 mockup', { skip: missing }, () => {
  let resources: ResourceMap;
  const bmcs: RedfishBmc[] = [];
  const drivers: RedfishDriver[] = [];

  before(() => {
    resources = mockupResources(MOCKUP);
  });
  after(async () => {
    for (const d of drivers) await d.close();
    for (const b of bmcs) await b.close();
  });

  async function serve(edit?: (r: ResourceMap) => void): Promise<{ bmc: RedfishBmc; driver: RedfishDriver }> {
    const copy: ResourceMap = new Map([...resources].map(([k, v]) => [k, structuredClone(v)]));
    edit?.(copy);
    const bmc = await startRedfishBmc({ resources: copy, behaviour: { powerDelayPolls: 1 } });
    const driver = createRedfishDriver(
      { host: 'web483', address: bmc.address, port: bmc.port, username: bmc.username, password: bmc.password },
      { scheme: 'http', queue: new CommandQueue({ minIntervalMs: 0 }), sleep: async () => undefined, powerPoll: { attempts: 5, intervalMs: 1 } },
    );
    bmcs.push(bmc);
    drivers.push(driver);
    return { bmc, driver };
  }
  const resets = (bmc: RedfishBmc) => bmc.requests.filter((r) => r.method === 'POST' && r.path.endsWith('Reset')).map((r) => (r.body as { ResetType: string }).ResetType);

  it('read paths: system, power state, boot override, inventory, power draw', async () => {
    const { bmc, driver } = await serve();
    assert.equal(await driver.powerState(), 'on');
    assert.deepEqual(await driver.getBootOverride(), { device: 'pxe', persistent: false, mode: 'uefi' });
    assert.deepEqual(await driver.inventory(), {
      manufacturer: 'Contoso',
      model: '3500',
      serialNumber: '437XR1138R2',
      bmcFirmware: '1.45.455b66-rev4',
      processors: { count: 2, model: 'Multi-Core Intel(R) Xeon(R) processor 7xxx Series' },
      memoryGiB: 96,
      storage: [
        { name: 'SATA Bay 1', model: '3000GT8', capacityBytes: 8_000_000_000_000 },
        { name: 'SATA Bay 2', model: '3000GT7', capacityBytes: 4_000_000_000_000 },
      ],
      macs: ['12:44:6a:3b:04:11', 'aa:bb:cc:dd:ee:00', 'aa:bb:cc:dd:ee:fe'],
    });
    assert.equal(await driver.powerDraw(), 374); // EnvironmentMetrics PowerWatts
    assert.deepEqual(bmc.requests.slice(0, 2).map((r) => `${r.method} ${r.path}`), ['GET /redfish/v1', 'POST /redfish/v1/SessionService/Sessions']);
    assert.ok(bmc.requests.slice(2).every((r) => r.auth === 'session'), 'the mockup names its sessions in Links.Sessions: every request after the login carries the token');
  });

  it('power draw falls back to the deprecated Power resource', async () => {
    const { driver } = await serve((r) => delete r.get('/redfish/v1/Chassis/1U')!['EnvironmentMetrics']);
    assert.equal(await driver.powerDraw(), 344); // Power PowerControl[0].PowerConsumedWatts
  });

  it('write paths: boot override, power off, cycle (ForceRestart: the mockup allows no PowerCycle), soft off', async () => {
    const { bmc, driver } = await serve();
    await driver.setBootOverride({ device: 'disk', persistent: true, mode: 'uefi' });
    assert.deepEqual(await driver.getBootOverride(), { device: 'disk', persistent: true, mode: 'uefi' });
    assert.equal((bmc.resource(SYSTEM)['Boot'] as Record<string, string>)['BootSourceOverrideTarget'], 'Hdd');
    await driver.setBootOverride({ device: 'none', persistent: false });
    assert.equal(await driver.getBootOverride(), null);

    await driver.powerCycle();
    await driver.powerOff();
    assert.equal(bmc.resource(SYSTEM)['PowerState'], 'Off');
    await driver.powerCycle();
    await driver.powerOn();
    await driver.softOff();
    assert.equal(await driver.powerState(), 'off');
    assert.deepEqual(resets(bmc), ['ForceRestart', 'ForceOff', 'On', 'On', 'GracefulShutdown']);
  });

  it('a target the mockup does not allow is refused before any PATCH', async () => {
    const { bmc, driver } = await serve((r) => {
      const boot = r.get(SYSTEM)!['Boot'] as Record<string, unknown>;
      boot['BootSourceOverrideTarget@Redfish.AllowableValues'] = ['None', 'Cd', 'Hdd'];
    });
    await assert.rejects(driver.setBootOverride({ device: 'pxe', persistent: false }), /BootSourceOverrideTarget Pxe is not supported/);
    assert.equal(bmc.requests.filter((r) => r.method === 'PATCH').length, 0);
  });
});
