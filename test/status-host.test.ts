import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderHostStatus, parseHostStatus, nextHostStatus, renderSiteStatus, parseSiteStatus, StatusParseError, HISTORY_LIMIT, type HostStatus } from '../src/status/index.ts';

const sample: HostStatus = {
  host: 'bld-003',
  role: 'talos-worker',
  phase: 'Failed',
  step: 'kernel',
  revision: 'a'.repeat(40),
  attemptedRevision: 'b'.repeat(40),
  lastError: { message: 'kernel download failed: sha256 mismatch', step: 'kernel', ref: 'images/talos.yaml:4:11' },
  since: '2025-01-01T10:00:00.000Z',
  updated: '2025-01-01T10:05:00.000Z',
  history: [{ phase: 'Provisioning', step: 'dhcp', at: '2025-01-01T09:59:00.000Z', revision: 'b'.repeat(40) }],
};

test('host status renders to YAML and parses back', () => {
  const text = renderHostStatus(sample);
  assert.match(text, /^host: bld-003\nrole: talos-worker\nphase: Failed\n/);
  assert.deepEqual(parseHostStatus(text), sample);
  const minimal: HostStatus = { host: 'h', role: 'r', phase: 'Pending', revision: null, attemptedRevision: null, lastError: null, since: 't', updated: 't' };
  assert.deepEqual(parseHostStatus(renderHostStatus(minimal)), minimal);
});

test('parseHostStatus rejects malformed documents', () => {
  assert.throws(() => parseHostStatus('host: h\nrole: r\nphase: Sleeping\nsince: t\nupdated: t\n'), StatusParseError);
  assert.throws(() => parseHostStatus('- a\n'), StatusParseError);
  assert.throws(() => parseHostStatus('host: [\n'), StatusParseError);
  assert.throws(() => parseHostStatus(renderHostStatus({ ...sample, step: 'bogus' as 'dhcp' })), StatusParseError);
});

test('nextHostStatus moves since and history only on phase/step changes, keeping the last five', () => {
  let s = nextHostStatus('h', null, { role: 'r', phase: 'Pending', attemptedRevision: 'c1' }, new Date('2025-01-01T00:00:00Z'));
  assert.equal(s.since, '2025-01-01T00:00:00.000Z');
  s = nextHostStatus('h', s, { role: 'r', phase: 'Pending' }, new Date('2025-01-01T00:01:00Z'));
  assert.equal(s.since, '2025-01-01T00:00:00.000Z');
  assert.equal(s.updated, '2025-01-01T00:01:00.000Z');
  assert.equal(s.history?.length, 1);
  const steps = ['power-cycled', 'dhcp', 'script', 'kernel', 'phone-home'] as const;
  steps.forEach((step, i) => {
    s = nextHostStatus('h', s, { role: 'r', phase: 'Provisioning', step }, new Date(Date.UTC(2025, 0, 1, 0, 2 + i)));
  });
  s = nextHostStatus('h', s, { role: 'r', phase: 'Converged', revision: 'c1', lastError: null }, new Date('2025-01-01T00:10:00Z'));
  assert.equal(s.history?.length, HISTORY_LIMIT);
  assert.deepEqual(s.history?.map((t) => t.step ?? t.phase), ['dhcp', 'script', 'kernel', 'phone-home', 'Converged']);
  assert.equal(s.revision, 'c1');
  assert.equal(s.attemptedRevision, 'c1');
  assert.equal(s.since, '2025-01-01T00:10:00.000Z');
  assert.deepEqual(parseHostStatus(renderHostStatus(s)), s);
});

test('site status renders and parses', () => {
  const site = { revision: 'a'.repeat(40), rejected: { revision: 'b'.repeat(40), errors: ['hosts/bld-003.yaml:3:7: unknown profile "talos-wrker"'] }, updated: '2025-01-01T00:00:00.000Z' };
  assert.deepEqual(parseSiteStatus(renderSiteStatus(site)), site);
  const fresh = { revision: null, rejected: null, updated: 't' };
  assert.deepEqual(parseSiteStatus(renderSiteStatus(fresh)), fresh);
  assert.throws(() => parseSiteStatus('revision: x\nrejected: { revision: y, errors: [1] }\nupdated: t\n'), StatusParseError);
});
