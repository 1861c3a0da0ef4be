import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import { BootOverrideNotAppliedError, type BmcDriver } from '../src/bmc/driver.ts';
import { CommandQueue } from '../src/bmc/command-queue.ts';
import { createIpmiDriver } from '../src/bmc/ipmi-driver.ts';
import { createLogger } from '../src/log.ts';
import { Metrics } from '../src/observe/metrics.ts';
import { instrumentBmcDriver } from '../src/bmc/instrumented-driver.ts';
import { createBootHttpServer, listen, type BootBackend } from '../src/serve/boot-http.ts';
import { statusOnlyBackend } from './fixtures/status-only-backend.ts';
import { startFakeBmc, type FakeBmc } from './fixtures/ipmi/support.ts';
// Every agent response these tests see is checked against schemas/openapi.json.
import './fixtures/api-contract.ts';

const log = createLogger({ level: 'silent' });

/** The value of one sample in the text exposition, matched by name and a subset of its labels. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('Metrics facade', () => {
  test('hosts by phase: every phase is exported, zeros included, and recounted on each call', async () => {
    const m = new Metrics({ processMetrics: false });
    m.setHostPhases(new Map([['a', { phase: 'Converged' as const }], ['b', { phase: 'Converged' as const }], ['c', { phase: 'Failed' as const }]]));
    let text = await m.text();
    assert.equal(sample(text, 'forseti_hosts', { phase: 'Converged' }), 2);
    assert.equal(sample(text, 'forseti_hosts', { phase: 'Failed' }), 1);
    assert.equal(sample(text, 'forseti_hosts', { phase: 'Pending' }), 0);
    m.setHostPhases(['Provisioning']);
    text = await m.text();
    assert.equal(sample(text, 'forseti_hosts', { phase: 'Converged' }), 0);
    assert.equal(sample(text, 'forseti_hosts', { phase: 'Provisioning' }), 1);
  });

  test('counters, histograms and the applied/rejected revision info', async () => {
    const m = new Metrics({ processMetrics: false });
    m.observeBmcCall('ipmi', 'powerCycle', 1.5, true);
    m.observeBmcCall('ipmi', 'powerCycle', 0.2, false);
    m.countDhcp('offer');
    m.countDhcp('offer');
    m.countDhcp('ignored');
    m.countTftp(true, 4096);
    m.countGitFetch(true);
    m.countGitFetch(false);
    m.countStatusPush('retried');
    m.countStatusPush('ok');
    m.countStatusPush('failed');
    m.observeReconcileRun(1.25, 'applied', { validate: 200, images: 0, render: 1000, activate: 50 });
    m.setHostConditions({ sync: { Synced: 3, OutOfSync: 1, Unknown: 0 }, health: { Healthy: 3, Progressing: 0, Degraded: 1, Missing: 0 } });
    m.observeReconcile(0.002);
    m.observeCommitApply(0.4, 'applied');
    m.observeProvision(12, 'converged');
    m.setAppliedRevision('a'.repeat(40), 'g1');
    m.countRejection('b'.repeat(40));
    let text = await m.text();
    assert.equal(sample(text, 'forseti_bmc_call_duration_seconds_count', { kind: 'ipmi', op: 'powerCycle' }), 2);
    assert.equal(sample(text, 'forseti_bmc_call_duration_seconds_sum', { kind: 'ipmi', op: 'powerCycle' }), 1.7);
    assert.equal(sample(text, 'forseti_bmc_call_errors_total', { kind: 'ipmi', op: 'powerCycle' }), 1);
    assert.equal(sample(text, 'forseti_dhcp_requests_total', { action: 'offer' }), 2);
    assert.equal(sample(text, 'forseti_dhcp_requests_total', { action: 'ignored' }), 1);
    assert.equal(sample(text, 'forseti_tftp_transfers_total', { result: 'ok' }), 1);
    assert.equal(sample(text, 'forseti_tftp_bytes_total'), 4096);
    assert.equal(sample(text, 'forseti_git_fetch_total', { result: 'error' }), 1);
    assert.equal(sample(text, 'forseti_status_push_total', { result: 'retried' }), 1);
    assert.equal(sample(text, 'forseti_status_push_total', { result: 'failed' }), 1);
    assert.equal(sample(text, 'forseti_commit_apply_stage_duration_seconds_sum', { stage: 'render' }), 1);
    assert.equal(sample(text, 'forseti_commit_apply_stage_duration_seconds_count', { stage: 'images' }), 1);
    assert.equal(sample(text, 'forseti_commit_apply_stage_duration_seconds_count', { stage: 'secrets' }), undefined);
    assert.equal(sample(text, 'forseti_hosts_sync', { sync: 'OutOfSync' }), 1);
    assert.equal(sample(text, 'forseti_hosts_health', { health: 'Degraded' }), 1);
    assert.equal(sample(text, 'forseti_hosts_health', { health: 'Missing' }), 0);
    assert.equal(sample(text, 'forseti_reconcile_duration_seconds_count'), 1);
    assert.equal(sample(text, 'forseti_commit_apply_duration_seconds_count', { outcome: 'applied' }), 2);
    assert.equal(sample(text, 'forseti_provision_duration_seconds_bucket', { outcome: 'converged', le: '30' }), 1);
    assert.equal(sample(text, 'forseti_applied_revision_info', { revision: 'a'.repeat(40), generation: 'g1' }), 1);
    assert.equal(sample(text, 'forseti_commit_rejections_total'), 1);
    assert.equal(sample(text, 'forseti_rejected_revision_info', { revision: 'b'.repeat(40) }), 1);

    // A newer good revision replaces the info series and clears the rejected one.
    m.setAppliedRevision('c'.repeat(40), 'g2');
    text = await m.text();
    assert.equal(sample(text, 'forseti_applied_revision_info', { revision: 'a'.repeat(40) }), undefined);
    assert.equal(sample(text, 'forseti_applied_revision_info', { revision: 'c'.repeat(40) }), 1);
    assert.equal(sample(text, 'forseti_rejected_revision_info'), undefined);
    assert.equal(sample(text, 'forseti_commit_rejections_total'), 1);
  });

  test('hostEvent times a provisioning from its start to Converged or Failed', async () => {
    const m = new Metrics({ processMetrics: false });
    m.hostEvent('n1', 'provision-started', 'Provisioning', 1_000);
    m.hostEvent('n1', 'step', 'Provisioning', 5_000);
    m.hostEvent('n1', 'phone-home', 'Converged', 46_000);
    m.hostEvent('n2', 'provision-started', 'Provisioning', 0);
    m.hostEvent('n2', 'failed', 'Failed', 900_000);
    m.hostEvent('n3', 'phone-home', 'Converged', 10_000);
    const text = await m.text();
    assert.equal(sample(text, 'forseti_provision_duration_seconds_sum', { outcome: 'converged' }), 45);
    assert.equal(sample(text, 'forseti_provision_duration_seconds_count', { outcome: 'converged' }), 1);
    assert.equal(sample(text, 'forseti_provision_duration_seconds_sum', { outcome: 'failed' }), 900);
  });

  test('each instance has its own registry (two agents in one process do not share counts)', async () => {
    const a = new Metrics({ processMetrics: false });
    const b = new Metrics();
    a.countDhcp('ack');
    assert.equal(sample(await a.text(), 'forseti_dhcp_requests_total', { action: 'ack' }), 1);
    assert.equal(sample(await b.text(), 'forseti_dhcp_requests_total', { action: 'ack' }), undefined);
    assert.ok(sample(await b.text(), 'forseti_process_cpu_user_seconds_total') !== undefined, 'process metrics carry the forseti_ prefix');
  });

  // promtool is Prometheus' own linter for the exposition format (names, types, help, suffixes). Only
  // forseti's own metrics: prom-client's process gauges (nodejs_active_handles_total) break its suffix rule.
  test('promtool accepts the exposition', { skip: existsSync('/usr/bin/promtool') ? false : 'promtool not installed (Debian package prometheus)' }, async () => {
    const m = new Metrics({ processMetrics: false });
    m.setHostPhases(['Converged']);
    m.countDhcp('offer');
    m.countHttp('status', 200);
    m.observeBmcCall('redfish', 'setBootOverride', 0.3, false);
    m.setAppliedRevision('d'.repeat(40));
    m.countStatusPush('ok');
    m.observeReconcileRun(0.3, 'applied', { validate: 100, render: 200 });
    m.setHostConditions({ sync: { Synced: 1, OutOfSync: 0, Unknown: 0 }, health: { Healthy: 1, Progressing: 0, Degraded: 0, Missing: 0 } });
    const child = execFile('/usr/bin/promtool', ['check', 'metrics']);
    const done = new Promise<{ code: number | null; out: string }>((resolve) => {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code, out }));
    });
    child.stdin?.end(await m.text());
    const { code, out } = await done;
    assert.equal(code, 0, out);
  });
});

describe('BMC drivers instrumented', () => {
  test('every call is timed under (kind, method); failures are counted and still thrown; absent methods stay absent', async () => {
    const m = new Metrics({ processMetrics: false });
    let t = 0;
    const fake: BmcDriver = {
      kind: 'fake',
      powerState: async () => 'on',
      powerOn: async () => undefined,
      powerOff: async () => undefined,
      powerCycle: async () => {
        t += 2000;
      },
      setBootOverride: async () => {
        t += 500;
        throw new BootOverrideNotAppliedError('n1', '10.0.0.1:623', 'read back none');
      },
      getBootOverride: async () => null,
    };
    const driver = instrumentBmcDriver(fake, m, () => t);
    assert.equal(driver.kind, 'fake');
    assert.equal(driver.softOff, undefined);
    assert.equal(await driver.powerState(), 'on');
    await driver.powerCycle();
    await assert.rejects(driver.setBootOverride({ device: 'pxe', persistent: false }), BootOverrideNotAppliedError);
    const text = await m.text();
    assert.equal(sample(text, 'forseti_bmc_call_duration_seconds_sum', { kind: 'fake', op: 'powerCycle' }), 2);
    assert.equal(sample(text, 'forseti_bmc_call_errors_total', { kind: 'fake', op: 'powerCycle' }), undefined);
    assert.equal(sample(text, 'forseti_bmc_call_duration_seconds_sum', { kind: 'fake', op: 'setBootOverride' }), 0.5);
    assert.equal(sample(text, 'forseti_bmc_call_errors_total', { kind: 'fake', op: 'setBootOverride' }), 1);
    assert.equal(sample(text, 'forseti_bmc_call_duration_seconds_count', { kind: 'fake', op: 'powerState' }), 1);
  });

  describe('the IPMI driver against ipmi_sim', { skip: existsSync('/usr/bin/ipmi_sim') ? false : 'ipmi_sim not installed (Debian package openipmi)' }, () => {
    let bmc: FakeBmc;
    before(async () => {
      bmc = await startFakeBmc('metrics1');
    });
    after(async () => {
      await bmc?.stop();
    });

    test('a real power read is timed; a boot override the BMC does not keep is an error under ipmi/setBootOverride', async () => {
      const m = new Metrics({ processMetrics: false });
      const ipmi = createIpmiDriver(
        { host: 'metrics1', address: bmc.sim.address, port: bmc.sim.port, username: bmc.sim.user, password: bmc.sim.password },
        { powerPoll: { attempts: 50, intervalMs: 100 }, ipmitool: { retries: 0, retryDelayMs: 0 }, queue: new CommandQueue({ minIntervalMs: 0 }) },
      );
      const driver = instrumentBmcDriver(ipmi, m);
      assert.ok(['on', 'off'].includes(await driver.powerState()));
      await bmc.fault('ignore-set-boot', true);
      try {
        await assert.rejects(driver.setBootOverride({ device: 'pxe', persistent: false }), BootOverrideNotAppliedError);
      } finally {
        await bmc.fault('ignore-set-boot', false);
      }
      const text = await m.text();
      assert.equal(sample(text, 'forseti_bmc_call_duration_seconds_count', { kind: 'ipmi', op: 'powerState' }), 1);
      assert.ok((sample(text, 'forseti_bmc_call_duration_seconds_sum', { kind: 'ipmi', op: 'powerState' }) ?? 0) > 0);
      assert.equal(sample(text, 'forseti_bmc_call_errors_total', { kind: 'ipmi', op: 'powerState' }), undefined);
      assert.equal(sample(text, 'forseti_bmc_call_errors_total', { kind: 'ipmi', op: 'setBootOverride' }), 1);
      await driver.close?.();
    });
  });
});

describe('/metrics, /readyz and request counting on the boot HTTP server', () => {
  let server: Server;
  let base = '';
  let ready = false;
  const metrics = new Metrics({ processMetrics: false });
  const backend = statusOnlyBackend({
    statusJson: () => ({ revision: null, generation: null, hosts: {} }),
    ready: () => ready,
  });

  before(async () => {
    server = createBootHttpServer(backend, log, { metrics });
    base = `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('requests are counted by route and status class, never by MAC or path', async () => {
    await (await fetch(`${base}/v1/boot/52-54-00-00-00-01`)).text();
    await (await fetch(`${base}/v1/boot/52-54-00-00-00-02`)).text();
    await (await fetch(`${base}/images/${'0'.repeat(64)}/vmlinuz`)).text();
    await (await fetch(`${base}/no/such/thing`)).text();
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.equal(sample(text, 'forseti_http_requests_total', { route: 'boot-script', code: '2xx' }), 2);
    assert.equal(sample(text, 'forseti_http_requests_total', { route: 'image', code: '4xx' }), 1);
    assert.equal(sample(text, 'forseti_http_requests_total', { route: 'other', code: '4xx' }), 1);
    assert.doesNotMatch(text, /52-54-00|vmlinuz/);
  });

  test('/readyz follows the backend: 503 until a generation is served, then 200', async () => {
    const before = await fetch(`${base}/readyz`);
    assert.equal(before.status, 503);
    assert.match(await before.text(), /not ready/);
    ready = true;
    const now = await fetch(`${base}/readyz`);
    assert.equal(now.status, 200);
    assert.equal(await now.text(), 'ready\n');
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
  });

  test('without a Metrics instance /metrics is 404 and /readyz is 200', async () => {
    const plain = createBootHttpServer({ ...backend, ready: undefined } as BootBackend, log);
    const port = (await listen(plain, '127.0.0.1', 0)).port;
    try {
      assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
    } finally {
      plain.closeAllConnections();
      await new Promise<void>((r) => plain.close(() => r()));
    }
  });
});
