import { deepEqual, equal, match, ok } from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadLabOrThrow } from '../src/model/load.ts';
import type { Lab } from '../src/model/types.ts';
import { formatPlanMarkdown } from '../src/plan/format-markdown.ts';
import { formatPlanText } from '../src/plan/format-text.ts';
import { emptyObserved, observedAtBase } from '../src/plan/observed-state.ts';
import { planChanges } from '../src/plan/plan-changes.ts';
import type { HostChangeKind, ObservedState, Plan, PlanSide } from '../src/plan/plan-types.ts';
import { renderSide } from '../src/plan/render-side.ts';
import { parseInventory, type HostStatus } from '../src/status/host-status.ts';
import { observedFromStatus } from '../src/status/observed-from-status.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/plan/lab/', import.meta.url));
const LAB = await loadLabOrThrow(FIXTURE);
const AT = Date.parse('2026-11-22T12:00:00Z');
const BASE_REV = 'b'.repeat(40);
const HEAD_REV = 'c'.repeat(40);

function side(revision: string, edit?: (lab: Lab) => void): PlanSide {
  const lab = structuredClone(LAB);
  edit?.(lab);
  return renderSide(revision, lab);
}

function setRole(lab: Lab, host: string, role: string): void {
  const h = lab.hosts.get(host);
  ok(h, host);
  h.role = role;
}

function status(host: string, over: Partial<HostStatus>): HostStatus {
  return { host, role: 'worker', phase: 'Converged', revision: BASE_REV, attemptedRevision: BASE_REV, lastError: null, since: '2026-11-22T11:59:00Z', updated: '2026-11-22T11:59:00Z', ...over };
}

function fromStatus(base: PlanSide, files: Record<string, HostStatus>): ObservedState {
  return observedFromStatus({
    description: 'status branch forseti-status at 0123456789ab',
    at: AT,
    hosts: new Map(Object.entries(files)),
    renderedAt: (rev) => (rev === base.revision ? base.hosts : undefined),
    base,
  });
}

function changes(plan: Plan): Record<string, HostChangeKind> {
  return Object.fromEntries(plan.hosts.map((h) => [h.host, h.change]));
}

const UNCHANGED = { 'node-1': 'none', 'node-2': 'none', 'node-3': 'none', 'node-5': 'none', 'node-6': 'none' } as const;

interface Case {
  name: string;
  head: (lab: Lab) => void;
  observed?: (base: PlanSide) => ObservedState;
  expect: Record<string, HostChangeKind>;
  /** Host → the details it must say. */
  details?: Record<string, RegExp>;
  /** Host → the artifact files diffed. */
  diffs?: Record<string, string[]>;
}

const cases: Case[] = [
  { name: 'nothing changes', head: () => {}, expect: UNCHANGED, details: { 'node-1': /^converged$/ } },
  {
    name: 'role swap reprovisions',
    head: (lab) => setRole(lab, 'node-1', 'compute'),
    expect: { ...UNCHANGED, 'node-1': 'reprovision' },
    details: { 'node-1': /^reprovision from role worker to compute$/ },
    diffs: { 'node-1': ['boot.ipxe', 'cmdline', 'config-node.yaml'] },
  },
  {
    name: 'a new host is provisioned',
    head: (lab) => {
      const h = structuredClone(lab.hosts.get('node-6'));
      ok(h);
      lab.hosts.set('node-4', { ...h, name: 'node-4', macs: ['aa:bb:cc:00:00:04'], ip: '10.9.0.14' });
    },
    expect: { ...UNCHANGED, 'node-4': 'provision' },
    details: { 'node-4': /^new host: .*compute/ },
    diffs: { 'node-4': ['boot.ipxe', 'cmdline', 'config-node.yaml'] },
  },
  {
    name: 'a removed host is forgotten, without diffs',
    head: (lab) => lab.hosts.delete('node-3'),
    expect: { ...UNCHANGED, 'node-3': 'removed' },
    details: { 'node-3': /no power action \(it keeps running role compute\)/ },
    diffs: { 'node-3': [] },
  },
  {
    name: 'role off powers off',
    head: (lab) => setRole(lab, 'node-2', 'off'),
    expect: { ...UNCHANGED, 'node-2': 'power-off-by-hand' }, // node-2 is a Wake-on-LAN host: it cannot be powered off remotely
    details: { 'node-2': /^role off keeps the host off; node-2 cannot be powered off remotely \(Wake-on-LAN\): shut it down from its OS or by hand$/ },
    diffs: { 'node-2': ['boot.ipxe', 'cmdline'] },
  },
  {
    name: 'same role, changed cmdline: re-render only',
    head: (lab) => {
      const boot = lab.profiles.get('worker')?.boot;
      ok(boot?.kind === 'image');
      boot.cmdline += ' quiet';
    },
    expect: { ...UNCHANGED, 'node-1': 'rerender', 'node-2': 'rerender', 'node-5': 'rerender' },
    details: { 'node-5': /^role worker unchanged; new artifacts serve at the next boot$/ },
    diffs: { 'node-5': ['boot.ipxe', 'cmdline'], 'node-6': [] },
  },
  {
    name: 'a new wipe token wipes, then provisions',
    head: (lab) => {
      const h = lab.hosts.get('node-5');
      ok(h);
      h.wipe = 'w1';
    },
    expect: { ...UNCHANGED, 'node-5': 'wipe' },
    details: { 'node-5': /^wipe requested \(token w1\), then provision role worker$/ },
    diffs: { 'node-5': ['wipe.ipxe'] },
  },
  {
    name: 'the inventory on the status branch contradicts the new role: refused',
    head: (lab) => setRole(lab, 'node-1', 'compute'),
    observed: (base) => fromStatus(base, { 'node-1': { ...status('node-1', {}), inventory: { memoryGiB: 8 } } }),
    expect: { 'node-1': 'refused', 'node-2': 'provision', 'node-3': 'provision', 'node-5': 'provision', 'node-6': 'provision' },
    details: { 'node-1': /^role compute needs memoryGiB >= 16 but .*node-1 reports 8$/ },
  },
  {
    name: 'status branch: converged hosts at BASE, a failed one retried by the new commit',
    head: (lab) => {
      const boot = lab.profiles.get('worker')?.boot;
      ok(boot?.kind === 'image');
      boot.cmdline += ' quiet';
    },
    observed: (base) =>
      fromStatus(base, {
        'node-1': status('node-1', {}),
        'node-2': status('node-2', { phase: 'Failed', revision: null, lastError: { message: 'no phone-home', step: 'kernel' } }),
        'node-3': status('node-3', { role: 'compute' }),
        'node-5': status('node-5', { phase: 'Provisioning', step: 'kernel', revision: null }),
        'node-6': status('node-6', { role: 'compute' }),
      }),
    expect: { 'node-1': 'rerender', 'node-2': 'provision', 'node-3': 'none', 'node-5': 'provision', 'node-6': 'none' },
    details: { 'node-2': /^provision role worker$/ },
  },
  {
    name: 'a provisioning under way for the same artifacts is left alone',
    head: () => {},
    observed: (base) => fromStatus(base, { 'node-5': status('node-5', { phase: 'Provisioning', step: 'kernel', revision: null, since: '2026-11-22T11:59:30Z' }) }),
    expect: { 'node-1': 'provision', 'node-2': 'provision', 'node-3': 'provision', 'node-5': 'none', 'node-6': 'provision' },
    details: { 'node-5': /^provisioning role worker \(step kernel\); HEAD does not change it$/ },
  },
  {
    name: 'nothing observed: every host is new',
    head: () => {},
    observed: () => emptyObserved(AT, 'nothing known'),
    expect: { 'node-1': 'provision', 'node-2': 'provision', 'node-3': 'provision', 'node-5': 'provision', 'node-6': 'provision' },
  },
];

for (const c of cases) {
  test(`planChanges: ${c.name}`, () => {
    const base = side(BASE_REV);
    const head = side(HEAD_REV, c.head);
    const plan = planChanges(base, head, c.observed ? c.observed(base) : observedAtBase(base, AT));
    deepEqual(changes(plan), c.expect);
    for (const [host, re] of Object.entries(c.details ?? {})) match(plan.hosts.find((h) => h.host === host)?.details ?? '', re, host);
    for (const [host, files] of Object.entries(c.diffs ?? {})) deepEqual(plan.hosts.find((h) => h.host === host)?.diffs.map((d) => d.file), files, host);
    equal(plan.changed, Object.values(c.expect).some((k) => k !== 'none'));
    equal(Object.values(plan.summary).reduce((a, b) => a + b, 0), plan.hosts.length);
  });
}

test('planChanges: tokens are placeholders and secret configs are marked', () => {
  const base = side(BASE_REV);
  const plan = planChanges(base, side(HEAD_REV, (lab) => setRole(lab, 'node-1', 'compute')), observedAtBase(base, AT));
  const node1 = plan.hosts.find((h) => h.host === 'node-1');
  ok(node1);
  const config = node1.diffs.find((d) => d.artifact === 'config');
  equal(config?.secret, true);
  equal(node1.diffs.find((d) => d.artifact === 'cmdline')?.patch.split('\n').at(-2), '+console=ttyS0 role=compute cfg=http://10.9.0.2:8080/v1/hosts/node-1/config/node.yaml?token=<token> forseti.callback=http://10.9.0.2:8080/v1/phone-home forseti.token=<token>');
  for (const d of node1.diffs) ok(!/token=(?!<token>)/.test(d.patch), d.patch);
});

test('planChanges: an invalid BASE diffs against nothing and says so', () => {
  const head = side(HEAD_REV);
  const plan = planChanges({ revision: BASE_REV, lab: null, problems: ['hosts/node-1.yaml:1:1: broken'] }, head, emptyObserved(AT, 'BASE is invalid'));
  equal(plan.base.valid, false);
  deepEqual(plan.base.problems, ['hosts/node-1.yaml:1:1: broken']);
  match(plan.notes[0] ?? '', /^BASE bbbbbbbbbbbb is invalid \(1 problems\)/);
  ok(plan.hosts.every((h) => h.change === 'provision' && h.baseRole === null));
  match(plan.hosts[0]?.diffs[0]?.patch ?? '', /^--- \/dev\/null\n\+\+\+ b\/node-1\/boot.ipxe\n/);
});

test('observedFromStatus: a revision that cannot be loaded takes BASE artifacts, and says so', () => {
  const base = side(BASE_REV);
  const observed = fromStatus(base, { 'node-1': status('node-1', { revision: 'd'.repeat(40) }) });
  equal(observed.hosts.get('node-1')?.appliedDigest, base.hosts.get('node-1')?.desired.digest);
  deepEqual(observed.notes, [`revision dddddddddddd named on the status branch cannot be loaded here: its artifacts are taken as BASE's`]);
});

test('parseInventory: reads known fields, ignores wrong types', () => {
  deepEqual(parseInventory({ memoryGiB: 8, cpus: 'x', disks: [{}, {}], model: 'BL460c' }), { model: 'BL460c', memoryGiB: 8, disks: 2 });
  equal(parseInventory(null), undefined);
  equal(parseInventory('text'), undefined);
});

test('formatPlanText and formatPlanMarkdown: nothing changes', () => {
  const base = side(BASE_REV);
  const plan = planChanges(base, side(HEAD_REV), observedAtBase(base, AT));
  deepEqual(formatPlanText(plan).split('\n'), [
    'forseti plan: BASE bbbbbbbbbbbb → HEAD cccccccccccc',
    'observed: assumed: every host converged at BASE bbbbbbbbbbbb',
    'note: no status branch found: every host is taken as converged in its BASE role',
    '',
    'no changes: 5 hosts: 5 nothing',
    '',
    'converged by:',
    '  compute: phoneHome',
    '  worker: phoneHome',
    '',
  ]);
  match(formatPlanMarkdown(plan), /\*\*no changes: 5 hosts: 5 nothing\*\*\n\nconverged by: `compute` phoneHome · `worker` phoneHome\n\n<sub>/);
});

test('formatPlanMarkdown: what does not fit is counted, and cells are escaped', () => {
  const base = side(BASE_REV);
  const head = side(HEAD_REV, (lab) => {
    const boot = lab.profiles.get('compute')?.boot;
    ok(boot?.kind === 'image' && boot.config);
    boot.config.template += '# {{ host.name }} | *x*\n';
  });
  const plan = planChanges(base, head, observedAtBase(base, AT));
  const node3 = plan.hosts.findIndex((h) => h.host === 'node-3');
  plan.hosts[node3] = { ...plan.hosts[node3]!, details: 'a | b <c>' };
  const full = formatPlanMarkdown(plan);
  ok(full.includes('| `node-3` | re-render | a \\| b &lt;c&gt; |'), full);
  equal((full.match(/<details>/g) ?? []).length, 2);
  const small = formatPlanMarkdown(plan, full.length - 50);
  equal((small.match(/<details>/g) ?? []).length, 1);
  ok(small.includes('The diffs of 1 more host do not fit in one comment: run `forseti plan` locally.'), small);
  ok(small.length < full.length);
});
