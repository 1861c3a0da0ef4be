// The agent's drift loop tells status when a host's drift changes (so its sync and health are decided again)
// and which healing actions it hands to the executor (so they show among the host's last actions).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import type { AgentAlerts } from '../src/alerts/agent-alerts.ts';
import { DriftLoop } from '../src/observe/drift-loop.ts';
import type { Executor } from '../src/bmc/executor.ts';
import { HostTracker } from '../src/observe/host-tracker.ts';
import type { BmcDriver } from '../src/bmc/driver.ts';
import type { PowerState } from '../src/core/power.ts';
import { createLogger } from '../src/log.ts';
import type { Site } from '../src/model/types.ts';
import { DEFAULT_DRIFT_POLICY } from '../src/model/site-drift.ts';
import { HostSightings } from '../src/observe/drift-sightings.ts';
import type { Journal } from '../src/observe/journal.ts';
import type { Action } from '../src/plan/types.ts';
import type { DesiredHost } from '../src/core/host-state.ts';
import type { Generation } from '../src/render/generation.ts';

const log = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

test('DriftLoop: driftChanged on detection and on clearing only; heal actions reported before they run', async () => {
  const desired: DesiredHost = { name: 'bld-001', role: 'worker', boot: 'image', power: 'on', afterInstall: 'disk', digest: 'd1', revision: 'rev1' };
  const site = { drift: { ...DEFAULT_DRIFT_POLICY, policy: 'heal' } } as unknown as Site;
  // DriftLoop reads the desired state, the lab's host labels and the site's drift policy.
  const generation = { revision: 'rev1', hosts: new Map([['bld-001', { desired }]]), lab: { hosts: new Map([['bld-001', { labels: {} }]]), site } } as unknown as Generation;
  const journal = { load: async () => new Map(), save: async () => undefined } as unknown as Journal;
  const tracker = new HostTracker(journal, log);
  await tracker.record('bld-001', { kind: 'provision-started', role: 'worker', digest: 'd1', revision: 'rev1' });
  await tracker.record('bld-001', { kind: 'phone-home', role: 'worker' });
  const ran: string[] = [];
  const executor = { isBusy: () => false, run: (_d: DesiredHost, a: Action) => void ran.push(a.kind) } as unknown as Executor;
  let power: PowerState = 'on';
  const driver = { kind: 'fake', powerState: async () => power, getBootOverride: async () => null } as unknown as BmcDriver;
  const alerts = { drift: () => undefined, cleared: () => undefined } as unknown as AgentAlerts;
  const changed: string[] = [];
  const started: string[] = [];
  const loop = new DriftLoop(() => generation, tracker, executor, new HostSightings(), () => driver, alerts, log, {
    driftChanged: (h) => void changed.push(h),
    actionStarted: (h, a, rev) => void started.push(`${h} ${a.kind} ${rev} ran=${ran.length}`),
  });
  loop.configure(site);
  try {
    await loop.scan();
    assert.deepEqual(changed, []);
    power = 'off';
    await loop.scan();
    assert.deepEqual(changed, ['bld-001']);
    assert.deepEqual(started, ['bld-001 power-on rev1 ran=0'], 'reported before the executor ran it');
    assert.deepEqual(ran, ['power-on']);
    assert.deepEqual(loop.driftsOf('bld-001').map((d) => d.kind), ['powered-off']);
    await loop.scan();
    assert.deepEqual(changed, ['bld-001'], 'the same drift again is no change');
    power = 'on';
    await loop.scan();
    assert.deepEqual(changed, ['bld-001', 'bld-001']);
    assert.deepEqual(loop.driftsOf('bld-001'), []);
  } finally {
    await loop.stop();
  }
});
