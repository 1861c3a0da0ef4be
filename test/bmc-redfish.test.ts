// The Redfish driver against the fixture BMC (test/fixtures/redfish/), one behaviour or failure kind per test.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { CommandQueue } from '../src/bmc/command-queue.ts';
import { BmcAuthError, BmcCommandError, BmcUnreachableError, BootOnceNotKeptError, BootOverrideNotAppliedError, PowerStateNotReachedError } from '../src/bmc/driver.ts';
import type { BmcTarget } from '../src/bmc/driver.ts';
import { BmcGate } from '../src/bmc/gate.ts';
import { createRedfishDriver } from '../src/bmc/redfish-driver.ts';
import type { RedfishDriver, RedfishDriverOptions } from '../src/bmc/redfish-driver.ts';
import { startRedfishBmc } from './fixtures/redfish/bmc.ts';
import type { Behaviour, LoggedRequest, RedfishBmc } from './fixtures/redfish/bmc.ts';
import { syntheticBmc } from './fixtures/redfish/resources.ts';
import type { SyntheticOptions } from './fixtures/redfish/resources.ts';

const open: Array<RedfishBmc | RedfishDriver> = [];
after(async () => {
  for (const thing of open.reverse()) await thing.close();
});

async function bmcWith(behaviour: Partial<Behaviour> = {}, resources: SyntheticOptions = {}): Promise<RedfishBmc> {
  const bmc = await startRedfishBmc({ resources: syntheticBmc(resources), behaviour });
  open.push(bmc);
  return bmc;
}

/** A driver with no pauses: sleeps are recorded, not waited. */
function driverFor(bmc: RedfishBmc, opts: RedfishDriverOptions = {}, target: Partial<BmcTarget> = {}) {
  const sleeps: number[] = [];
  const driver = createRedfishDriver(
    { host: 'node7', address: bmc.address, port: bmc.port, username: bmc.username, password: bmc.password, ...target },
    {
      scheme: 'http',
      queue: new CommandQueue({ minIntervalMs: 0 }),
      gate: new BmcGate(),
      sleep: async (ms) => void sleeps.push(ms),
      powerPoll: { attempts: 10, intervalMs: 500 },
      http: { retries: 2, retryDelayMs: 100, timeoutMs: 5000 },
      ...opts,
    },
  );
  open.push(driver);
  return { driver, sleeps };
}

const calls = (bmc: RedfishBmc, from = 0): string[] => bmc.requests.slice(from).map((r) => `${r.method} ${r.path}`);
const patches = (bmc: RedfishBmc): LoggedRequest[] => bmc.requests.filter((r) => r.method === 'PATCH');
const resets = (bmc: RedfishBmc): unknown[] => bmc.requests.filter((r) => r.path.endsWith('ComputerSystem.Reset')).map((r) => (r.body as { ResetType: string }).ResetType);
const system = (bmc: RedfishBmc, id = '1') => bmc.resource(`/redfish/v1/Systems/${id}`) as { PowerState: string; Boot: Record<string, string> };

function assertNoSecret(err: unknown, bmc: RedfishBmc): void {
  assert.ok(err instanceof Error);
  assert.ok(!err.message.includes(bmc.password), 'the password is in the message');
  for (const token of bmc.sessions.keys()) assert.ok(!err.message.includes(token), 'a session token is in the message');
  assert.match(err.message, /host node7 \(BMC 127\.0\.0\.1:\d+\)/);
}

describe('Redfish driver: sessions and authentication', () => {
  it('logs in once, sends the X-Auth-Token, and logs out on close', async () => {
    const bmc = await bmcWith();
    const { driver } = driverFor(bmc);
    assert.equal(await driver.powerState(), 'on');
    assert.equal(await driver.powerState(), 'on');
    assert.deepEqual(calls(bmc), ['GET /redfish/v1', 'POST /redfish/v1/SessionService/Sessions', 'GET /redfish/v1/Systems', 'GET /redfish/v1/Systems/1', 'GET /redfish/v1/Systems/1']);
    assert.ok(bmc.requests.slice(2).every((r) => r.auth === 'session'));
    assert.equal(bmc.sessions.size, 1);
    const sessionId = [...bmc.sessions.values()][0]!.id;
    await driver.close();
    assert.deepEqual(calls(bmc).at(-1), `DELETE /redfish/v1/SessionService/Sessions/${sessionId}`);
    assert.equal(bmc.sessions.size, 0);
  });

  for (const status of [404, 405] as const) {
    it(`falls back to HTTP Basic auth when the login answers ${status}`, async () => {
      const bmc = await bmcWith({ sessions: status });
      const { driver } = driverFor(bmc);
      assert.equal(await driver.powerState(), 'on');
      assert.deepEqual(
        bmc.requests.map((r) => `${r.method} ${r.status} ${r.auth}`),
        ['GET 200 none', `POST ${status} none`, 'GET 200 basic', 'GET 200 basic'],
      );
      await driver.close(); // no session: nothing to log out
      assert.ok(!calls(bmc).some((c) => c.startsWith('DELETE')));
    });
  }

  it('logs in anew once when the session expires, and carries on', async () => {
    const bmc = await bmcWith({ sessionExpiresAfter: 2 });
    const { driver } = driverFor(bmc);
    await driver.powerState(); // Systems, Systems/1: the token's two uses
    assert.equal(await driver.powerState(), 'on');
    assert.deepEqual(
      bmc.requests.map((r) => `${r.method} ${r.path} ${r.status}`).slice(4),
      ['GET /redfish/v1/Systems/1 401', 'POST /redfish/v1/SessionService/Sessions 201', 'GET /redfish/v1/Systems/1 200'],
    );
  });

  it('a service root without a session service: Basic auth at once, no login POSTed', async () => {
    const bmc = await bmcWith({ sessions: 'none' });
    const { driver } = driverFor(bmc);
    assert.equal(await driver.powerState(), 'on');
    assert.deepEqual(
      bmc.requests.map((r) => `${r.method} ${r.path} ${r.status} ${r.auth}`),
      ['GET /redfish/v1 200 none', 'GET /redfish/v1/Systems 200 basic', 'GET /redfish/v1/Systems/1 200 basic'],
    );
  });

  it('a session login refused with 401 (WWW-Authenticate: Basic) falls back to Basic auth with the same password', async () => {
    // The root names a session service that refuses logins (proxmox-redfish #42): Basic is the method that works.
    const bmc = await bmcWith({ sessions: 'refused' });
    const { driver } = driverFor(bmc);
    assert.equal(await driver.powerState(), 'on');
    assert.deepEqual(
      bmc.requests.map((r) => `${r.method} ${r.path} ${r.status} ${r.auth}`),
      ['GET /redfish/v1 200 none', 'POST /redfish/v1/SessionService/Sessions 401 none', 'GET /redfish/v1/Systems 200 basic', 'GET /redfish/v1/Systems/1 200 basic'],
    );
    await driver.close();
    assert.ok(!calls(bmc).some((c) => c.startsWith('DELETE')), 'no session to log out');
  });

  it('logs in where Links.Sessions points, and logs out at the Location it was given (an absolute URL)', async () => {
    const bmc = await bmcWith({ sessionLocation: 'url' });
    const root = bmc.resource('/redfish/v1') as { Links: { Sessions: { '@odata.id': string } } };
    root.Links.Sessions['@odata.id'] = '/redfish/v1/SessionService/Sessions/';
    const { driver } = driverFor(bmc);
    await driver.powerState();
    assert.equal(calls(bmc)[1], 'POST /redfish/v1/SessionService/Sessions');
    assert.equal(bmc.requests[1]?.rawPath, '/redfish/v1/SessionService/Sessions/');
    await driver.close();
    assert.match(bmc.requests.at(-1)?.rawPath ?? '', /^\/redfish\/v1\/SessionService\/Sessions\/[0-9a-f]+\/$/);
    assert.equal(bmc.sessions.size, 0);
  });

  it('wrong credentials: BmcAuthError naming every method tried, host and BMC, never the password', async () => {
    const bmc = await bmcWith();
    const { driver } = driverFor(bmc, {}, { password: 'not-the-password' });
    const err = await driver.powerState().catch((e: unknown) => e);
    assert.ok(err instanceof BmcAuthError, String(err));
    assertNoSecret(err, bmc);
    assert.ok(!(err as Error).message.includes('not-the-password'));
    assert.match((err as Error).message, /login refused for user admin: tried session login \(HTTP 401\), then Basic auth \(HTTP 401\)/);
    assert.deepEqual(calls(bmc), ['GET /redfish/v1', 'POST /redfish/v1/SessionService/Sessions', 'GET /redfish/v1/Systems']);
    const basicOnly = await bmcWith({ sessions: 'none' });
    const wrong = await driverFor(basicOnly, {}, { password: 'not-the-password' }).driver.powerState().catch((e: unknown) => e);
    assert.ok(wrong instanceof BmcAuthError);
    assert.match(wrong.message, /login refused for user admin: tried no session service in the service root, then Basic auth \(HTTP 401\)/);
  });

  it('a 401 right after a new login is BmcAuthError (no endless re-login)', async () => {
    const bmc = await bmcWith({ sessionExpiresAfter: 0 });
    const { driver } = driverFor(bmc);
    const err = await driver.powerState().catch((e: unknown) => e);
    assert.ok(err instanceof BmcAuthError, String(err));
    assert.equal(bmc.requests.filter((r) => r.method === 'POST').length, 2);
    assert.match((err as Error).message, /credentials refused \(HTTP 401 after a new login\)/);
    assertNoSecret(err, bmc);
  });
});

describe('Redfish driver: system and power', () => {
  it('chooses the system by id', async () => {
    const bmc = await bmcWith({}, { systems: ['Blade1', 'Blade2'] });
    const { driver } = driverFor(bmc, { systemId: 'Blade2' });
    await driver.powerOff();
    assert.equal(system(bmc, 'Blade2').PowerState, 'Off');
    assert.equal(system(bmc, 'Blade1').PowerState, 'On');
    const { driver: wrong } = driverFor(bmc, { systemId: 'Blade9' });
    const err = await wrong.powerState().catch((e: unknown) => e);
    assert.ok(err instanceof BmcCommandError);
    assert.match(err.message, /no system "Blade9" \(members: Blade1, Blade2\)/);
  });

  it('power writes return once PowerState reads back the new state (after N polls)', async () => {
    const bmc = await bmcWith({ powerDelayPolls: 3 });
    const { driver, sleeps } = driverFor(bmc);
    await driver.powerOff();
    assert.equal(system(bmc).PowerState, 'Off');
    assert.deepEqual(resets(bmc), ['ForceOff']);
    assert.deepEqual(sleeps, [500, 500, 500]); // three PoweringOff reads, then Off
    await driver.powerOn();
    assert.deepEqual(resets(bmc), ['ForceOff', 'On']);
    assert.equal(await driver.powerState(), 'on');
  });

  it('a state never reached within the bound is PowerStateNotReachedError', async () => {
    const bmc = await bmcWith({ powerDelayPolls: 50 });
    const { driver } = driverFor(bmc, { powerPoll: { attempts: 4, intervalMs: 10 } });
    const err = await driver.powerOff().catch((e: unknown) => e);
    assert.ok(err instanceof PowerStateNotReachedError, String(err));
    assert.equal(err.last, 'PoweringOff');
  });

  it('power cycle: PowerCycle when allowed; ForceRestart when not; On when the host is off', async () => {
    const withCycle = await bmcWith();
    await driverFor(withCycle).driver.powerCycle();
    assert.deepEqual(resets(withCycle), ['PowerCycle']);

    const noCycle = await bmcWith({}, { resetTypes: ['On', 'ForceOff', 'ForceRestart', 'GracefulShutdown'] });
    const { driver } = driverFor(noCycle);
    await driver.powerCycle();
    await driver.powerOff();
    await driver.powerCycle();
    assert.deepEqual(resets(noCycle), ['ForceRestart', 'ForceOff', 'On']);
    assert.equal(system(noCycle).PowerState, 'On');
  });

  it('reads the allowed reset types from @Redfish.ActionInfo', async () => {
    const bmc = await bmcWith({}, { resetTypesVia: 'actioninfo', resetTypes: ['On', 'ForceOff', 'ForceRestart'] });
    const { driver } = driverFor(bmc);
    await driver.powerCycle();
    assert.ok(calls(bmc).includes('GET /redfish/v1/Systems/1/ResetActionInfo'));
    assert.deepEqual(resets(bmc), ['ForceRestart']);
  });

  it('soft off sends GracefulShutdown and waits for Off; a missing reset type fails before any POST', async () => {
    const bmc = await bmcWith({ powerDelayPolls: 2 });
    const { driver } = driverFor(bmc);
    await driver.softOff();
    assert.deepEqual(resets(bmc), ['GracefulShutdown']);
    assert.equal(system(bmc).PowerState, 'Off');

    const hard = await bmcWith({}, { resetTypes: ['On', 'ForceOff'] });
    const err = await driverFor(hard).driver.softOff().catch((e: unknown) => e);
    assert.ok(err instanceof BmcCommandError);
    assert.match(err.message, /allows none of GracefulShutdown, PushPowerButton \(it allows On, ForceOff\)/);
    assert.deepEqual(resets(hard), []);
  });

  it('soft off presses the power button where GracefulShutdown is not offered (iLO 4), never on a system already off', async () => {
    const bmc = await bmcWith({}, { resetTypes: ['On', 'ForceOff', 'ForceRestart', 'Nmi', 'PushPowerButton'] });
    const { driver } = driverFor(bmc);
    await driver.softOff();
    await driver.softOff();
    assert.deepEqual(resets(bmc), ['PushPowerButton']);
    assert.equal(system(bmc).PowerState, 'Off');
  });

  it('"already on" refusals (409) of a reset are success when the state is already right', async () => {
    const bmc = await bmcWith({ resetToSameState: 'conflict' });
    const { driver } = driverFor(bmc);
    await driver.powerOn();
    assert.equal(bmc.requests.find((r) => r.path.endsWith('ComputerSystem.Reset'))?.status, 409);
    assert.equal(await driver.powerState(), 'on');
  });
});

describe('Redfish driver: boot override', () => {
  it('PATCHes Enabled, Target and Mode with If-Match, reads it back, and reports it', async () => {
    const bmc = await bmcWith();
    const { driver } = driverFor(bmc, {}, { firmware: 'uefi' });
    await driver.setBootOverride({ device: 'pxe', persistent: false });
    const [patch] = patches(bmc);
    assert.deepEqual(patch?.body, { Boot: { BootSourceOverrideEnabled: 'Once', BootSourceOverrideTarget: 'Pxe', BootSourceOverrideMode: 'UEFI' } });
    assert.equal(patch?.ifMatch, 'W/"1"');
    assert.equal(calls(bmc).at(-1), 'GET /redfish/v1/Systems/1'); // the read-back
    assert.deepEqual(await driver.getBootOverride(), { device: 'pxe', persistent: false, mode: 'uefi' });

    await driver.setBootOverride({ device: 'disk', persistent: true, mode: 'bios' });
    assert.deepEqual(await driver.getBootOverride(), { device: 'disk', persistent: true, mode: 'bios' });
    await driver.setBootOverride({ device: 'none', persistent: false });
    assert.deepEqual(patches(bmc).at(-1)?.body, { Boot: { BootSourceOverrideEnabled: 'Disabled', BootSourceOverrideTarget: 'None' } });
    assert.equal(await driver.getBootOverride(), null);
  });

  it('a 200 that changed nothing (bmclib #459) is BootOverrideNotAppliedError', async () => {
    const bmc = await bmcWith({ bootOverride: 'dropped' });
    const { driver } = driverFor(bmc);
    const err = await driver.setBootOverride({ device: 'pxe', persistent: false }).catch((e: unknown) => e);
    assert.ok(err instanceof BootOverrideNotAppliedError, String(err));
    assert.match(err.message, /wrote Pxe\/Once, read back None\/Disabled \(the BMC answered the PATCH with success\)/);
    assertNoSecret(err, bmc);
  });

  it('a 400 on the full payload is retried with Enabled and Target only (bmclib #318)', async () => {
    const bmc = await bmcWith({ bootMode: 'rejected' });
    const { driver } = driverFor(bmc, {}, { firmware: 'bios' });
    await driver.setBootOverride({ device: 'pxe', persistent: false });
    assert.deepEqual(
      patches(bmc).map((p) => [p.status, p.body]),
      [
        [400, { Boot: { BootSourceOverrideEnabled: 'Once', BootSourceOverrideTarget: 'Pxe', BootSourceOverrideMode: 'Legacy' } }],
        [200, { Boot: { BootSourceOverrideEnabled: 'Once', BootSourceOverrideTarget: 'Pxe' } }],
      ],
    );
    assert.equal(system(bmc).Boot['BootSourceOverrideTarget'], 'Pxe');
  });

  it('a BMC that demands BootSourceOverrideMode gets the current mode added', async () => {
    const bmc = await bmcWith({ bootMode: 'required' });
    const { driver } = driverFor(bmc);
    await driver.setBootOverride({ device: 'disk', persistent: true });
    assert.deepEqual(
      patches(bmc).map((p) => p.status),
      [400, 200],
    );
    assert.deepEqual(patches(bmc)[1]?.body, { Boot: { BootSourceOverrideEnabled: 'Continuous', BootSourceOverrideTarget: 'Hdd', BootSourceOverrideMode: 'UEFI' } });
  });

  it('a target outside BootSourceOverrideTarget@Redfish.AllowableValues is refused before any PATCH', async () => {
    const bmc = await bmcWith({}, { bootTargets: ['None', 'Hdd', 'Cd'] });
    const { driver } = driverFor(bmc);
    const err = await driver.setBootOverride({ device: 'pxe', persistent: false }).catch((e: unknown) => e);
    assert.ok(err instanceof BmcCommandError, String(err));
    assert.match(err.message, /BootSourceOverrideTarget Pxe is not supported by this BMC \(it allows None, Hdd, Cd\)/);
    assert.equal(patches(bmc).length, 0);
  });

  it('a stale ETag (412) is re-read and the PATCH sent again with the new one', async () => {
    const bmc = await bmcWith({ concurrentChangeBeforePatch: true });
    const { driver } = driverFor(bmc);
    await driver.setBootOverride({ device: 'pxe', persistent: false });
    assert.deepEqual(
      patches(bmc).map((p) => [p.status, p.ifMatch]),
      [
        [412, 'W/"1"'],
        [200, 'W/"2"'],
      ],
    );
  });

  it('a service that demands If-Match (428) gets the PATCH again with the fresh ETag, or * when it gives none', async () => {
    const tagged = await bmcWith({ ifMatch: 'required' });
    await driverFor(tagged).driver.setBootOverride({ device: 'pxe', persistent: false });
    assert.deepEqual(patches(tagged).map((p) => [p.status, p.ifMatch]), [[200, 'W/"1"']], 'the ETag of the read goes with the first PATCH');
    const untagged = await bmcWith({ ifMatch: 'required', etag: false });
    await driverFor(untagged).driver.setBootOverride({ device: 'pxe', persistent: false });
    assert.deepEqual(patches(untagged).map((p) => [p.status, p.ifMatch]), [[428, undefined], [200, '*']]);
    assert.equal(system(untagged).Boot['BootSourceOverrideTarget'], 'Pxe');
  });

  it('a PATCH refused during POST (HPE iLO) is sent again once the system has finished POST', async () => {
    const bmc = await bmcWith({ postState: 'Hp', postReads: 3 }, { resetTypes: ['On', 'ForceOff', 'ForceRestart', 'Nmi', 'PushPowerButton'] });
    const { driver, sleeps } = driverFor(bmc, { postPoll: { attempts: 10, intervalMs: 2000 } });
    await driver.powerCycle(); // ForceRestart: the system is in POST now
    sleeps.length = 0;
    await driver.setBootOverride({ device: 'pxe', persistent: false });
    assert.deepEqual(patches(bmc).map((p) => p.status), [400, 200]);
    assert.match(JSON.stringify(bmc.requests.find((r) => r.status === 400)?.body ?? ''), /Boot/);
    assert.ok(sleeps.length >= 1 && sleeps.every((ms) => ms === 2000), String(sleeps));
    assert.equal(system(bmc).Boot['BootSourceOverrideTarget'], 'Pxe');
    const stuck = await bmcWith({ postState: 'Hpe', postReads: 1000 }, { resetTypes: ['On', 'ForceOff', 'ForceRestart'] });
    const { driver: waiting } = driverFor(stuck, { postPoll: { attempts: 3, intervalMs: 10 } });
    await waiting.powerCycle();
    const err = await waiting.setBootOverride({ device: 'pxe', persistent: false }).catch((e: unknown) => e);
    assert.ok(err instanceof BmcCommandError, String(err));
    assert.match(err.message, /stayed in POST \(PostState InPost\) for 3 polls/);
  });

  it('a Mode put back to the default by a PATCH without it (Supermicro) is sent along again', async () => {
    const bmc = await bmcWith({ bootModeDefault: 'reset-unless-sent' });
    const { driver } = driverFor(bmc); // firmware unknown: forseti leaves the Mode alone
    await driver.setBootOverride({ device: 'pxe', persistent: false });
    assert.deepEqual(patches(bmc).map((p) => p.body), [
      { Boot: { BootSourceOverrideEnabled: 'Once', BootSourceOverrideTarget: 'Pxe' } },
      { Boot: { BootSourceOverrideEnabled: 'Once', BootSourceOverrideTarget: 'Pxe', BootSourceOverrideMode: 'UEFI' } },
    ]);
    assert.equal(system(bmc).Boot['BootSourceOverrideMode'], 'UEFI');
  });

  it('Once read back as Continuous is BootOnceNotKeptError saying what the BMC holds; nothing is undone', async () => {
    const bmc = await bmcWith({ bootOverride: 'once-as-continuous' });
    const { driver } = driverFor(bmc, {}, { firmware: 'bios' });
    const err = await driver.setBootOverride({ device: 'pxe', persistent: false }).catch((e: unknown) => e);
    assert.ok(err instanceof BootOnceNotKeptError, String(err));
    assert.ok(err instanceof BootOverrideNotAppliedError, 'a kind of override not applied');
    assert.deepEqual(err.holds, { device: 'pxe', persistent: true, mode: 'bios' });
    assert.match(err.message, /wrote Pxe\/Once\/Legacy, read back Pxe\/Continuous\/Legacy: this BMC keeps no one-time boot override; it holds Pxe\/Continuous\/Legacy for every boot now/);
    assert.equal(patches(bmc).length, 1, 'no undo: the caller decides (the agent provisions with it and sets the disk afterwards)');
    await driver.setBootOverride({ device: 'disk', persistent: true, mode: 'bios' });
    assert.deepEqual(await driver.getBootOverride(), { device: 'disk', persistent: true, mode: 'bios' });
  });

  it('a write kept only in part is undone, and the error says what the BMC holds again', async () => {
    const bmc = await bmcWith({ bootOverride: 'mode-only' });
    const { driver } = driverFor(bmc, {}, { firmware: 'bios' });
    const err = await driver.setBootOverride({ device: 'pxe', persistent: false }).catch((e: unknown) => e);
    assert.ok(err instanceof BootOverrideNotAppliedError && !(err instanceof BootOnceNotKeptError), String(err));
    assert.match(err.message, /wrote Pxe\/Once\/Legacy, read back None\/Disabled\/Legacy \(the BMC answered the PATCH with success\); undone: the BMC holds None\/Disabled\/UEFI again/);
    assert.equal(err.holds, null);
    assert.deepEqual(patches(bmc).at(-1)?.body, { Boot: { BootSourceOverrideEnabled: 'Disabled', BootSourceOverrideTarget: 'None', BootSourceOverrideMode: 'UEFI' } });
    assert.equal(system(bmc).Boot['BootSourceOverrideMode'], 'UEFI');
  });

  it('an undo the BMC refuses: the error says exactly what it holds now', async () => {
    const bmc = await bmcWith({ bootOverride: 'frozen-after-first' });
    const { driver } = driverFor(bmc, {}, { firmware: 'bios' });
    const err = await driver.setBootOverride({ device: 'pxe', persistent: true }).catch((e: unknown) => e);
    assert.ok(err instanceof BootOverrideNotAppliedError, String(err));
    assert.match(err.message, /could not undo it: the BMC holds None\/Disabled\/Legacy now \(it held None\/Disabled\/UEFI\)/);
    assert.equal(err.holds, null);
  });

  it('no If-Match when the system has no ETag', async () => {
    const bmc = await bmcWith({ etag: false });
    const { driver } = driverFor(bmc);
    await driver.setBootOverride({ device: 'pxe', persistent: false });
    assert.equal(patches(bmc)[0]?.ifMatch, undefined);
  });
});

describe('Redfish driver: busy and unreachable BMCs', () => {
  it('retries 503 answers, honouring Retry-After', async () => {
    const bmc = await bmcWith({ busyFirst: 3, retryAfter: '7' });
    const { driver, sleeps } = driverFor(bmc);
    assert.equal(await driver.powerState(), 'on');
    assert.deepEqual(sleeps, [7000, 7000, 7000]);
    assert.deepEqual(
      bmc.requests.map((r) => r.status),
      [503, 503, 503, 200, 201, 200, 200],
    );
  });

  it('backs off exponentially without Retry-After, and gives up after the bound with BmcCommandError', async () => {
    const bmc = await bmcWith({ busyFirst: 100 });
    const { driver, sleeps } = driverFor(bmc, { http: { busyRetries: 3, busyDelayMs: 250 } });
    const err = await driver.powerState().catch((e: unknown) => e);
    assert.ok(err instanceof BmcCommandError, String(err));
    assert.match(err.message, /HTTP 503/);
    assert.deepEqual(sleeps, [250, 500, 1000]);
    assert.equal(bmc.requests.length, 4);
    assert.match(err.message, /GET \/redfish\/v1: HTTP 503/);
  });

  it('connection refused: BmcUnreachableError after bounded retries, naming host and BMC', async () => {
    const bmc = await bmcWith();
    await bmc.close();
    const { driver, sleeps } = driverFor(bmc);
    const err = await driver.powerOn().catch((e: unknown) => e);
    assert.ok(err instanceof BmcUnreachableError, String(err));
    assert.match(err.message, /ECONNREFUSED/);
    assert.match(err.message, /unreachable after 3 attempt\(s\)/);
    assert.deepEqual(sleeps, [100, 200]);
    assertNoSecret(err, bmc);
  });
});

describe('Redfish driver: a BMC that accepts connections but never answers', () => {
  it('times out each attempt and ends in BmcUnreachableError after the retries', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const sleeps: number[] = [];
      const driver = createRedfishDriver(
        { host: 'node7', address: '127.0.0.1', port, username: 'admin', password: 'silent-pass-1' },
        { scheme: 'http', queue: new CommandQueue({ minIntervalMs: 0 }), gate: new BmcGate(), sleep: async (ms) => void sleeps.push(ms), http: { timeoutMs: 150, retries: 1, retryDelayMs: 10 } },
      );
      open.push(driver);
      const err = await driver.powerState().catch((e: unknown) => e);
      assert.ok(err instanceof BmcUnreachableError, String(err));
      assert.match(err.message, /GET \/redfish\/v1: unreachable after 2 attempt\(s\): UND_ERR_HEADERS_TIMEOUT/);
      assert.ok(!err.message.includes('silent-pass-1'));
      assert.deepEqual(sleeps, [10]);
      assert.equal(sockets.length, 2);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

describe('Redfish driver: a BMC that trickles its answers', () => {
  it('each exchange has one deadline, body included: a trickle that never idles long still times out, frees its slot, and backs the BMC off', async () => {
    // A byte every 20 ms never trips undici's bodyTimeout (idle time between chunks); the login answer alone takes
    // seconds to arrive, so only a deadline over the whole exchange ends it within 300 ms.
    const bmc = await bmcWith({ trickleMs: 20 });
    const gate = new BmcGate({ maxConcurrent: 1 });
    const { driver, sleeps } = driverFor(bmc, { gate, http: { timeoutMs: 300, retries: 1, retryDelayMs: 10 } });
    const err = await driver.powerState().catch((e: unknown) => e);
    assert.ok(err instanceof BmcUnreachableError, String(err));
    assert.match(err.message, /GET \/redfish\/v1: unreachable after 2 attempt\(s\): no complete answer within 300 ms/);
    assertNoSecret(err, bmc);
    assert.deepEqual(calls(bmc), ['GET /redfish/v1', 'GET /redfish/v1']);
    assert.deepEqual(sleeps, [10]);
    assert.equal(gate.limit.running, 0, 'the slot is free again');
    assert.equal(gate.backoff(`${bmc.address}:${bmc.port}`)?.failures, 1);
  });
});

describe('Redfish driver: inventory and power draw', () => {
  it('reads model, CPUs, memory, drives, MACs and BMC firmware', async () => {
    const bmc = await bmcWith();
    const { driver } = driverFor(bmc);
    assert.deepEqual(await driver.inventory(), {
      manufacturer: 'Forseti Labs',
      model: 'FL-100',
      serialNumber: 'SN-1',
      bmcFirmware: '2.81.81.81',
      processors: { count: 2, model: 'Intel(R) Xeon(R) Gold 6230' },
      memoryGiB: 192,
      storage: [
        { name: 'Disk 0', model: 'SSD-480', capacityBytes: 480_000_000_000 },
        { name: 'Disk 1', model: 'HDD-4T', capacityBytes: 4_000_000_000_000 },
      ],
      macs: ['52:54:00:aa:00:01', '52:54:00:aa:00:02'],
    });
    const simple = await bmcWith({}, { storage: 'simple' });
    assert.deepEqual((await driverFor(simple).driver.inventory()).storage, [{ name: 'SATA 1', capacityBytes: 1_000_000_000_000 }]);
  });

  it('power draw from EnvironmentMetrics, else the Power resource, else null', async () => {
    assert.equal(await driverFor(await bmcWith({}, { powerReading: 'environment' })).driver.powerDraw(), 231.5);
    assert.equal(await driverFor(await bmcWith({}, { powerReading: 'power' })).driver.powerDraw(), 187);
    assert.equal(await driverFor(await bmcWith({}, { powerReading: 'none' })).driver.powerDraw(), null);
  });
});

describe('Redfish driver: secrets', () => {
  it('the password travels only in the login body, never in a header or a URL', async () => {
    const bmc = await bmcWith();
    const { driver } = driverFor(bmc);
    await driver.setBootOverride({ device: 'pxe', persistent: false });
    await driver.powerCycle();
    await driver.close();
    for (const r of bmc.requests) {
      assert.ok(!r.path.includes(bmc.password));
      assert.ok(!JSON.stringify(r.headers).includes(bmc.password));
      if (!(r.method === 'POST' && r.path.endsWith('/Sessions'))) assert.ok(!JSON.stringify(r.body ?? '').includes(bmc.password));
    }
  });
});
