// Host sightings survive a restart: a restarted agent does not forget when it last saw a host, and neither the
// restart nor the downtime before it makes a quiet host look silent.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectDrift, type DriftDesired, type DriftObserved } from '../src/observe/drift.ts';
import { HostSightings } from '../src/observe/drift-sightings.ts';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forseti-sightings-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const HOUR = 3_600_000;
const T0 = 1_000_000_000;
const desired = (name: string): DriftDesired => ({
  name, role: 'worker', boot: 'image', power: 'on', afterInstall: 'disk', digest: 'd1', revision: 'abcdef0123',
  drift: { mode: 'detect', source: 'site', silentAfterMs: 2 * HOUR, bootOverrideGraceMs: 90_000 },
});
const converged: DriftObserved = { phase: 'Converged', appliedRole: 'worker', appliedDigest: 'd1', since: T0 - 10 * HOUR };
const silent = (s: HostSightings, host: string, now: number): boolean =>
  detectDrift(desired(host), { ...converged, seen: s.get(host) }, null, now).some((d) => d.kind === 'host-silent');

test('sightings are saved in a batch, atomically, and loaded by the next run with silence measured over listening time', async () => {
  const file = join(dir, 'sightings.json');
  let now = T0;
  const first = new HostSightings(() => now, 60_000);
  await first.persistTo(file);
  first.dhcp('quiet');
  now += 1000;
  first.phoneHome('talker', 'worker');
  first.dhcp('stale');
  await assert.rejects(readFile(file), { code: 'ENOENT' }, 'batched: nothing written yet');
  now = T0 + 90 * 60_000;
  first.dhcp('quiet');
  await first.flush();
  const saved = JSON.parse(await readFile(file, 'utf8')) as { version: number; savedAt: number; hosts: Record<string, unknown> };
  assert.equal(saved.version, 1);
  assert.equal(saved.savedAt, now);
  assert.deepEqual(Object.keys(saved.hosts).sort(), ['quiet', 'stale', 'talker']);
  assert.deepEqual((await readdir(dir)).filter((f) => f.includes('.tmp')), [], 'written through a temporary file and renamed');

  // Down for 5 hours. 'stale' was last seen 90 min before the stop: after the restart it is 30 min from silent,
  // not already 6.5 hours past it. 'never' was not seen by either run: silence counts from this start.
  const downtime = 5 * HOUR;
  now += downtime;
  const restart = now;
  const second = new HostSightings(() => now);
  await second.persistTo(file);
  assert.deepEqual(second.get('talker').lastPhoneHome, { at: T0 + 1000, role: 'worker' }, 'the phone-home role is remembered as it was');
  assert.equal(silent(second, 'stale', now), false);
  assert.equal(silent(second, 'never', now), false);
  assert.equal(silent(second, 'quiet', now), false);
  now = restart + 31 * 60_000;
  assert.equal(silent(second, 'stale', now), true, 'a host already quiet before the restart is found without waiting the full time again');
  assert.equal(silent(second, 'talker', now), true);
  assert.equal(silent(second, 'quiet', now), false);
  assert.equal(silent(second, 'never', now), false);
  now = restart + 2 * HOUR + 1;
  assert.equal(silent(second, 'never', now), true);
});

test('a damaged or foreign sightings file is ignored (silence counts from the start), and replaced on the next save', async () => {
  const file = join(dir, 'broken.json');
  await writeFile(file, '{"version": 1, "savedAt": "yesterday"');
  let now = T0;
  const warnings: string[] = [];
  const log = { warn: (_o: unknown, msg: string) => void warnings.push(msg) } as unknown as Parameters<HostSightings['persistTo']>[1];
  const s = new HostSightings(() => now, 10);
  await s.persistTo(file, log);
  assert.equal(warnings.length, 1);
  assert.deepEqual(s.get('h'), { lastSeen: T0 });
  now += 5;
  s.dhcp('h');
  s.retain(new Set(['h']));
  await s.flush();
  assert.deepEqual(JSON.parse(await readFile(file, 'utf8')).hosts, { h: { lastSeen: T0 + 5 } });
});
