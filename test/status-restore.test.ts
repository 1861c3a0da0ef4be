// A restarted agent takes over the history it left on the status branch: the last reconciles, each host's file
// and actions, closing what the stop cut off as interrupted; the first commit applied prunes hosts that left.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StatusPublisher, type StatusSink } from '../src/status/status-publisher.ts';
import { HostActions, INTERRUPTED_MESSAGE } from '../src/observe/host-actions.ts';
import { ReconcileLog, type ActivityClock } from '../src/observe/reconcile-log.ts';
import { createLogger } from '../src/log.ts';
import type { ObservedHost } from '../src/core/host-state.ts';
import type { Generation } from '../src/render/generation.ts';
import type { HostAction, ReconcileRecord } from '../src/observe/activity.ts';
import { parseHostStatus, parseSiteStatus, renderHostStatus, renderSiteStatus, StatusWriter, type HostStatus } from '../src/status/index.ts';
import { parsePreviousStatus } from '../src/status/previous-status.ts';
import { readStatusFiles } from '../src/status/status-branch.ts';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { freeTcpPort } from './fixtures/free-port.ts';

const T0 = Date.parse('2026-11-22T10:00:00Z');
const iso = (ms: number): string => new Date(T0 + ms).toISOString();
const clock: ActivityClock = { wall: () => T0 + 600_000, mono: () => 0 };

const applied = (revision: string, at: number): ReconcileRecord => ({ revision, started: iso(at), finished: iso(at + 100), durationMs: 100, stages: { validate: 100 }, result: 'applied', hostsActedOn: 1, actions: { provision: 1 } });
const running = (action: string, revision: string, at: number): HostAction => ({ action, revision, started: iso(at), outcome: 'running' });
const provisioningAt = (revision: string): ObservedHost => ({ phase: 'Provisioning', step: 'power-cycled', attemptRevision: revision, since: T0 });

test('ReconcileLog.restore: the previous runs come first, a running one was interrupted, and they count no more actions', () => {
  const log = new ReconcileLog(clock);
  log.restore([applied('r1', 0), applied('r2', 1000), { revision: 'r3', started: iso(2000), stages: { validate: 5 }, result: 'running', hostsActedOn: 0 }]);
  log.actionStarted('h', 'provision', 'r2'); // a revision only a restored run has: not counted on it
  log.start('r3').finish('applied');
  log.actionStarted('h', 'provision', 'r3');
  assert.deepEqual(
    log.list().map((r) => [r.revision, r.result, r.finished === undefined, r.hostsActedOn]),
    [
      ['r1', 'applied', false, 1],
      ['r2', 'applied', false, 1],
      ['r3', 'interrupted', true, 0],
      ['r3', 'applied', false, 1],
    ],
  );
  for (let i = 4; i <= 5; i++) log.start(`r${i}`).finish('applied');
  assert.deepEqual(log.list().map((r) => `${r.revision} ${r.result}`), ['r2 applied', 'r3 interrupted', 'r3 applied', 'r4 applied', 'r5 applied'], 'five kept');
});

test('HostActions.restore: a provisioning the journal resumes stays open until its phone-home; anything else was interrupted', () => {
  const actions = new HostActions(() => T0 + 60_000);
  const done: HostAction = { action: 'enroll', revision: 'r1', started: iso(0), finished: iso(10), durationMs: 10, outcome: 'ok' };
  actions.restore('resumed', [done, running('provision', 'r1', 100)], provisioningAt('r1'));
  actions.restore('other-rev', [running('provision', 'r1', 100)], provisioningAt('r2'));
  actions.restore('wiped-journal', [running('provision', 'r1', 100)], { phase: 'Pending', since: T0 });
  actions.restore('power', [running('power-on', 'r1', 100)], { phase: 'Off', since: T0 });
  actions.restore('older', [running('rerender', 'r1', 100), running('provision', 'r1', 200)], provisioningAt('r1'));

  assert.deepEqual(actions.of('resumed').map((a) => a.outcome), ['ok', 'running']);
  assert.equal(actions.event('resumed', { kind: 'phone-home', role: 'worker' }, { phase: 'Converged', since: T0 + 60_000 }), true);
  assert.deepEqual(actions.of('resumed').at(-1), { action: 'provision', revision: 'r1', started: iso(100), outcome: 'ok', finished: iso(60_000), durationMs: 59_900 });
  for (const host of ['other-rev', 'wiped-journal', 'power']) {
    assert.deepEqual(actions.of(host), [{ ...actions.of(host)[0], outcome: 'interrupted', message: INTERRUPTED_MESSAGE }], host);
    assert.equal(actions.of(host)[0]?.finished, undefined, 'nobody saw it end');
  }
  assert.deepEqual(actions.of('older').map((a) => a.outcome), ['interrupted', 'running']);

  // A power-off by hand ends when the agent records the host off, as a power-off does.
  actions.started('wol', { kind: 'power-off-by-hand', reason: 'power schedule night' }, 'r1');
  assert.equal(actions.event('wol', { kind: 'powered-off' }, { phase: 'Off', since: T0 }), true);
  assert.equal(actions.of('wol')[0]?.outcome, 'ok');
});

test('parsePreviousStatus: a damaged or older file gives an empty history, never an error; every host file is listed', () => {
  const host = (name: string, extra: Partial<HostStatus> = {}): string =>
    renderHostStatus({ host: name, role: 'worker', phase: 'Converged', revision: 'r1', attemptedRevision: 'r1', lastError: null, since: iso(0), updated: iso(0), ...extra });
  const good = parsePreviousStatus(
    new Map([
      ['site.yaml', renderSiteStatus({ revision: 'r1', rejected: null, updated: iso(0), reconciles: [applied('r1', 0)] })],
      ['hosts/a.yaml', host('a', { actions: [running('provision', 'r1', 0)] })],
      ['hosts/old.yaml', host('old')], // an agent from before actions
      ['hosts/broken.yaml', 'host: broken\nphase: [unclosed\n'],
      ['hosts/stranger.yaml', host('a', { actions: [running('provision', 'r1', 0)] })],
      ['hosts/future.yaml', 'host: future\nphase: Hibernating\nactions: [{action: provision, revision: r1, started: x, outcome: ok}]\n'],
      ['README.md', 'not status'],
    ]),
  );
  assert.deepEqual(good.reconciles.map((r) => r.revision), ['r1']);
  assert.deepEqual([...good.hosts.keys()].sort(), ['a', 'broken', 'future', 'old', 'stranger']);
  assert.equal(good.hosts.get('a')?.actions.length, 1);
  assert.equal(good.hosts.get('a')?.status?.phase, 'Converged');
  assert.deepEqual(good.hosts.get('old')?.actions, []);
  assert.deepEqual(good.hosts.get('broken'), { status: null, actions: [] });
  assert.deepEqual(good.hosts.get('stranger'), { status: null, actions: [] }, 'a file naming another host is not this one');
  assert.deepEqual(good.hosts.get('future')?.actions.map((a) => a.outcome), ['ok'], 'a phase this agent does not know still gives its actions');

  for (const site of ['revision: r1\nupdated: x\n', 'revision: r1\nreconciles: 7\n', ': : [', '- a list\n', 'reconciles: [{revision: r1}, 3, {revision: r2, started: x, result: applied}]\n']) {
    const parsed = parsePreviousStatus(new Map([['site.yaml', site]]));
    assert.ok(parsed.reconciles.every((r) => r.revision === 'r2'), site);
  }
});

function sink(files: Map<string, string | null>): StatusSink {
  return {
    set: (p, c) => void files.set(p, c),
    remove: (p) => void files.set(p, null),
    stop: async () => undefined,
    readBranch: async () => new Map([...files].filter((e): e is [string, string] => e[1] !== null)),
  };
}

test('StatusPublisher.restore: history carries over, interrupted work is closed, the first commit prunes hosts that left', async () => {
  const files = new Map<string, string | null>([
    ['site.yaml', renderSiteStatus({ revision: 'r1', rejected: null, updated: iso(0), reconciles: [applied('r1', 0), { revision: 'r2', started: iso(500), stages: {}, result: 'running', hostsActedOn: 0 }] })],
    ['hosts/stay.yaml', renderHostStatus({ host: 'stay', role: 'worker', phase: 'Off', revision: 'r1', attemptedRevision: 'r1', lastError: null, since: iso(0), updated: iso(0), history: [{ phase: 'Converged', at: iso(0) }, { phase: 'Off', at: iso(1) }], actions: [running('power-on', 'r1', 300)] })],
    ['hosts/gone.yaml', renderHostStatus({ host: 'gone', role: 'worker', phase: 'Converged', revision: 'r1', attemptedRevision: 'r1', lastError: null, since: iso(0), updated: iso(0) })],
    ['hosts/unreadable.yaml', '{{{'],
  ]);
  const desired = { name: 'stay', role: 'worker', boot: 'image', power: 'on', afterInstall: 'disk', digest: 'd1', revision: 'r3' } as const;
  // The publisher reads only the desired state of the served generation.
  const generation = { revision: 'r3', hosts: new Map([['stay', { desired }]]) } as unknown as Generation;
  const publisher = new StatusPublisher(sink(files), () => generation, { clock });
  await publisher.restore(() => ({ phase: 'Off', appliedRole: 'worker', since: T0 + 1 }));

  assert.deepEqual(publisher.site().reconciles.map((r) => [r.revision, r.result]), [['r1', 'applied'], ['r2', 'interrupted']]);
  assert.equal(publisher.actionsOf('stay')[0]?.outcome, 'interrupted');
  assert.equal(files.get('hosts/gone.yaml') !== null, true, 'nothing is removed before a commit is applied');

  publisher.reconciles.start('r3').finish('applied');
  publisher.applied('r3');
  publisher.host('stay', { phase: 'Off', appliedRole: 'worker', since: T0 + 1 });
  await publisher.stop();
  assert.equal(files.get('hosts/gone.yaml'), null, 'a host that left while the agent was down');
  assert.equal(files.get('hosts/unreadable.yaml'), null, 'even when its file cannot be read');
  const site = parseSiteStatus(files.get('site.yaml') ?? '');
  assert.deepEqual(site.reconciles?.map((r) => [r.revision, r.result]), [['r1', 'applied'], ['r2', 'interrupted'], ['r3', 'applied']]);
  const stay = parseHostStatus(files.get('hosts/stay.yaml') ?? '');
  assert.deepEqual(stay.actions?.map((a) => [a.action, a.outcome, a.message]), [['power-on', 'interrupted', INTERRUPTED_MESSAGE]]);
  assert.deepEqual(stay.history?.map((t) => t.phase), ['Converged', 'Off'], 'the transitions carry on: same phase, no new entry');
});

let server: GitServer;
let scratch = '';
const log = createLogger({ level: 'silent' });
const author = { name: 'forseti', email: 'forseti@localhost' };

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'forseti-status-restore-'));
  server = await startGitServer();
});

after(async () => {
  await server?.close();
  await rm(scratch, { recursive: true, force: true });
});

test('StatusWriter.readBranch: the remote head with the queue on top; its own clone when the remote is down; empty without either', async () => {
  await createBareRepo(server, 'lab');
  await commitFiles(server, 'lab', 'main', { 'site.yaml': 'name: lab\n' }, 'lab');
  const dir = join(scratch, 'writer');
  const first = new StatusWriter({ url: server.repoUrl('lab'), dir, author, log, backoffMs: 1 });
  first.set('site.yaml', 'revision: r1\n');
  first.set('hosts/a.yaml', 'host: a\n');
  first.set('hosts/b.yaml', 'host: b\n');
  await first.flush();
  // Someone else writes to the branch meanwhile: the remote is what counts.
  await commitFiles(server, 'lab', 'forseti-status', { 'hosts/c.yaml': 'host: c\n', 'notes/x.txt': 'not status\n' }, 'by hand');

  const next = new StatusWriter({ url: server.repoUrl('lab'), dir, author, log });
  next.set('hosts/a.yaml', 'host: a\nqueued: true\n');
  next.remove('hosts/b.yaml');
  assert.deepEqual(Object.fromEntries(await next.readBranch()), { 'site.yaml': 'revision: r1\n', 'hosts/a.yaml': 'host: a\nqueued: true\n', 'hosts/c.yaml': 'host: c\n' });

  // A remote nobody answers at: a port the kernel just handed out and took back.
  const unreachable = `http://127.0.0.1:${await freeTcpPort()}/lab.git`;
  const offline = new StatusWriter({ url: unreachable, dir, author, log, timeoutMs: 2000 });
  assert.deepEqual([...(await offline.readBranch()).keys()].sort(), ['hosts/a.yaml', 'hosts/b.yaml', 'hosts/c.yaml', 'site.yaml'], 'the newest head this clone has seen');
  const nothing = new StatusWriter({ url: unreachable, dir: join(scratch, 'empty'), author, log, timeoutMs: 2000 });
  assert.equal((await nothing.readBranch()).size, 0);
});

test('StatusWriter.readBranch: the snapshot in the state dir gives the same files as reading every blob, stale, damaged or absent', async () => {
  await createBareRepo(server, 'snap');
  await commitFiles(server, 'snap', 'main', { 'site.yaml': 'name: lab\n' }, 'lab');
  const dir = join(scratch, 'snap-writer');
  const url = server.repoUrl('snap');
  const first = new StatusWriter({ url, dir, author, log, backoffMs: 1 });
  for (const name of ['a', 'b', 'c', 'd']) first.set(`hosts/${name}.yaml`, `host: ${name}\n`);
  first.set('site.yaml', 'revision: r1\n');
  await first.flush();
  assert.equal((await first.readBranch()).size, 5);
  first.set('hosts/a.yaml', 'host: a\nphase: Off\n');
  first.remove('hosts/d.yaml');
  await first.stop(); // brings the snapshot up to what was pushed
  const snapshotFile = join(dir, 'snapshot.json');
  const saved = JSON.parse(await readFile(snapshotFile, 'utf8')) as { files: Record<string, string> };
  assert.deepEqual(Object.keys(saved.files).sort(), ['hosts/a.yaml', 'hosts/b.yaml', 'hosts/c.yaml', 'site.yaml']);
  assert.equal(saved.files['hosts/a.yaml'], 'host: a\nphase: Off\n');

  // Another writer moves the branch, and the snapshot is tampered with: a wrong text is never taken for the branch's.
  const head = await commitFiles(server, 'snap', 'forseti-status', { 'hosts/b.yaml': 'host: b\nby: hand\n', 'hosts/e.yaml': 'host: e\n' }, 'by hand');
  saved.files['hosts/c.yaml'] = 'host: c\nforged: true\n';
  await writeFile(snapshotFile, JSON.stringify(saved));
  const expected = { 'hosts/a.yaml': 'host: a\nphase: Off\n', 'hosts/b.yaml': 'host: b\nby: hand\n', 'hosts/c.yaml': 'host: c\n', 'hosts/e.yaml': 'host: e\n', 'site.yaml': 'revision: r1\n' };
  const restarted = new StatusWriter({ url, dir, author, log });
  assert.deepEqual(Object.fromEntries(await restarted.readBranch()), expected);
  await restarted.stop();
  assert.deepEqual(Object.fromEntries(await readStatusFiles(join(dir, 'repo.git'), head)), expected, 'the slow path agrees');
  assert.deepEqual((JSON.parse(await readFile(snapshotFile, 'utf8')) as { files: Record<string, string> }).files, expected, 'the snapshot was repaired');

  // Every file from the snapshot (no blob read), and without any snapshot: the same files.
  let missed = -1;
  assert.deepEqual(Object.fromEntries(await readStatusFiles(join(dir, 'repo.git'), head, {}, new Map(Object.entries(expected)), (n) => (missed = n))), expected);
  assert.equal(missed, 0);
  await writeFile(snapshotFile, '{not json');
  assert.deepEqual(Object.fromEntries(await new StatusWriter({ url, dir, author, log }).readBranch()), expected);
  await rm(snapshotFile);
  assert.deepEqual(Object.fromEntries(await new StatusWriter({ url, dir, author, log }).readBranch()), expected);
});
