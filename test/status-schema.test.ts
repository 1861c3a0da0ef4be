// The status branch's files, as the agent's writers render them, against their published JSON Schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextHostStatus, renderHostStatus, renderSiteStatus, type HostStatus, type SiteStatus } from '../src/status/index.ts';
import { statusFileProblems } from './fixtures/status-schema.ts';

const rev = (c: string): string => c.repeat(40);
const full: HostStatus = {
  host: 'bld-003',
  role: 'talos-worker',
  phase: 'Failed',
  step: 'kernel',
  sync: 'OutOfSync',
  health: 'Degraded',
  revision: rev('a'),
  attemptedRevision: rev('b'),
  lastError: { message: 'kernel download failed: sha256 mismatch', step: 'kernel', ref: 'images/talos.yaml:4:11' },
  since: '2025-01-01T10:00:00.000Z',
  updated: '2025-01-01T10:05:00.000Z',
  inventory: { model: 'ProLiant BL460c Gen8', memoryGiB: 64, cpus: 2 },
  wipedToken: 'w-1',
  history: [{ phase: 'Provisioning', step: 'dhcp', at: '2025-01-01T09:59:00.000Z', revision: rev('b'), message: 'dhcp offer' }],
  actions: [{ action: 'provision', outcome: 'failed', revision: rev('b'), started: '2025-01-01T09:58:00.000Z', finished: '2025-01-01T10:00:00.000Z', durationMs: 120000, reason: 'role changed', message: 'sha256 mismatch' }],
};

test('a host file with every field, and a minimal one, match status-host.schema.json', () => {
  assert.deepEqual(statusFileProblems('hosts/bld-003.yaml', renderHostStatus(full)), []);
  const first = nextHostStatus('h', null, { role: 'worker', phase: 'Pending' }, new Date('2025-01-01T00:00:00Z'));
  assert.deepEqual(statusFileProblems('hosts/h.yaml', renderHostStatus(first)), []);
});

test('a site file with a rejection and reconciles, and the first one, match status-site.schema.json', () => {
  const site: SiteStatus = {
    revision: rev('a'),
    rejected: { revision: rev('c'), errors: ['hosts/bld-001.yaml:4:7: unknown role'] },
    updated: '2025-01-01T10:05:00.000Z',
    sync: 'OutOfSync',
    health: 'Healthy',
    reconciles: [
      { revision: rev('a'), result: 'applied', started: '2025-01-01T10:00:00.000Z', finished: '2025-01-01T10:00:01.300Z', durationMs: 1300, stages: { validate: 120, secrets: 2, images: 0, render: 900, activate: 278 }, hostsActedOn: 3, actions: { provision: 2, rerender: 1 } },
      { revision: rev('c'), result: 'rejected', started: '2025-01-01T10:04:00.000Z', stages: { validate: 80 }, problems: 1, hostsActedOn: 0 },
    ],
  };
  assert.deepEqual(statusFileProblems('site.yaml', renderSiteStatus(site)), []);
  assert.deepEqual(statusFileProblems('site.yaml', renderSiteStatus({ revision: null, rejected: null, updated: '2025-01-01T00:00:00.000Z' })), []);
});

test('the schemas refuse what a reader could not trust', () => {
  const text = renderHostStatus(full);
  assert.match(statusFileProblems('hosts/x.yaml', text.replace('phase: Failed', 'phase: Asleep')).join(), /allowed values/);
  assert.match(statusFileProblems('hosts/x.yaml', text.replace(/^since: .*\n/m, '')).join(), /required property 'since'/);
  assert.match(statusFileProblems('hosts/x.yaml', `${text}favourite: blue\n`).join(), /additional properties/);
  assert.match(statusFileProblems('site.yaml', 'revision: null\nrejected: {revision: x}\nupdated: "2025-01-01T00:00:00Z"\n').join(), /errors/);
});
