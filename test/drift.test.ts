import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectDrift, type BmcReading, type Drift, type DriftDesired, type DriftKind, type DriftObserved } from '../src/observe/drift.ts';
import { resolveHostDrift, type HostDriftPolicy } from '../src/observe/drift-policy.ts';
import { DEFAULT_DRIFT_POLICY, parseDriftPolicy, parseHostDrift, SITE_DRIFT_SCHEMA } from '../src/model/site-drift.ts';
import { HostSightings } from '../src/observe/drift-sightings.ts';
import { Ajv } from 'ajv';

const NOW = 10_000_000;
const GRACE = 90_000;
const SILENT = 600_000;
const policy = (mode: HostDriftPolicy['mode'] = 'detect', over: Partial<HostDriftPolicy> = {}): HostDriftPolicy => ({ mode, source: 'site', silentAfterMs: 0, bootOverrideGraceMs: GRACE, ...over });
const desired = (over: Partial<DriftDesired> = {}): DriftDesired => ({
  name: 'bld-003', role: 'talos-worker', boot: 'image', power: 'on', afterInstall: 'disk', digest: 'd2', revision: 'a1b2c3d4e5f6', drift: policy(), ...over,
});
const converged = (over: Partial<DriftObserved> = {}): DriftObserved => ({ phase: 'Converged', appliedRole: 'talos-worker', appliedDigest: 'd2', appliedRevision: 'a1b2c3d4e5f6', since: NOW - 3_600_000, ...over });
const provisioning = (over: Partial<DriftObserved> = {}): DriftObserved => ({ phase: 'Provisioning', step: 'power-cycled', attemptRole: 'talos-worker', attemptDigest: 'd2', since: NOW - GRACE - 1, stepSince: NOW - GRACE - 1, ...over });
const off: DriftObserved = { phase: 'Off', since: NOW - 1000 };
const reading = (over: Partial<BmcReading> = {}): BmcReading => ({ at: NOW, ...over });
const pxe = { device: 'pxe', persistent: false } as const;

const cases: Array<{ name: string; desired: DriftDesired; observed: DriftObserved; reading: BmcReading | null; kinds: DriftKind[]; act?: boolean[] }> = [
  { name: 'converged, on as declared: no drift', desired: desired(), observed: converged(), reading: reading({ power: 'on' }), kinds: [] },
  { name: 'blade powered off by hand', desired: desired(), observed: converged(), reading: reading({ power: 'off' }), kinds: ['powered-off'], act: [false] },
  { name: 'blade powered off by hand, heal', desired: desired({ drift: policy('heal') }), observed: converged(), reading: reading({ power: 'off' }), kinds: ['powered-off'], act: [true] },
  { name: 'blade powered off by hand, paused: reported, never acted on', desired: desired({ drift: policy('paused') }), observed: converged(), reading: reading({ power: 'off' }), kinds: ['powered-off'], act: [false] },
  { name: 'power unknown (manual BMC): no drift', desired: desired(), observed: converged(), reading: reading({ power: 'unknown' }), kinds: [] },
  { name: 'not read this scan: no power drift', desired: desired(), observed: converged(), reading: null, kinds: [] },
  { name: 'declared off, reads on', desired: desired({ power: 'off', drift: policy('heal') }), observed: off, reading: reading({ power: 'on' }), kinds: ['powered-on'], act: [true] },
  { name: 'role off, reads on', desired: desired({ role: 'off', boot: 'off' }), observed: off, reading: reading({ power: 'on' }), kinds: ['powered-on'] },
  { name: 'declared off, still converged (power-off under way): plan, not drift', desired: desired({ power: 'off' }), observed: converged(), reading: reading({ power: 'on' }), kinds: [] },
  { name: 'git revert: role changed, host converged in the old role reads off: plan, not drift', desired: desired({ role: 'slurm-compute', digest: 'd1' }), observed: converged(), reading: reading({ power: 'off' }), kinds: [] },
  { name: 'failed host reads off: not drift', desired: desired(), observed: converged({ phase: 'Failed' }), reading: reading({ power: 'off' }), kinds: [] },
  { name: 'boot override lost before DHCP', desired: desired({ drift: policy('heal') }), observed: provisioning(), reading: reading({ bootOverride: null }), kinds: ['boot-override-lost'], act: [true] },
  { name: 'boot override replaced by disk before DHCP', desired: desired(), observed: provisioning(), reading: reading({ bootOverride: { device: 'disk', persistent: false } }), kinds: ['boot-override-lost'] },
  { name: 'boot override still there', desired: desired(), observed: provisioning(), reading: reading({ bootOverride: pxe }), kinds: [] },
  { name: 'override gone within the grace (firmware consumed it at POST)', desired: desired(), observed: provisioning({ stepSince: NOW - 5_000 }), reading: reading({ bootOverride: null }), kinds: [] },
  { name: 'override not written yet (step requested): executor at work', desired: desired(), observed: provisioning({ step: 'requested' }), reading: reading({ bootOverride: null }), kinds: [] },
  { name: 'wipe boot lost its override before DHCP', desired: desired(), observed: provisioning({ phase: 'Wiping' }), reading: reading({ bootOverride: null }), kinds: ['boot-override-lost'] },
  { name: 'Wake-on-LAN host: nothing to read back, no BMC drift', desired: desired({ enrollable: false }), observed: provisioning(), reading: reading({ bootOverride: null, power: 'off' }), kinds: [] },
  { name: 'override gone after DHCP: consumed as it should be', desired: desired(), observed: provisioning({ step: 'dhcp' }), reading: reading({ bootOverride: null }), kinds: [] },
  { name: 'provisioning for an older digest: plan restarts it, not drift', desired: desired({ digest: 'd3' }), observed: provisioning(), reading: reading({ bootOverride: null }), kinds: [] },
  { name: 'BMC unreachable', desired: desired({ drift: policy('heal') }), observed: converged(), reading: reading({ error: 'host bld-003 (BMC 10.77.1.13:623): no answer' }), kinds: ['bmc-unreachable'], act: [false] },
  { name: 'phoned home in another role', desired: desired({ drift: policy('heal') }), observed: converged({ seen: { lastPhoneHome: { at: NOW - 1000, role: 'slurm-compute' }, lastSeen: NOW - 1000 } }), reading: null, kinds: ['role-mismatch'], act: [true] },
  { name: 'phone-home role from before convergence is history', desired: desired(), observed: converged({ seen: { lastPhoneHome: { at: NOW - 7_200_000, role: 'slurm-compute' } } }), reading: null, kinds: [] },
  { name: 'phoned home in its role', desired: desired(), observed: converged({ seen: { lastPhoneHome: { at: NOW - 1000, role: 'talos-worker' } } }), reading: null, kinds: [] },
  { name: 'silent past the configured time', desired: desired({ drift: policy('detect', { silentAfterMs: SILENT }) }), observed: converged({ seen: { lastSeen: NOW - SILENT - 1 } }), reading: null, kinds: ['host-silent'] },
  { name: 'renewed its lease recently', desired: desired({ drift: policy('detect', { silentAfterMs: SILENT }) }), observed: converged({ seen: { lastSeen: NOW - 1000 } }), reading: null, kinds: [] },
  { name: 'silence detection off by default', desired: desired(), observed: converged({ seen: { lastSeen: 0 } }), reading: null, kinds: [] },
  { name: 'off and unreachable and silent: unreachable only', desired: desired({ power: 'off', drift: policy('detect', { silentAfterMs: SILENT }) }), observed: off, reading: reading({ error: 'timeout' }), kinds: ['bmc-unreachable'] },
  { name: 'powered off by hand and silent', desired: desired({ drift: policy('heal', { silentAfterMs: SILENT }) }), observed: converged({ seen: { lastSeen: NOW - SILENT - 1 } }), reading: reading({ power: 'off' }), kinds: ['powered-off', 'host-silent'], act: [true, false] },
];

for (const c of cases) {
  test(`detectDrift: ${c.name}`, () => {
    const drifts = detectDrift(c.desired, c.observed, c.reading, NOW);
    assert.deepEqual(drifts.map((d) => d.kind), c.kinds);
    if (c.act) assert.deepEqual(drifts.map((d) => d.act), c.act);
    for (const d of drifts) {
      assert.equal(d.host, 'bld-003');
      assert.equal(d.revision, c.desired.revision);
      assert.equal(d.mode, c.desired.drift.mode);
      if (d.mode !== 'heal') assert.equal(d.act, false);
    }
  });
}

test('detectDrift: corrections and messages', () => {
  const heal = desired({ drift: policy('heal') });
  const one = (o: DriftObserved, r: BmcReading | null, d = heal): Drift => detectDrift(d, o, r, NOW)[0] as Drift;
  assert.deepEqual(one(converged(), reading({ power: 'off' })).correction, { kind: 'power-on' });
  assert.equal(one(converged(), reading({ power: 'off' })).message, 'bld-003 should be on (converged as talos-worker at a1b2c3d) but its BMC reads off');
  assert.deepEqual(one(off, reading({ power: 'on' }), desired({ power: 'off', drift: policy('heal') })).correction, { kind: 'power-off' });
  assert.deepEqual(one(provisioning(), reading({ bootOverride: null })).correction, { kind: 'boot-override', device: 'pxe' });
  assert.deepEqual(one(converged({ seen: { lastPhoneHome: { at: NOW, role: 'ceph-osd' } } }), null).correction, { kind: 'reprovision' });
  const unreachable = one(converged(), reading({ error: 'host bld-003 (BMC 10.77.1.13:623): no answer' }));
  assert.equal(unreachable.correction, null);
  assert.match(unreachable.message, /BMC 10\.77\.1\.13:623/);
});

test('drift policy: defaults, values, problems at dotted paths', () => {
  assert.deepEqual(parseDriftPolicy(undefined), { policy: DEFAULT_DRIFT_POLICY, problems: [] });
  const { policy: p, problems } = parseDriftPolicy({ policy: 'heal', scanCron: '*/2 * * * *', silentAfterSeconds: 7200, groups: { 'rack=a': 'paused', 'role=ceph': 'detect' } });
  assert.deepEqual(problems, []);
  assert.deepEqual(p, { policy: 'heal', scanCron: '*/2 * * * *', silentAfterSeconds: 7200, bootOverrideGraceSeconds: 90, groups: [{ label: 'rack', value: 'a', policy: 'paused' }, { label: 'role', value: 'ceph', policy: 'detect' }] });
  const bad = parseDriftPolicy({ policy: 'fix', scanCron: 'every 5 minutes', silentAfterSeconds: -1, groups: { rack: 'heal', 'rack=b': 'maybe' }, extra: 1 });
  assert.deepEqual(bad.problems.map((x) => x.path).sort(), ['drift.extra', 'drift.groups.rack', 'drift.groups.rack=b', 'drift.policy', 'drift.scanCron', 'drift.silentAfterSeconds']);
  assert.match(bad.problems.find((x) => x.path === 'drift.scanCron')?.message ?? '', /not a valid cron expression/);
  assert.deepEqual(parseHostDrift('heal'), { mode: 'heal', problems: [] });
  assert.equal(parseHostDrift('always').problems.length, 1);
});

test('drift policy: host over group over site; the most restrained matching group wins', () => {
  const { policy: site } = parseDriftPolicy({ policy: 'heal', groups: { 'rack=a': 'detect', 'owner=ceph': 'paused', 'tier=gold': 'heal' } });
  const table: Array<[Record<string, string>, 'heal' | 'detect' | 'paused' | undefined, string, string]> = [
    [{}, undefined, 'heal', 'site'],
    [{ rack: 'b' }, undefined, 'heal', 'site'],
    [{ rack: 'a' }, undefined, 'detect', 'group rack=a'],
    [{ rack: 'a', owner: 'ceph' }, undefined, 'paused', 'group owner=ceph'],
    [{ rack: 'a', tier: 'gold' }, undefined, 'detect', 'group rack=a'],
    [{ rack: 'a', owner: 'ceph' }, 'heal', 'heal', 'host'],
  ];
  for (const [labels, own, mode, source] of table) {
    const r = resolveHostDrift(site, own ? { labels, drift: own } : { labels });
    assert.deepEqual([r.mode, r.source], [mode, source], JSON.stringify(labels));
    assert.equal(r.bootOverrideGraceMs, 90_000);
  }
});

test('drift policy: the JSON Schema fragment accepts the example and rejects mistakes', () => {
  const validate = new Ajv({ strict: false }).compile(SITE_DRIFT_SCHEMA);
  assert.ok(validate({ policy: 'detect', scanCron: '*/5 * * * *', groups: { 'rack=a': 'heal' } }), JSON.stringify(validate.errors));
  assert.equal(validate({ policy: 'sometimes' }), false);
  assert.equal(validate({ groups: { rack: 'heal' } }), false);
  assert.equal(validate({ groups: { 'rack=a': 'maybe' } }), false);
});

test('HostSightings: DHCP and phone-home; silence measured from the start', () => {
  let now = 1000;
  const seen = new HostSightings(() => now);
  assert.deepEqual(seen.get('bld-001'), { lastSeen: 1000 });
  now = 2000;
  seen.dhcp('bld-001');
  now = 3000;
  seen.phoneHome('bld-002', 'ceph-osd');
  now = 4000;
  seen.dhcp('bld-002');
  assert.deepEqual(seen.get('bld-001'), { lastSeen: 2000 });
  assert.deepEqual(seen.get('bld-002'), { lastSeen: 4000, lastPhoneHome: { at: 3000, role: 'ceph-osd' } });
  seen.retain(new Set(['bld-002']));
  assert.deepEqual(seen.get('bld-001'), { lastSeen: 1000 });
});
