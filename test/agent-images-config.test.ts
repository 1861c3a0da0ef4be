// The agent config's `images:` section, the bound past which a commit apply counts as wedged, and /healthz saying so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APPLY_STAGE_BOUND_MS, CommitAbandonedError, CommitApply } from '../src/agent/commit-apply.ts';
import { loadAgentConfig } from '../src/agent/config.ts';
import { createLogger } from '../src/log.ts';
import { DEFAULT_CEILING, DEFAULT_DOWNLOAD, downloadLimits, ImageLimitError } from '../src/render/image-limits.ts';
import { createBootHttpServer, listen } from '../src/serve/boot-http.ts';
import { statusOnlyBackend } from './fixtures/status-only-backend.ts';
// Every agent response these tests see is checked against schemas/openapi.json.
import './fixtures/api-contract.ts';

async function withConfig(text: string, check: (file: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'forseti-images-config-'));
  try {
    const file = join(dir, 'agent.yaml');
    await writeFile(file, `lab: {url: 'http://git.example/lab.git'}\n${text}`);
    await check(file, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('agent config: images.fileRoots relative to the config file; defaults and ceilings; a default above the built-in ceiling raises it', async () => {
  await withConfig('', async (file) => {
    const { images } = await loadAgentConfig(file);
    assert.deepEqual(images, { fileRoots: [], download: DEFAULT_DOWNLOAD, ceiling: DEFAULT_CEILING });
  });
  await withConfig('images:\n  fileRoots: [mirror, /srv/images]\n  download: {idleTimeoutSeconds: 5, maxMiB: 32768}\n', async (file, dir) => {
    const { images } = await loadAgentConfig(file);
    assert.deepEqual(images?.fileRoots, [join(dir, 'mirror'), '/srv/images']);
    assert.equal(images?.download.idleTimeoutSeconds, 5);
    assert.equal(images?.ceiling.maxMiB, 32768, 'the ceiling follows a larger default');
    assert.equal(images?.ceiling.totalTimeoutSeconds, DEFAULT_CEILING.totalTimeoutSeconds);
  });
  const refused: Array<[string, RegExp]> = [
    ['images: {fileRoots: /srv}\n', /images\.fileRoots must be a list of directories/],
    ['images: {download: {maxBytes: 3}}\n', /images\.download\.maxBytes is not a setting/],
    ['images: {download: {idleTimeoutSeconds: 0}}\n', /images\.download\.idleTimeoutSeconds must be a positive number/],
    ['images: {download: {maxMiB: 100}, ceiling: {maxMiB: 10}}\n', /images\.download\.maxMiB 100 is above images\.ceiling\.maxMiB 10/],
  ];
  for (const [text, message] of refused) {
    await withConfig(text, async (file) => {
      await assert.rejects(loadAgentConfig(file), message);
    });
  }
});

test('download limits: an image may change each setting up to the ceiling, not beyond', () => {
  const policy = { fileRoots: [], download: DEFAULT_DOWNLOAD, ceiling: DEFAULT_CEILING };
  assert.deepEqual(downloadLimits(policy, 'i', { idleTimeoutSeconds: 2, maxMiB: 0.5 }), {
    connectMs: DEFAULT_DOWNLOAD.connectTimeoutSeconds * 1000,
    idleMs: 2000,
    totalMs: DEFAULT_DOWNLOAD.totalTimeoutSeconds * 1000,
    maxBytes: 512 * 1024,
  });
  assert.equal(downloadLimits(policy, 'i', { totalTimeoutSeconds: DEFAULT_CEILING.totalTimeoutSeconds }).totalMs, DEFAULT_CEILING.totalTimeoutSeconds * 1000);
  assert.throws(() => downloadLimits(policy, 'big', { totalTimeoutSeconds: DEFAULT_CEILING.totalTimeoutSeconds + 1 }), ImageLimitError);
});

test('a commit apply is overdue past its stage bound; abandoning it aborts its signal with the reason', () => {
  let now = 0;
  const apply = new CommitApply('a'.repeat(40), () => now);
  now = APPLY_STAGE_BOUND_MS;
  assert.equal(apply.overdue(), null);
  apply.enter('images (talos)', 60_000);
  now += 60_000;
  assert.equal(apply.overdue(), null);
  now += 1000;
  assert.equal(apply.overdue(), 'commit aaaaaaaaaaaa has been in stage images (talos) for 61 s, past its bound of 60 s');
  assert.match(apply.describe(), /^applying commit aaaaaaaaaaaa \(images \(talos\), 61 s\)$/);
  apply.abandon('commit bbbbbbbbbbbb arrived');
  assert.ok(apply.signal.reason instanceof CommitAbandonedError);
  assert.equal((apply.signal.reason as Error).message, 'applying commit aaaaaaaaaaaa abandoned: commit bbbbbbbbbbbb arrived');
  assert.throws(() => apply.enter('render', 1000), CommitAbandonedError, 'no stage starts once abandoned');
});

test('/healthz: 200 while nothing is past its bound, 503 with the reason when something is', async () => {
  let problem: string | null = null;
  const server = createBootHttpServer(statusOnlyBackend({ statusJson: () => ({ revision: null, generation: null, hosts: {} }), health: () => problem }), createLogger({ level: 'silent' }));
  const { port } = (await listen(server, '127.0.0.1', 0)) satisfies AddressInfo;
  try {
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.deepEqual([ok.status, await ok.text()], [200, 'ok\n']);
    problem = 'commit aaaaaaaaaaaa has been in stage images (talos) for 61 s, past its bound of 60 s';
    const wedged = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.deepEqual([wedged.status, await wedged.text()], [503, `unhealthy: ${problem}\n`]);
  } finally {
    server.close();
  }
});
