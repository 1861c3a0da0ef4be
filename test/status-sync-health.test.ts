// Sync and health are decided in one place (src/observe/sync-health.ts): per host from the desired state, the
// observed one and the drift; for the site from its hosts. The agent's /v1/status and its status branch agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { AgentBootBackend } from '../src/serve/boot-backend.ts';
import { HostTracker } from '../src/observe/host-tracker.ts';
import { StatusPublisher } from '../src/status/status-publisher.ts';
import { createLogger } from '../src/log.ts';
import type { Drift, DriftKind } from '../src/observe/drift.ts';
import type { Journal } from '../src/observe/journal.ts';
import type { DesiredHost, ObservedHost } from '../src/core/host-state.ts';
import type { Generation } from '../src/render/generation.ts';
import type { ImageCache } from '../src/render/image-cache.ts';
import { parseHostStatus, parseSiteStatus, type StatusWriter } from '../src/status/index.ts';
import { siteSyncHealth, syncAndHealth, syncHealthInput, type HealthState, type SyncHealthInput, type SyncState } from '../src/observe/sync-health.ts';

const NOW = 10_000_000;
const desired = (over: Partial<DesiredHost> = {}): DesiredHost => ({ name: 'bld-003', role: 'talos-worker', boot: 'image', power: 'on', afterInstall: 'disk', digest: 'd2', revision: 'a1b2c3d4e5f6', ...over });
const converged = (over: Partial<ObservedHost> = {}): ObservedHost => ({ phase: 'Converged', appliedRole: 'talos-worker', appliedDigest: 'd2', appliedRevision: 'a1b2c3d4e5f6', since: NOW - 3_600_000, ...over });
const provisioning = (over: Partial<ObservedHost> = {}): ObservedHost => ({ phase: 'Provisioning', step: 'power-cycled', attemptRole: 'talos-worker', attemptDigest: 'd2', since: NOW, ...over });
const off: ObservedHost = { phase: 'Off', since: NOW };
const drift = (kind: DriftKind): Drift => ({ host: 'bld-003', kind, message: `${kind} here`, revision: 'r', mode: 'detect', policySource: 'site', correction: null, act: false });

const hostCases: Array<{ name: string; desired: DesiredHost; observed: ObservedHost | undefined; drifts?: DriftKind[]; sync: SyncState; health: HealthState }> = [
  { name: 'converged at the desired digest', desired: desired(), observed: converged(), sync: 'Synced', health: 'Healthy' },
  { name: 'converged, new artifacts not yet re-rendered', desired: desired({ digest: 'd9' }), observed: converged(), sync: 'OutOfSync', health: 'Healthy' },
  { name: 'converged in the old role after a commit', desired: desired({ role: 'slurm-compute' }), observed: converged(), sync: 'OutOfSync', health: 'Healthy' },
  { name: 'provisioning', desired: desired(), observed: provisioning(), sync: 'OutOfSync', health: 'Progressing' },
  { name: 'wiping before the role', desired: desired(), observed: provisioning({ phase: 'Wiping' }), sync: 'OutOfSync', health: 'Progressing' },
  { name: 'failed', desired: desired(), observed: provisioning({ phase: 'Failed', lastError: { message: 'no phone-home' } }), sync: 'OutOfSync', health: 'Degraded' },
  { name: 'enrolling', desired: desired(), observed: { phase: 'Enrolling', since: NOW }, sync: 'OutOfSync', health: 'Progressing' },
  { name: 'enrolment failing (BMC refuses)', desired: desired(), observed: { phase: 'Enrolling', since: NOW, lastError: { message: 'auth' } }, sync: 'OutOfSync', health: 'Degraded' },
  { name: 'enrolled, role not installed yet', desired: desired(), observed: { phase: 'Ready', since: NOW }, sync: 'OutOfSync', health: 'Healthy' },
  { name: 'new host, nothing observed yet (Pending)', desired: desired(), observed: { phase: 'Pending', since: NOW }, sync: 'Unknown', health: 'Missing' },
  { name: 'never observed', desired: desired(), observed: undefined, sync: 'Unknown', health: 'Missing' },
  { name: 'off as declared (power: off)', desired: desired({ power: 'off' }), observed: off, sync: 'Synced', health: 'Healthy' },
  { name: 'off as declared (role off)', desired: desired({ role: 'off', boot: 'off' }), observed: off, sync: 'Synced', health: 'Healthy' },
  { name: 'declared off, still on', desired: desired({ role: 'off', boot: 'off' }), observed: converged(), sync: 'OutOfSync', health: 'Progressing' },
  { name: 'off but declared on', desired: desired(), observed: off, sync: 'OutOfSync', health: 'Missing' },
  { name: 'converged, powered off by hand (drift)', desired: desired(), observed: converged(), drifts: ['powered-off'], sync: 'OutOfSync', health: 'Degraded' },
  { name: 'declared off, reads on (drift)', desired: desired({ power: 'off' }), observed: off, drifts: ['powered-on'], sync: 'OutOfSync', health: 'Degraded' },
  { name: 'reports another role (drift)', desired: desired(), observed: converged(), drifts: ['role-mismatch'], sync: 'OutOfSync', health: 'Degraded' },
  { name: 'provisioning lost its boot override (drift)', desired: desired(), observed: provisioning(), drifts: ['boot-override-lost'], sync: 'OutOfSync', health: 'Degraded' },
  { name: 'BMC unreachable: disappeared', desired: desired(), observed: converged(), drifts: ['bmc-unreachable'], sync: 'Unknown', health: 'Missing' },
  { name: 'silent (no DHCP, no phone-home): disappeared', desired: desired(), observed: converged(), drifts: ['host-silent'], sync: 'Unknown', health: 'Missing' },
  { name: 'silent and powered off: cannot be seen wins', desired: desired(), observed: converged(), drifts: ['powered-off', 'host-silent'], sync: 'Unknown', health: 'Missing' },
  { name: 'failed and unreachable', desired: desired(), observed: provisioning({ phase: 'Failed' }), drifts: ['bmc-unreachable'], sync: 'Unknown', health: 'Missing' },
];

for (const c of hostCases) {
  test(`host sync/health: ${c.name}`, () => {
    assert.deepEqual(syncAndHealth(syncHealthInput(c.desired, c.observed, (c.drifts ?? []).map(drift))), { sync: c.sync, health: c.health });
  });
}

test('host sync/health from what an older status file or a bare backend has: a missing field never makes it worse', () => {
  const cases: Array<[SyncHealthInput, SyncState, HealthState]> = [
    [{ role: 'a', phase: 'Converged', appliedRole: 'a' }, 'Synced', 'Healthy'],
    [{ role: 'b', phase: 'Converged', appliedRole: 'a' }, 'OutOfSync', 'Healthy'],
    [{ role: 'a', phase: 'Converged' }, 'Synced', 'Healthy'],
    [{ role: 'a', phase: 'Converged', digest: 'd1' }, 'Synced', 'Healthy'],
    [{ role: 'worker', phase: 'Off' }, 'Synced', 'Healthy'],
    [{ role: 'a', phase: 'Provisioning' }, 'OutOfSync', 'Progressing'],
    [{ role: 'a', phase: 'Enrolling', lastError: { message: 'BMC unreachable' } }, 'OutOfSync', 'Degraded'],
    [{ role: 'a', phase: 'Failed' }, 'OutOfSync', 'Degraded'],
    [{ role: 'a', phase: 'Pending' }, 'Unknown', 'Missing'],
    [{ role: 'a', phase: 'Sideways' }, 'Unknown', 'Missing'],
  ];
  for (const [input, sync, health] of cases) assert.deepEqual(syncAndHealth(input), { sync, health }, JSON.stringify(input));
});

test('site sync/health: aggregated from the hosts; a rejected head is OutOfSync; nothing applied is Unknown', () => {
  const h = (sync: SyncState, health: HealthState) => ({ sync, health });
  const applied = { revision: 'r1', rejected: false };
  const cases: Array<[string, Array<ReturnType<typeof h>>, { revision: string | null; rejected: boolean }, SyncState, HealthState]> = [
    ['all synced and healthy', [h('Synced', 'Healthy'), h('Synced', 'Healthy')], applied, 'Synced', 'Healthy'],
    ['no hosts', [], applied, 'Synced', 'Healthy'],
    ['one provisioning', [h('Synced', 'Healthy'), h('OutOfSync', 'Progressing')], applied, 'OutOfSync', 'Progressing'],
    ['one unknown, none out of sync', [h('Synced', 'Healthy'), h('Unknown', 'Missing')], applied, 'Unknown', 'Missing'],
    ['out of sync wins over unknown', [h('Unknown', 'Missing'), h('OutOfSync', 'Progressing')], applied, 'OutOfSync', 'Missing'],
    ['degraded is the worst health', [h('OutOfSync', 'Degraded'), h('Unknown', 'Missing'), h('OutOfSync', 'Progressing')], applied, 'OutOfSync', 'Degraded'],
    ['all synced but the newest commit was rejected', [h('Synced', 'Healthy')], { revision: 'r1', rejected: true }, 'OutOfSync', 'Healthy'],
    ['before the first commit applied', [], { revision: null, rejected: false }, 'Unknown', 'Healthy'],
  ];
  for (const [name, hosts, site, sync, health] of cases) {
    const got = siteSyncHealth(hosts, site);
    assert.deepEqual([got.sync, got.health], [sync, health], name);
    assert.equal(Object.values(got.counts.sync).reduce((a, b) => a + b, 0), hosts.length, name);
  }
  assert.deepEqual(siteSyncHealth([h('Synced', 'Healthy'), h('OutOfSync', 'Degraded')], applied).counts, {
    sync: { Synced: 1, OutOfSync: 1, Unknown: 0 },
    health: { Healthy: 1, Progressing: 0, Degraded: 1, Missing: 0 },
  });
});

/** A status writer that keeps the files it was given. */
function memoryWriter(): { writer: StatusWriter; files: Map<string, string | null> } {
  const files = new Map<string, string | null>();
  // Only set/remove/stop are used by the publisher; the rest of StatusWriter talks to a Git server.
  const writer = { set: (p: string, c: string) => void files.set(p, c), remove: (p: string) => void files.set(p, null), stop: async () => undefined } as unknown as StatusWriter;
  return { writer, files };
}

test('the status branch and /v1/status show the same sync and health, drift included, from the one function', async () => {
  const log = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const names = ['ok', 'drifted', 'silent', 'failed', 'new'];
  const hosts = new Map(names.map((n) => [n, { desired: desired({ name: n }) }]));
  // The publisher and the backend read desired state, lab hosts and the revision only.
  const generation = { revision: 'a1b2c3d4e5f6', id: 'g1', hosts, lab: { hosts: new Map(), site: {}, images: new Map(), profiles: new Map() }, byMac: new Map() } as unknown as Generation;
  const journal = { load: async () => new Map(), save: async () => undefined } as unknown as Journal;
  const tracker = new HostTracker(journal, log, () => NOW);
  const drifts = new Map<string, Drift[]>([['drifted', [drift('powered-off')]], ['silent', [drift('host-silent')]]]);
  const { writer, files } = memoryWriter();
  const publisher = new StatusPublisher(writer, () => generation, { drifts: (h) => drifts.get(h) ?? [] });
  tracker.onChange((host, state, event) => publisher.host(host, state, event));
  const backend = new AgentBootBackend(() => generation, tracker, {} as ImageCache, Buffer.alloc(32), log, {
    drifts: (h) => drifts.get(h) ?? [],
    site: () => publisher.site(),
    actions: (h) => publisher.actionsOf(h),
  });
  for (const n of ['ok', 'drifted', 'silent']) {
    await tracker.record(n, { kind: 'provision-started', role: 'talos-worker', digest: 'd2', revision: 'a1b2c3d4e5f6' });
    await tracker.record(n, { kind: 'phone-home', role: 'talos-worker' });
  }
  await tracker.record('failed', { kind: 'failed', message: 'no phone-home within 900 s', step: 'kernel' });
  publisher.host('new', tracker.get('new'));
  publisher.applied('a1b2c3d4e5f6');
  await publisher.stop();

  const view = backend.statusView();
  const expected: Record<string, [SyncState, HealthState]> = { ok: ['Synced', 'Healthy'], drifted: ['OutOfSync', 'Degraded'], silent: ['Unknown', 'Missing'], failed: ['OutOfSync', 'Degraded'], new: ['Unknown', 'Missing'] };
  for (const [name, [sync, health]] of Object.entries(expected)) {
    const onBranch = parseHostStatus(files.get(`hosts/${name}.yaml`) ?? '');
    assert.deepEqual([onBranch.sync, onBranch.health], [sync, health], `${name} on the status branch`);
    assert.deepEqual([view.hosts[name]?.sync, view.hosts[name]?.health], [sync, health], `${name} in /v1/status`);
  }
  assert.deepEqual(view.hosts['drifted']?.drift, ['powered-off here']);
  const site = parseSiteStatus(files.get('site.yaml') ?? '');
  assert.deepEqual([site.sync, site.health], ['OutOfSync', 'Degraded']);
  assert.deepEqual([view.site?.sync, view.site?.health], ['OutOfSync', 'Degraded']);

  // The drift clears: the publisher decides again when told, without a lifecycle event.
  drifts.delete('drifted');
  publisher.refresh('drifted');
  assert.equal(parseHostStatus(files.get('hosts/drifted.yaml') ?? '').sync, 'Synced');
  assert.equal(backend.statusView().hosts['drifted']?.health, 'Healthy');
});

test('a new generation decides again only the hosts whose role, power, boot or digest changed, with the same result as deciding all', async () => {
  const gen = (revision: string, desires: DesiredHost[]) =>
    ({ revision, id: revision, hosts: new Map(desires.map((d) => [d.name, { desired: { ...d, revision } }])), lab: { hosts: new Map(), site: {}, images: new Map(), profiles: new Map() }, byMac: new Map() }) as unknown as Generation;
  const first = gen('r1', ['same', 'role', 'digest', 'power', 'left'].map((name) => desired({ name })));
  const second = gen('r2', [desired({ name: 'same' }), desired({ name: 'role', role: 'slurm-compute' }), desired({ name: 'digest', digest: 'd9' }), desired({ name: 'power', power: 'off' }), desired({ name: 'new' })]);
  const observed = (host: string): ObservedHost => (host === 'new' ? { phase: 'Pending', since: NOW } : converged());
  const publish = (all: boolean) => {
    let current = first;
    const { writer, files } = memoryWriter();
    const publisher = new StatusPublisher(writer, () => current);
    for (const name of first.hosts.keys()) publisher.host(name, observed(name));
    publisher.applied('r1');
    files.clear();
    current = second;
    publisher.applied('r2');
    if (all) for (const name of second.hosts.keys()) publisher.host(name, observed(name));
    else publisher.generationServed(first, observed);
    return files;
  };
  const some = publish(false);
  const hostFiles = (files: Map<string, string | null>) => [...files.keys()].filter((p) => p.startsWith('hosts/')).sort();
  assert.deepEqual(hostFiles(some), ['hosts/digest.yaml', 'hosts/left.yaml', 'hosts/new.yaml', 'hosts/power.yaml', 'hosts/role.yaml']);
  assert.equal(some.get('hosts/left.yaml'), null, 'a host that left loses its file');
  const expected: Record<string, [SyncState, HealthState]> = { role: ['OutOfSync', 'Healthy'], digest: ['OutOfSync', 'Healthy'], power: ['OutOfSync', 'Progressing'], new: ['Unknown', 'Missing'] };
  for (const [name, [sync, health]] of Object.entries(expected)) {
    const status = parseHostStatus(some.get(`hosts/${name}.yaml`) ?? '');
    assert.deepEqual([status.sync, status.health], [sync, health], name);
  }
  await new Promise((resolve) => setImmediate(resolve));
  const all = publish(true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(hostFiles(all), hostFiles(some), 'deciding every host writes the same files');
  for (const path of hostFiles(all)) assert.equal(all.get(path) === null, some.get(path) === null, path);
  assert.deepEqual(parseSiteStatus(some.get('site.yaml') ?? '').sync, parseSiteStatus(all.get('site.yaml') ?? '').sync);
});
