import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { AlertCredentialMissingError, alerterTiming, alertForDrift, backoffMs, recoveryForDrift, requestFor, resolveSinks, slackEscape, summaryLine, type Alert, type AlertEvent, type ResolvedSink } from '../src/alerts/index.ts';
import { ALERTS_SCHEMA, parseAlertsConfig } from '../src/model/site-alerts.ts';
import { isRetriableStatus } from '../src/alerts/backoff.ts';
import { keyOf, keyString } from '../src/alerts/format.ts';
import { defaultEvents, sinkWants } from '../src/alerts/sinks.ts';
import type { Drift } from '../src/observe/drift.ts';

const SHA = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

test('summaryLine: one readable line per event', () => {
  const table: Array<[AlertEvent, boolean, string]> = [
    [{ kind: 'drift-detected', host: 'bld-003', revision: SHA, drift: 'powered-off', message: 'bld-003 should be on but its BMC reads off', mode: 'paused' }, false,
      '[homelab] drift on bld-003: bld-003 should be on but its BMC reads off; drift policy paused, not acting'],
    [{ kind: 'drift-healed', host: 'bld-003', revision: SHA, drift: 'powered-off' }, true, '[homelab] drift healed on bld-003 (powered-off) at 4b825dc'],
    [{ kind: 'provisioning-failed', host: 'loke', revision: SHA, role: 'slurm-compute', message: 'power-cycle: BMC refused' }, false, '[homelab] loke failed to provision slurm-compute: power-cycle: BMC refused (4b825dc)'],
    [{ kind: 'host-converged', host: 'loke', revision: SHA, role: 'slurm-compute' }, false, '[homelab] loke converged as slurm-compute at 4b825dc'],
    [{ kind: 'commit-rejected', revision: SHA, problems: ['a.yaml:1:1: x', 'b.yaml:2:2: y', 'c.yaml:3:3: z', 'd.yaml:4:4: w'] }, false,
      '[homelab] commit 4b825dc rejected, 4 problems: a.yaml:1:1: x; b.yaml:2:2: y; c.yaml:3:3: z (+1 more); the last good commit keeps serving'],
    [{ kind: 'commit-rejected', revision: 'HEAD', problems: ['site.yaml:1:1: bad'] }, false, '[homelab] commit HEAD rejected, 1 problem: site.yaml:1:1: bad; the last good commit keeps serving'],
    [{ kind: 'bmc-unreachable', host: 'oden', revision: SHA, message: 'host oden (BMC 10.77.1.50:623): no answer' }, false, '[homelab] BMC of oden unreachable: host oden (BMC 10.77.1.50:623): no answer'],
  ];
  for (const [event, recovery, line] of table) assert.equal(summaryLine('homelab', event, recovery), line);
});

test('dedup keys: (host, reason, revision); recoveries name the problem they clear', () => {
  const table: Array<[AlertEvent, string]> = [
    [{ kind: 'drift-detected', host: 'h', revision: 'r', drift: 'powered-off', message: '', mode: 'detect' }, 'h|drift:powered-off|r'],
    [{ kind: 'drift-healed', host: 'h', revision: 'r', drift: 'powered-off' }, 'h|drift:powered-off|r'],
    [{ kind: 'provisioning-failed', host: 'h', revision: 'r', role: 'x', message: '' }, 'h|provisioning-failed|r'],
    [{ kind: 'host-converged', host: 'h', revision: 'r', role: 'x' }, 'h|provisioning-failed|r'],
    [{ kind: 'commit-rejected', revision: 'r', problems: [] }, '-|commit-rejected|r'],
    [{ kind: 'bmc-unreachable', host: 'h', revision: 'r', message: '' }, 'h|bmc-unreachable|r'],
  ];
  for (const [event, key] of table) assert.equal(keyString(keyOf(event)), key);
});

test('slackEscape: only & < >', () => {
  assert.equal(slackEscape('a <b> & "c"'), 'a &lt;b&gt; &amp; "c"');
});

test('backoff: doubling, capped; which statuses are retried', () => {
  const policy = { maxAttempts: 8, initialMs: 5000, maxMs: 60_000 };
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 50].map((n) => backoffMs(n, policy)), [0, 5000, 10_000, 20_000, 40_000, 60_000, 60_000, 60_000]);
  assert.deepEqual([200, 400, 401, 404, 408, 422, 429, 500, 502, 503].map(isRetriableStatus), [false, false, false, false, true, false, true, true, true, true]);
});

const alert = (event: AlertEvent, over: Partial<Alert> = {}): Alert => ({
  id: 'id-1', kind: event.kind, site: 'homelab', revision: event.revision, reason: keyOf(event).reason, summary: summaryLine('homelab', event), recovery: false, event, at: '2026-11-22T10:00:00.000Z', ...over,
});
const status: ResolvedSink = { type: 'commit-status', name: 'gh', api: 'https://api.github.com/', repository: 'heimdal/asgard-lab', token: 't', context: 'forseti', events: new Set(defaultEvents('commit-status')) };

test('commit status: GitHub URL, states, contexts; nothing for drift or a non-commit revision; 140 characters at most', () => {
  const failed: AlertEvent = { kind: 'provisioning-failed', host: 'bld-001', revision: SHA, role: 'talos-worker', step: 'phone-home', message: 'x'.repeat(300) };
  const req = requestFor(status, alert(failed));
  assert.equal(req?.url, `https://api.github.com/repos/heimdal/asgard-lab/statuses/${SHA}`);
  assert.equal(req?.headers['accept'], 'application/vnd.github+json');
  const body = JSON.parse(req?.body ?? '{}') as { state: string; context: string; description: string };
  assert.equal(body.state, 'failure');
  assert.equal(body.context, 'forseti/bld-001');
  assert.equal(body.description.length, 140);
  assert.equal(requestFor(status, alert({ kind: 'drift-detected', host: 'h', revision: SHA, drift: 'powered-off', message: 'm', mode: 'detect' })), null);
  assert.equal(requestFor(status, alert({ kind: 'host-converged', host: 'h', revision: 'main', role: 'r' })), null);
});

test('routing: defaults per sink type; a recovery follows its problem', () => {
  const chat: ResolvedSink = { type: 'slack', name: 'chat', url: 'http://127.0.0.1/x', events: new Set(defaultEvents('slack')) };
  const failedOnly: ResolvedSink = { type: 'webhook', name: 'pager', url: 'http://127.0.0.1/p', events: new Set(['provisioning-failed']) };
  const converged: AlertEvent = { kind: 'host-converged', host: 'h', revision: SHA, role: 'r' };
  assert.equal(sinkWants(chat, alert(converged)), false, 'plain convergence does not go to chat');
  assert.equal(sinkWants(status, alert(converged)), true);
  const recovery = alert(converged, { recovery: true, resolves: { host: 'h', reason: 'provisioning-failed', revision: SHA, kind: 'provisioning-failed' } });
  assert.equal(sinkWants(chat, recovery), true);
  assert.equal(sinkWants(failedOnly, recovery), true);
  assert.equal(sinkWants(failedOnly, alert({ kind: 'bmc-unreachable', host: 'h', revision: SHA, message: '' })), false);
});

test('alertForDrift / recoveryForDrift', () => {
  const d = (over: Partial<Drift>): Drift => ({ host: 'bld-003', kind: 'powered-off', message: 'm', revision: SHA, mode: 'heal', policySource: 'site', correction: { kind: 'power-on' }, act: true, ...over });
  assert.deepEqual(alertForDrift(d({})), { kind: 'drift-detected', host: 'bld-003', revision: SHA, drift: 'powered-off', message: 'm', mode: 'heal', healing: 'power on' });
  assert.equal((alertForDrift(d({ mode: 'detect', act: false })) as { healing?: string }).healing, undefined);
  assert.deepEqual(alertForDrift(d({ kind: 'bmc-unreachable', correction: null, act: false })), { kind: 'bmc-unreachable', host: 'bld-003', revision: SHA, message: 'm' });
  assert.deepEqual(recoveryForDrift(d({})), { event: { kind: 'drift-healed', host: 'bld-003', revision: SHA, drift: 'powered-off' } });
  assert.deepEqual(recoveryForDrift(d({ kind: 'bmc-unreachable' })), { resolve: { host: 'bld-003', reason: 'bmc-unreachable' } });
});

const example = {
  dedupSeconds: 1800,
  retry: { maxAttempts: 5, initialSeconds: 2, maxSeconds: 120 },
  sinks: [
    { name: 'ops', type: 'webhook', url: 'https://hooks.lab.home.arpa/forseti', signingCredential: 'alerts-hmac', events: ['drift-detected', 'drift-healed'] },
    { name: 'chat', type: 'slack', urlCredential: 'slack-ops' },
    { name: 'lab-repo', type: 'commit-status', api: 'https://gitea.lab.home.arpa/api/v1', repository: 'heimdal/asgard-lab', credential: 'gitea-status' },
  ],
};

test('alerts config: parse with defaults; the schema fragment agrees', () => {
  const { config, problems } = parseAlertsConfig(example);
  assert.deepEqual(problems, []);
  assert.equal(config.sinks.length, 3);
  assert.deepEqual(config.sinks[2], { type: 'commit-status', name: 'lab-repo', api: 'https://gitea.lab.home.arpa/api/v1', repository: 'heimdal/asgard-lab', credential: 'gitea-status', context: 'forseti' });
  assert.deepEqual(alerterTiming(config), { dedupMs: 1_800_000, retry: { maxAttempts: 5, initialMs: 2000, maxMs: 120_000 } });
  assert.deepEqual(parseAlertsConfig(undefined).config.sinks, []);

  const validate = new Ajv({ strict: false }).compile(ALERTS_SCHEMA);
  assert.ok(validate(example), JSON.stringify(validate.errors));
  assert.equal(validate({ sinks: [{ name: 'chat', type: 'slack', url: 'https://hooks.slack.com/services/T/B/X' }] }), false, 'a Slack URL is a secret: credential only');
  assert.equal(validate({ sinks: [{ name: 'x', type: 'email' }] }), false);
});

test('alerts config: every problem at its dotted path', () => {
  const { problems } = parseAlertsConfig({
    dedupSeconds: -5,
    retry: { maxAttempts: 0 },
    sinks: [
      { name: 'ops', type: 'webhook', url: 'ftp://x' },
      { name: 'ops', type: 'slack', urlCredential: 'c', events: ['drift-detected', 'coffee-ready'] },
      { name: 'gh', type: 'commit-status', repository: 'asgard-lab', credential: 'c', colour: 'red' },
      { name: 'x', type: 'email' },
      'nope',
    ],
  });
  assert.deepEqual(problems.map((p) => p.path), [
    'alerts.dedupSeconds', 'alerts.retry.maxAttempts', 'alerts.sinks.0.url', 'alerts.sinks.1.events', 'alerts.sinks.1.name', 'alerts.sinks.2.colour', 'alerts.sinks.2.repository', 'alerts.sinks.3.type', 'alerts.sinks.4',
  ]);
  assert.match(problems[4]?.message ?? '', /used twice \(also alerts.sinks.0\)/);
});

test('resolveSinks: a missing credential names the sink and the credential, never a value', () => {
  const { config } = parseAlertsConfig(example);
  const err = (() => {
    try {
      resolveSinks(config, (name) => {
        if (name === 'gitea-status') throw new Error('not found');
        return 'value-of-' + name;
      });
    } catch (e) {
      return e;
    }
    return null;
  })();
  assert.ok(err instanceof AlertCredentialMissingError);
  assert.equal(err.message, 'alert sink lab-repo: credential "gitea-status" cannot be resolved');
  const sinks = resolveSinks(config, (name) => `value-of-${name}`);
  assert.deepEqual([...(sinks[0]?.events ?? [])], ['drift-detected', 'drift-healed']);
  assert.equal(sinks[1]?.type === 'slack' && sinks[1].url, 'value-of-slack-ops');
});
