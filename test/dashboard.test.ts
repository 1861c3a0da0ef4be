// The dashboard in a real browser: headless Chromium driven by playwright-core against the boot HTTP server
// with a stub backend whose status changes under it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createLogger } from '../src/log.ts';
import { createBootHttpServer, listen } from '../src/serve/boot-http.ts';
import { statusOnlyBackend } from './fixtures/status-only-backend.ts';
import type { HostView, StatusView } from '../src/status/status-view.ts';
// Every agent response these tests see is checked against schemas/openapi.json.
import './fixtures/api-contract.ts';

const CHROMIUM = '/usr/bin/chromium';
// Without the background-networking flags Chromium keeps trying to reach Google's services.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not installed (Debian package chromium)`;
const log = createLogger({ level: 'silent' });
const REV1 = '1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d';
const REV2 = '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432';
const now = Date.now();

function host(role: string, phase: string, extra: Partial<HostView> = {}): HostView {
  return { role, phase, since: now - 90_000, ...extra };
}

function initialView(): StatusView {
  return {
    revision: REV1,
    generation: 'g0007',
    site: {
      revision: REV1,
      rejected: { revision: REV2, errors: ['hosts/bld-004.yaml:7:9: role "talos-wrker" is not declared in profiles/'] },
      sync: 'OutOfSync',
      health: 'Degraded',
      reconciles: [
        { revision: REV1, started: new Date(now - 600_000).toISOString(), finished: new Date(now - 598_700).toISOString(), durationMs: 1300, stages: { validate: 120, secrets: 2, images: 0, render: 900, activate: 278 }, result: 'applied', hostsActedOn: 3, actions: { provision: 3 } },
        { revision: REV2, started: new Date(now - 60_000).toISOString(), finished: new Date(now - 59_900).toISOString(), durationMs: 100, stages: { validate: 100 }, result: 'rejected', problems: 1, hostsActedOn: 0 },
      ],
    },
    hosts: {
      // Declared out of bay order on purpose: the page orders by bay.
      'bld-003': host('talos-worker', 'Failed', { enclosure: { name: 'ASGARD', bay: 3 }, lastError: { message: 'no phone-home within 900 s <b>boom</b>', step: 'kernel' }, appliedRevision: REV1 }),
      'bld-001': host('talos-controlplane', 'Converged', {
        enclosure: { name: 'ASGARD', bay: 1 }, appliedRole: 'talos-controlplane', appliedRevision: REV1, labels: { rack: 'r1' },
        actions: [{ action: 'provision', revision: REV1, started: new Date(now - 300_000).toISOString(), finished: new Date(now - 255_000).toISOString(), durationMs: 45_000, outcome: 'ok' }],
      }),
      'bld-002': host('slurm-compute', 'Provisioning', {
        enclosure: { name: 'ASGARD', bay: 2 }, step: 'kernel', attemptRevision: REV1, drift: ['boot order: disk first, expected PXE first'],
        actions: [{ action: 'provision', revision: REV1, started: new Date(now - 30_000).toISOString(), outcome: 'running' }],
        convergeSteps: [
          { signal: 'installerReports', name: 'subiquity/Early', at: now - 20_000, result: 'SUCCESS' },
          { signal: 'installerReports', name: 'subiquity/Install/install/curtin_install', at: now - 10_000, detail: 'curtin command install <i>x</i>' },
        ],
      }),
      'bif-001': host('ceph-osd', 'Converged', { enclosure: { name: 'BIFROST', bay: 1 }, appliedRole: 'ceph-osd', appliedRevision: REV1 }),
      loke: host('off', 'Off'),
      oden: host('openstack-compute', 'Pending', { events: [{ at: now - 5000, kind: 'provision-started', message: 'provisioning role openstack-compute (1a2b3c4)' }] }),
    },
    events: [{ at: now - 60_000, kind: 'commit-rejected', message: 'commit 9f8e7d6 rejected: 1 problem' }],
  };
}

describe('dashboard in headless Chromium', { skip }, () => {
  let server: Server;
  let base = '';
  let view = initialView();
  let changed: (() => void) | undefined;
  let profile = '';
  let context: BrowserContext;
  let shots = '';

  const backend = statusOnlyBackend({
    statusJson: () => ({ revision: view.revision, generation: view.generation, hosts: {} }),
    statusView: () => view,
    onStatusChange: (listener) => {
      changed = listener;
    },
  });

  async function openPage(): Promise<{ page: Page; problems: string[] }> {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page: ${err.message}`));
    await page.goto(`${base}/dashboard`);
    return { page, problems };
  }

  before(async () => {
    server = createBootHttpServer(backend, log);
    base = `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
    profile = await mkdtemp(join(tmpdir(), 'forseti-dash-profile-'));
    shots = await mkdtemp(join(tmpdir(), 'forseti-dash-shots-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 800 } });
  });

  after(async () => {
    await context?.close();
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await rm(profile, { recursive: true, force: true });
    if (!process.env.FORSETI_KEEP_SCREENSHOTS) await rm(shots, { recursive: true, force: true });
  });

  test('hosts are tiles grouped by enclosure in bay order, then standalone; header shows applied and rejected revisions', async () => {
    const { page, problems } = await openPage();
    await page.waitForSelector('[data-host="bld-001"]');
    await page.waitForSelector('#conn[data-mode="live"]');

    const groups = await page.$$eval('section.group', (els) => els.map((e) => e.getAttribute('data-group')));
    assert.deepEqual(groups, ['ASGARD', 'BIFROST', 'standalone']);
    const asgard = await page.$$eval('section[data-group="ASGARD"] .tile', (els) => els.map((e) => e.getAttribute('data-host')));
    assert.deepEqual(asgard, ['bld-001', 'bld-002', 'bld-003']);
    const standalone = await page.$$eval('section[data-group="standalone"] .tile', (els) => els.map((e) => e.getAttribute('data-host')));
    assert.deepEqual(standalone, ['loke', 'oden']);

    const field = (hostName: string, name: string): Promise<string | null> => page.textContent(`[data-host="${hostName}"] [data-field="${name}"]`);
    assert.equal(await field('bld-002', 'role'), 'slurm-compute');
    assert.equal(await field('bld-002', 'phase'), 'Provisioning');
    assert.equal(await field('bld-002', 'step'), 'kernel');
    // Filled in by the server from the phase: the backend did not say.
    assert.equal(await field('bld-002', 'sync'), 'OutOfSync');
    assert.equal(await field('bld-002', 'health'), 'Progressing');
    assert.equal(await field('bld-002', 'drift'), 'drift 1');
    assert.equal(await field('bld-001', 'sync'), 'Synced');
    assert.equal(await field('bld-003', 'health'), 'Degraded');
    assert.equal(await field('oden', 'health'), 'Missing');
    // Lab data is text, never markup.
    assert.equal(await field('bld-003', 'error'), 'kernel: no phone-home within 900 s <b>boom</b>');
    assert.equal(await page.$$eval('[data-host="bld-003"] .error b', (els) => els.length), 0);

    assert.equal(await field('bld-001', 'action'), 'provision ok in 45 s');
    assert.match((await field('bld-002', 'action')) ?? '', /^provision running \d+s$/);
    assert.equal(await page.$('[data-host="bld-003"] [data-field="action"]'), null);
    // The converge signals: the last step as text, every step with its time in the tooltip.
    assert.equal(await field('bld-002', 'converge'), 'installerReports: subiquity/Install/install/curtin_install (curtin command install <i>x</i>)');
    const convergeTitle = (await page.getAttribute('[data-host="bld-002"] [data-field="converge"]', 'title')) ?? '';
    assert.match(convergeTitle, /^\S+ installerReports: subiquity\/Early SUCCESS\n\S+ installerReports: subiquity\/Install\/install\/curtin_install/);
    assert.equal(await page.$('[data-host="bld-001"] [data-field="converge"]'), null);

    assert.equal(await page.textContent('#site-sync'), 'OutOfSync');
    assert.equal(await page.textContent('#site-health'), 'Degraded');
    const reconciles = await page.$$eval('#reconciles li', (els) => els.map((e) => [e.getAttribute('data-result'), e.textContent ?? '']));
    assert.equal(reconciles.length, 2);
    assert.equal(reconciles[0]?.[0], 'rejected', 'newest first');
    assert.match(reconciles[0]?.[1] ?? '', /9f8e7d6.*rejected.*100 ms.*validate 100 ms · 1 problem/);
    assert.match(reconciles[1]?.[1] ?? '', /1a2b3c4.*applied.*1\.3 s.*validate 120 ms · secrets 2 ms · images 0 ms · render 900 ms · activate 278 ms · 3 hosts acted on/);

    assert.equal(await page.textContent('#applied'), REV1.slice(0, 7));
    assert.equal(await page.isVisible('#rejected'), true);
    assert.equal(await page.textContent('#rejected-revision'), REV2.slice(0, 7));
    assert.match((await page.textContent('#rejected-errors')) ?? '', /hosts\/bld-004\.yaml:7:9: role "talos-wrker"/);

    const events = await page.$$eval('#events li', (els) => els.map((e) => e.textContent ?? ''));
    assert.deepEqual(events.length, 2);
    assert.match(events[0] ?? '', /oden.*provisioning role openstack-compute/);
    assert.match(events[1] ?? '', /commit 9f8e7d6 rejected/);

    const png = join(shots, 'dashboard.png');
    await page.screenshot({ path: png, fullPage: true });
    assertPlausiblePng(await readFile(png), 1280, 600);
    assert.deepEqual(problems, [], 'no script errors and no Content-Security-Policy violations');
    await page.close();
  });

  test('a status change reaches an open page without a reload (Server-Sent Events)', async () => {
    const { page, problems } = await openPage();
    await page.waitForSelector('#conn[data-mode="live"]');
    await page.waitForSelector('[data-host="bld-002"][data-phase="Provisioning"]');
    // Mark the document: a reload would lose the mark.
    await page.evaluate(() => ((window as unknown as { untouched: boolean }).untouched = true));

    const next = initialView();
    const bld002 = next.hosts['bld-002'];
    assert.ok(bld002);
    next.hosts['bld-002'] = { ...bld002, phase: 'Converged', appliedRole: 'slurm-compute', appliedRevision: REV1, since: Date.now(), events: [{ at: Date.now(), kind: 'phone-home', message: 'phoned home as slurm-compute' }] };
    delete next.hosts['bld-002']?.step;
    next.site = { ...next.site, revision: REV1, rejected: null, sync: 'Synced', health: 'Healthy' };
    view = next;
    changed?.();

    await page.waitForSelector('[data-host="bld-002"][data-phase="Converged"]');
    await page.waitForSelector('#rejected', { state: 'hidden' });
    assert.equal(await page.textContent('#site-sync'), 'Synced');
    assert.equal(await page.textContent('[data-host="bld-002"] [data-field="sync"]'), 'Synced');
    assert.equal(await page.$('[data-host="bld-002"] [data-field="step"]'), null);
    assert.match((await page.textContent('#events li:first-child')) ?? '', /bld-002.*phoned home as slurm-compute/);
    assert.equal(await page.evaluate(() => (window as unknown as { untouched?: boolean }).untouched), true);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('without EventSource the page polls /v1/status', async () => {
    const page = await context.newPage();
    await page.addInitScript(() => {
      delete (window as unknown as { EventSource?: unknown }).EventSource;
    });
    await page.goto(`${base}/dashboard`);
    await page.waitForSelector('#conn[data-mode="polling"]');
    await page.waitForSelector('[data-host="bif-001"]');
    assert.equal(await page.textContent('[data-host="bif-001"] [data-field="role"]'), 'ceph-osd');
    await page.close();
  });
});

describe('dashboard assets over plain HTTP', () => {
  let server: Server;
  let base = '';
  before(async () => {
    const backend = statusOnlyBackend({
      // The agent's statusJson() as it is today: epoch-ms since, no site, no enclosure.
      statusJson: () => ({ revision: REV1, generation: 'g1', hosts: { n1: { role: 'worker', phase: 'Converged', appliedRole: 'worker', appliedDigest: 'd1', since: 1 } } }),
    });
    server = createBootHttpServer(backend, log, { eventsCheckMs: 50 });
    base = `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('the page is served with a strict Content-Security-Policy; its script as JavaScript; /dashboard/ redirects', async () => {
    const page = await fetch(`${base}/dashboard`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.match(await page.text(), /<script type="module" src="dashboard\/app\.js">/);
    const script = await fetch(`${base}/dashboard/app.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
    const slash = await fetch(`${base}/dashboard/`, { redirect: 'manual' });
    assert.equal(slash.status, 308);
    assert.equal(slash.headers.get('location'), '../dashboard');
    assert.equal((await fetch(`${base}/dashboard/other.js`)).status, 404);
  });

  test('/v1/status from statusJson() alone gains sync and health and keeps its other fields; /v1/events streams it', async () => {
    const status = (await (await fetch(`${base}/v1/status`)).json()) as StatusView;
    assert.equal((status.hosts['n1'] as HostView & { appliedDigest?: string }).appliedDigest, 'd1');
    assert.equal(status.hosts['n1']?.sync, 'Synced');
    assert.equal(status.hosts['n1']?.health, 'Healthy');
    assert.equal(status.hosts['n1']?.since, 1);

    const controller = new AbortController();
    const res = await fetch(`${base}/v1/events`, { signal: controller.signal });
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body?.getReader();
    assert.ok(reader);
    let text = '';
    while (!text.includes('\n\n', text.indexOf('event: status'))) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
    controller.abort();
    const data = /event: status\ndata: (.*)\n\n/.exec(text)?.[1];
    assert.ok(data, text);
    assert.equal((JSON.parse(data) as StatusView).hosts['n1']?.sync, 'Synced');
  });
});

/** A PNG of at least the given size whose pixels are not all one colour. */
function assertPlausiblePng(png: Buffer, minWidth: number, minHeight: number): void {
  assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'PNG signature');
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  assert.ok(width >= minWidth && height >= minHeight && width <= 4 * minWidth && height <= 20 * minHeight, `${width}x${height}`);
  const idat: Buffer[] = [];
  for (let off = 8; off < png.length; ) {
    const len = png.readUInt32BE(off);
    if (png.toString('latin1', off + 4, off + 8) === 'IDAT') idat.push(png.subarray(off + 8, off + 8 + len));
    off += 12 + len;
  }
  // Distinct byte values in the (filtered) scanlines: a blank page has a handful, a rendered one hundreds.
  const raw = inflateSync(Buffer.concat(idat));
  const distinct = new Set(raw).size;
  assert.ok(distinct > 64, `only ${distinct} distinct byte values: the screenshot looks blank`);
  assert.ok(png.length > 20_000, `screenshot is only ${png.length} bytes`);
}
