// The vendor matrix: the real Redfish driver against every personality of the fixture BMC (HPE iLO 4 and 5, Dell
// iDRAC 9, Supermicro, Lenovo XCC, OpenBMC bmcweb, a service without sessions, one that keeps no Once), each cell
// worked out from what went over the wire, compared with test/fixtures/redfish/matrix.ts, and that table with the
// README's.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { CommandQueue } from '../src/bmc/command-queue.ts';
import { BootOnceNotKeptError } from '../src/bmc/driver.ts';
import { BmcGate } from '../src/bmc/gate.ts';
import { createRedfishDriver } from '../src/bmc/redfish-driver.ts';
import type { RedfishDriver } from '../src/bmc/redfish-driver.ts';
import { startRedfishBmc } from './fixtures/redfish/bmc.ts';
import type { LoggedRequest, RedfishBmc } from './fixtures/redfish/bmc.ts';
import { EXPECTED, OPERATIONS, renderMatrix } from './fixtures/redfish/matrix.ts';
import type { Operation } from './fixtures/redfish/matrix.ts';
import { PERSONALITIES } from './fixtures/redfish/personalities/index.ts';
import type { Personality } from './fixtures/redfish/personalities/index.ts';

const open: Array<RedfishBmc | RedfishDriver> = [];
after(async () => {
  for (const thing of open.reverse()) await thing.close();
});

const capitalised = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** Every cell of one personality's column, from what the driver sent and what it got back. */
async function column(p: Personality): Promise<Record<Operation, string>> {
  const bmc = await startRedfishBmc({ resources: p.resources(), behaviour: p.behaviour });
  open.push(bmc);
  const driver = createRedfishDriver(
    { host: p.id, address: bmc.address, port: bmc.port, username: bmc.username, password: bmc.password, ...(p.firmware ? { firmware: p.firmware } : {}) },
    {
      scheme: 'http',
      queue: new CommandQueue({ minIntervalMs: 0 }),
      gate: new BmcGate(),
      sleep: async () => undefined,
      powerPoll: { attempts: 10, intervalMs: 1 },
      postPoll: { attempts: 10, intervalMs: 1 },
    },
  );
  open.push(driver);
  const since = (from: number): LoggedRequest[] => bmc.requests.slice(from);
  const resetsIn = (rs: LoggedRequest[]) => rs.filter((r) => r.method === 'POST' && /ComputerSystem\.Reset$/.test(r.path));
  const typesIn = (rs: LoggedRequest[]): string => resetsIn(rs).map((r) => (r.body as { ResetType: string }).ResetType).join(', ');
  const cells = {} as Record<Operation, string>;

  const state = await driver.powerState();
  const login = await driver.loginMethod();
  cells.login = login?.kind === 'session' ? 'session' : `Basic (${login?.tried.join('; ').includes('no session service') ? 'no session service' : 'session refused'})`;
  const systemPath = bmc.requests.find((r) => r.method === 'GET' && /\/Systems\/[^/]+$/.test(r.path))!.path;
  const doc = bmc.resource(systemPath) as { Oem?: { Hp?: { PostState?: string }; Hpe?: { PostState?: string } } };
  cells['power state'] = `${capitalised(state)}${doc.Oem?.Hp?.PostState ?? doc.Oem?.Hpe?.PostState ? ', PostState' : ''}`;

  let from = bmc.requests.length;
  await driver.powerOn(); // already on
  const onWhenOn = resetsIn(since(from));
  from = bmc.requests.length;
  await driver.powerOff();
  cells.off = typesIn(since(from));
  from = bmc.requests.length;
  await driver.powerOn();
  const notes = [...(onWhenOn.some((r) => r.status === 409) ? ['409 when on'] : []), ...(bmc.requests.some((r) => /ResetActionInfo$/.test(r.path)) ? ['ActionInfo'] : [])];
  cells.on = `${typesIn(since(from))}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`;
  from = bmc.requests.length;
  await driver.powerCycle();
  cells.cycle = typesIn(since(from));

  const bootCell = async (device: 'pxe' | 'disk'): Promise<string> => {
    const start = bmc.requests.length;
    const parts: string[] = [];
    try {
      await driver.setBootOverride({ device, persistent: false });
      parts.push('Once');
    } catch (err) {
      if (!(err instanceof BootOnceNotKeptError)) throw err;
      parts.push('Continuous (no Once)');
    }
    const patches = since(start).filter((r) => r.method === 'PATCH');
    const ok = patches.filter((r) => r.status >= 200 && r.status < 300);
    const boot = (r: LoggedRequest | undefined) => (r?.body as { Boot?: Record<string, string> } | undefined)?.Boot ?? {};
    if (patches.some((r) => /UnableToModifyDuringSystemPOST/.test(r.messageId ?? ''))) parts.push('after POST');
    if ('BootSourceOverrideMode' in boot(patches[0]) && !('BootSourceOverrideMode' in boot(ok.at(-1)))) parts.push('without Mode');
    if (ok.length > 1 && !('BootSourceOverrideMode' in boot(ok[0])) && 'BootSourceOverrideMode' in boot(ok.at(-1))) parts.push('Mode sent again');
    if (ok.at(-1)?.ifMatch !== undefined) parts.push('If-Match');
    return parts.join(', ');
  };
  cells['PXE once'] = await bootCell('pxe');
  cells.disk = await bootCell('disk');

  from = bmc.requests.length;
  const inv = await driver.inventory();
  const nicsRead = since(from).some((r) => /EthernetInterfaces$/.test(r.path));
  cells.inventory = [
    ...(inv.model ? ['model'] : []),
    ...(inv.processors ? ['CPUs'] : []),
    ...(inv.memoryGiB !== undefined ? ['memory'] : []),
    ...(inv.storage ? [`${inv.storage.length} drives`] : []),
    ...(inv.macs ? [nicsRead ? 'MACs' : 'MACs (HostCorrelation)'] : []),
    ...(inv.bmcFirmware ? ['firmware'] : []),
  ].join(', ');

  from = bmc.requests.length;
  const watts = await driver.powerDraw();
  const environment = since(from).some((r) => /EnvironmentMetrics$/.test(r.path) && r.status === 200);
  cells['power draw'] = watts === null ? 'none reported' : `${watts} W (${environment ? 'EnvironmentMetrics' : 'Power'})`;
  return cells;
}

describe('Redfish vendor matrix', () => {
  const seen: Record<string, Record<Operation, string>> = {};
  for (const p of PERSONALITIES) {
    it(`${p.title}: every operation as the table says`, async () => {
      seen[p.id] = await column(p);
      assert.deepEqual(seen[p.id], EXPECTED[p.id]);
    });
  }

  it('the table has a cell for every operation of every personality, and the README shows exactly this table', () => {
    assert.deepEqual(Object.keys(EXPECTED).sort(), PERSONALITIES.map((p) => p.id).sort());
    for (const p of PERSONALITIES) assert.deepEqual(Object.keys(EXPECTED[p.id]!), [...OPERATIONS]);
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    assert.ok(readme.includes(renderMatrix()), `README.md must contain the matrix as test/fixtures/redfish/matrix.ts renders it:\n${renderMatrix()}`);
  });
});
