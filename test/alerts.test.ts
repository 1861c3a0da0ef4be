import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Alerter, backoffMs, resolveSinks, verifyBody, type AlertEvent, type ResolvedSink, type RetryPolicy } from '../src/alerts/index.ts';
import { parseAlertsConfig } from '../src/model/site-alerts.ts';
import { createLogger } from '../src/log.ts';
import { Receiver } from './fixtures/alerts/receiver.ts';

const SHA = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
const SHA2 = '9c2e1f0a7d3b5c4e6f8a0b1c2d3e4f5a6b7c8d9e';
const HMAC_KEY = 'alerts-hmac-7f3a9c';
const TOKEN = 'gta_0123456789abcdef';
const SLACK_PATH = '/services/T000/B000/XXXXsecretXXXX';
const RETRY: RetryPolicy = { maxAttempts: 5, initialMs: 1000, maxMs: 8000 };

const drift: AlertEvent = { kind: 'drift-detected', host: 'bld-003', revision: SHA, drift: 'powered-off', message: 'bld-003 should be on (converged as talos-worker at 4b825dc) but its BMC reads off', mode: 'detect' };
const failed: AlertEvent = { kind: 'provisioning-failed', host: 'bld-007', revision: SHA, role: 'ceph-osd', step: 'kernel', message: 'no progress past step kernel within 600 s' };
const converged: AlertEvent = { kind: 'host-converged', host: 'bld-007', revision: SHA, role: 'ceph-osd' };

interface Harness {
  dir: string;
  receiver: Receiver;
  url: string;
  sinks: ResolvedSink[];
  logs: string[];
  now: { t: number };
  alerter(over?: { retry?: RetryPolicy; clock?: () => number }): Alerter;
  close(): Promise<void>;
}

async function harness(): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'forseti-alerts-'));
  const receiver = new Receiver();
  const url = await receiver.start();
  // Declared as in site.yaml, credentials resolved as the agent does it.
  const { config, problems } = parseAlertsConfig({
    sinks: [
      { name: 'ops', type: 'webhook', url: `${url}/hook`, signingCredential: 'alerts-hmac' },
      { name: 'chat', type: 'slack', urlCredential: 'slack-ops' },
      { name: 'lab-repo', type: 'commit-status', api: `${url}/api/v1`, repository: 'heimdal/asgard-lab', credential: 'gitea-status', targetUrl: 'http://10.77.0.5:8080/v1/status' },
    ],
  });
  assert.deepEqual(problems, []);
  const secrets: Record<string, string> = { 'alerts-hmac': HMAC_KEY, 'slack-ops': `${url}${SLACK_PATH}`, 'gitea-status': TOKEN };
  const sinks = resolveSinks(config, (name) => secrets[name] ?? assert.fail(`no credential ${name}`));
  const logs: string[] = [];
  const log = createLogger({ level: 'debug', destination: new Writable({ write(chunk, _e, cb) { logs.push(String(chunk)); cb(); } }) });
  const now = { t: Date.parse('2026-11-22T10:00:00Z') };
  const alerters: Alerter[] = [];
  return {
    dir, receiver, url, sinks, logs, now,
    alerter: (over = {}) => {
      const a = new Alerter({ site: 'homelab', sinks, stateDir: dir, log, clock: over.clock ?? (() => now.t), retry: over.retry ?? RETRY, dedupMs: 3600_000 });
      alerters.push(a);
      return a;
    },
    close: async () => {
      for (const a of alerters) await a.stop();
      await receiver.stop();
      await rm(dir, { recursive: true, force: true });
      for (const line of logs) {
        assert.ok(!line.includes(HMAC_KEY) && !line.includes(TOKEN) && !line.includes(SLACK_PATH), `secret in a log line: ${line}`);
      }
    },
  };
}

const byPath = (h: Harness, prefix: string) => h.receiver.received.filter((r) => r.path.startsWith(prefix));

test('Alerter: exactly once under repeated emits; a reminder only after the window', async () => {
  const h = await harness();
  try {
    const a = h.alerter();
    const results = await Promise.all([a.emit(drift), a.emit(drift), a.emit({ ...drift })]);
    assert.deepEqual(results, [true, false, false]);
    assert.equal(await a.emit(drift), false);
    await a.deliverDue();
    await a.deliverDue();
    assert.equal(await a.emit(drift), false);
    await a.deliverDue();
    assert.equal(byPath(h, '/hook').length, 1);
    assert.equal(byPath(h, SLACK_PATH).length, 1);
    assert.equal(byPath(h, '/api/').length, 0, 'drift is not a commit status');

    // Same drift at a new revision is a new alert; the same one an hour later is a reminder.
    assert.equal(await a.emit({ ...drift, revision: SHA2 }), true);
    h.now.t += 3600_000;
    assert.equal(await a.emit(drift), true);
    await a.deliverDue();
    assert.equal(byPath(h, '/hook').length, 3);
  } finally {
    await h.close();
  }
});

test('Alerter: webhook body is signed with the named secret; Slack gets one readable line', async () => {
  const h = await harness();
  try {
    const a = h.alerter();
    await a.emit({ ...drift, mode: 'heal', healing: 'power on' });
    await a.deliverDue();
    const [hook] = byPath(h, '/hook');
    assert.ok(hook);
    assert.equal(hook.headers['content-type'], 'application/json');
    assert.equal(hook.headers['x-forseti-event'], 'drift-detected');
    assert.match(String(hook.headers['x-forseti-signature']), /^sha256=[0-9a-f]{64}$/);
    assert.ok(verifyBody(HMAC_KEY, hook.body, String(hook.headers['x-forseti-signature'])));
    assert.ok(!verifyBody('another-key', hook.body, String(hook.headers['x-forseti-signature'])));
    assert.ok(!verifyBody(HMAC_KEY, hook.body.replace('bld-003', 'bld-004'), String(hook.headers['x-forseti-signature'])));
    const body = JSON.parse(hook.body) as Record<string, unknown>;
    assert.deepEqual(
      { version: body['version'], kind: body['kind'], site: body['site'], host: body['host'], reason: body['reason'], revision: body['revision'], recovery: body['recovery'] },
      { version: 1, kind: 'drift-detected', site: 'homelab', host: 'bld-003', reason: 'drift:powered-off', revision: SHA, recovery: false },
    );
    assert.equal(hook.headers['x-forseti-delivery'], body['id'], 'the alert id: stable across retries');

    const [slack] = byPath(h, SLACK_PATH);
    assert.deepEqual(JSON.parse(slack?.body ?? '{}'), { text: '[homelab] drift on bld-003: bld-003 should be on (converged as talos-worker at 4b825dc) but its BMC reads off; healing: power on' });
    assert.equal(slack?.headers['x-forseti-signature'], undefined);
  } finally {
    await h.close();
  }
});

test('Alerter: recoveries when a problem clears; commit status request shape', async () => {
  const h = await harness();
  try {
    const a = h.alerter();
    await a.emit(drift);
    await a.emit(failed);
    await a.deliverDue();
    assert.equal(await a.emit({ kind: 'drift-healed', host: 'bld-003', revision: SHA, drift: 'powered-off', message: 'powered on again' }), true);
    assert.equal(await a.emit({ kind: 'drift-healed', host: 'bld-003', revision: SHA, drift: 'powered-off' }), false, 'nothing left to clear');
    assert.equal(await a.emit(converged), true);
    await a.deliverDue();

    const slack = byPath(h, SLACK_PATH).map((r) => (JSON.parse(r.body) as { text: string }).text);
    assert.deepEqual(slack, [
      '[homelab] drift on bld-003: bld-003 should be on (converged as talos-worker at 4b825dc) but its BMC reads off; alert only (policy detect)',
      '[homelab] bld-007 failed to provision ceph-osd at step kernel: no progress past step kernel within 600 s (4b825dc)',
      '[homelab] drift healed on bld-003 (powered-off): powered on again at 4b825dc',
      '[homelab] bld-007 converged as ceph-osd at 4b825dc after a failed attempt',
    ]);
    const healed = JSON.parse(byPath(h, '/hook')[2]?.body ?? '{}') as Record<string, unknown>;
    assert.equal(healed['recovery'], true);
    assert.deepEqual(healed['resolves'], { host: 'bld-003', reason: 'drift:powered-off', revision: SHA, kind: 'drift-detected' });

    const statuses = byPath(h, '/api/');
    assert.equal(statuses.length, 2);
    for (const s of statuses) {
      assert.equal(s.method, 'POST');
      assert.equal(s.path, `/api/v1/repos/heimdal/asgard-lab/statuses/${SHA}`);
      assert.equal(s.headers['authorization'], `token ${TOKEN}`);
      assert.equal(s.headers['content-type'], 'application/json');
    }
    assert.deepEqual(JSON.parse(statuses[0]?.body ?? ''), { state: 'failure', context: 'forseti/bld-007', description: 'ceph-osd failed at kernel: no progress past step kernel within 600 s', target_url: 'http://10.77.0.5:8080/v1/status' });
    assert.deepEqual(JSON.parse(statuses[1]?.body ?? ''), { state: 'success', context: 'forseti/bld-007', description: 'converged as ceph-osd', target_url: 'http://10.77.0.5:8080/v1/status' });

    // A plain convergence goes to the commit status only, once per revision.
    assert.equal(await a.emit({ ...converged, host: 'bld-008' }), true);
    assert.equal(await a.emit({ ...converged, host: 'bld-008' }), false);
    await a.deliverDue();
    assert.equal(byPath(h, '/api/').length, 3);
    assert.equal(byPath(h, SLACK_PATH).length, 4);

    // A rejected commit: one failure status on the commit, its problems in the chat line.
    await a.emit({ kind: 'commit-rejected', revision: SHA2, problems: ['hosts/bld-003.yaml:4:7: unknown role talos-wrker', 'site.yaml:12:3: ip 10.77.1.5 is outside 10.77.0.0/24'] });
    assert.equal(await a.resolve({ reason: 'bmc-unreachable' }), false);
    assert.equal(await a.resolve({ reason: 'commit-rejected' }, `commit ${SHA.slice(0, 7)} applied`), true);
    await a.deliverDue();
    const rejected = byPath(h, '/api/')[3];
    assert.equal(rejected?.path, `/api/v1/repos/heimdal/asgard-lab/statuses/${SHA2}`);
    assert.deepEqual(JSON.parse(rejected?.body ?? ''), { state: 'failure', context: 'forseti', description: 'rejected: 2 problems, hosts/bld-003.yaml:4:7: unknown role talos-wrker', target_url: 'http://10.77.0.5:8080/v1/status' });
    assert.deepEqual(byPath(h, SLACK_PATH).slice(4).map((r) => (JSON.parse(r.body) as { text: string }).text), [
      '[homelab] commit 9c2e1f0 rejected, 2 problems: hosts/bld-003.yaml:4:7: unknown role talos-wrker; site.yaml:12:3: ip 10.77.1.5 is outside 10.77.0.0/24; the last good commit keeps serving',
      '[homelab] resolved: commit-rejected (9c2e1f0): commit 4b825dc applied',
    ]);
  } finally {
    await h.close();
  }
});

test('Alerter: retried with exponential backoff after 500s, same delivery id, then delivered', async () => {
  const h = await harness();
  try {
    const a = h.alerter();
    h.receiver.failing.set('/hook', [500, 502, 503]);
    await a.emit(failed);
    const hooks = (): number => byPath(h, '/hook').length;
    await a.deliverDue();
    assert.equal(hooks(), 1);
    for (let failures = 1; failures <= 3; failures++) {
      h.now.t += backoffMs(failures, RETRY) - 1;
      await a.deliverDue();
      assert.equal(hooks(), failures, `not due yet after ${failures} failures`);
      h.now.t += 1;
      await a.deliverDue();
      assert.equal(hooks(), failures + 1);
    }
    const ids = new Set(byPath(h, '/hook').map((r) => r.headers['x-forseti-delivery']));
    assert.equal(ids.size, 1);
    assert.deepEqual(a.pending().filter((d) => d.sink === 'ops'), []);
    assert.deepEqual(a.givenUp(), []);
    assert.ok(h.logs.some((l) => l.includes('will retry') && l.includes('HTTP 500')));
  } finally {
    await h.close();
  }
});

test('Alerter: bounded retries; given up is logged and kept; a 4xx is not retried', async () => {
  const h = await harness();
  try {
    const a = h.alerter({ retry: { maxAttempts: 3, initialMs: 10, maxMs: 20 } });
    h.receiver.statuses = [500, 500, 500, 500, 500, 500];
    await a.emit(drift);
    for (let i = 0; i < 5; i++) {
      await a.deliverDue();
      h.now.t += 20;
    }
    // Webhook and Slack both failed three times each.
    assert.equal(h.receiver.received.length, 6);
    assert.deepEqual(a.pending(), []);
    assert.deepEqual(a.givenUp().map((d) => [d.sink, d.attempts, d.lastError]), [['ops', 3, 'HTTP 500'], ['chat', 3, 'HTTP 500']]);
    const gaveUp = h.logs.filter((l) => l.includes('alert delivery given up')).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(gaveUp.length, 2);
    assert.equal(gaveUp[0]?.['level'], 50);
    assert.equal(gaveUp[0]?.['host'], 'bld-003');
    const state = JSON.parse(await readFile(join(h.dir, 'alerts.json'), 'utf8')) as { givenUp: unknown[] };
    assert.equal(state.givenUp.length, 2);

    h.receiver.statuses = [404];
    await a.emit(failed);
    await a.deliverDue();
    assert.equal(a.givenUp().at(-1)?.lastError, 'HTTP 404');
    assert.equal(a.givenUp().at(-1)?.attempts, 1);
  } finally {
    await h.close();
  }
});

test('Alerter: the queue survives a restart; the new Alerter delivers it and still deduplicates', async () => {
  const h = await harness();
  try {
    const first = h.alerter();
    h.receiver.failing.set('/hook', [503]);
    h.receiver.failing.set(SLACK_PATH, [503]);
    await first.emit(failed);
    await first.deliverDue();
    assert.deepEqual(first.pending().map((d) => d.sink), ['ops', 'chat'], 'the commit status went through; webhook and Slack wait for a retry');
    await first.stop();
    const lost = h.receiver.received.length;
    const failedIds = new Set(h.receiver.received.map((r) => r.headers['x-forseti-delivery']).filter(Boolean));

    h.now.t += 60_000;
    const second = h.alerter();
    assert.equal(await second.emit(failed), false, 'deduplication state persisted');
    await second.start();
    await h.receiver.waitFor(lost + 2);
    await second.stop();
    assert.deepEqual(second.pending(), []);
    const redelivered = h.receiver.received.slice(lost);
    assert.deepEqual(redelivered.map((r) => r.path).sort(), ['/hook', SLACK_PATH].sort());
    assert.ok(redelivered.every((r) => r.path === SLACK_PATH || failedIds.has(r.headers['x-forseti-delivery'])), 'the same delivery id as before the restart');
  } finally {
    await h.close();
  }
});

test('Alerter: an emit under way when it stops is saved; nothing is queued or written after stop', async () => {
  const h = await harness();
  try {
    const a = h.alerter();
    const underWay = a.emit(failed);
    await a.stop();
    assert.equal(await underWay, true);
    const file = join(h.dir, 'alerts.json');
    const saved = await readFile(file, 'utf8');
    assert.equal((JSON.parse(saved) as { queue: unknown[] }).queue.length > 0, true, 'the emit under way is in the saved queue');
    await rm(file);
    assert.equal(await a.emit(drift), false);
    assert.equal(await a.resolve({ reason: 'commit-rejected' }), false);
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(readFile(file, 'utf8'), { code: 'ENOENT' }, 'no write after stop');
  } finally {
    await h.close();
  }
});

test('Alerter: real timers deliver after failures without anyone calling deliverDue', async () => {
  const h = await harness();
  try {
    const a = h.alerter({ clock: Date.now, retry: { maxAttempts: 5, initialMs: 20, maxMs: 40 } });
    await a.start();
    h.receiver.statuses = [500, 500];
    await a.emit({ kind: 'bmc-unreachable', host: 'oden', revision: SHA, message: 'host oden (BMC 10.77.1.50:623): no answer' });
    await h.receiver.waitFor(4);
    await a.stop();
    assert.deepEqual(a.pending(), []);
  } finally {
    await h.close();
  }
});

test('Alerter: connection refused is retried and logged without the URL; a corrupt state file is moved aside', async () => {
  const h = await harness();
  try {
    const dead = new Receiver();
    const deadUrl = await dead.start();
    await dead.stop();
    const sinks: ResolvedSink[] = [{ type: 'slack', name: 'chat', url: `${deadUrl}${SLACK_PATH}`, events: new Set(['drift-detected']) }];
    await writeFile(join(h.dir, 'alerts.json'), '{"version": 1, "queue": [');
    const log = createLogger({ level: 'debug', destination: new Writable({ write(chunk, _e, cb) { h.logs.push(String(chunk)); cb(); } }) });
    const a = new Alerter({ site: 'homelab', sinks, stateDir: h.dir, log, clock: () => h.now.t, retry: RETRY });
    await a.emit(drift);
    await a.deliverDue();
    assert.equal(a.pending()[0]?.attempts, 1);
    assert.equal(a.pending()[0]?.lastError, 'ECONNREFUSED');
    assert.ok(h.logs.some((l) => l.includes('alert state unreadable')));
    assert.ok((await readdir(h.dir)).some((f) => f.startsWith('alerts.json.corrupt-')));
    await a.stop();
  } finally {
    await h.close();
  }
});
