import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createLogger } from '../src/log.ts';
import { ImageCache, ImageChecksumError, ImageFetchError, ImageLimitError, ImageUrlRefusedError } from '../src/render/image-cache.ts';
import { DEFAULT_IMAGE_POLICY } from '../src/render/image-limits.ts';

const log = createLogger({ level: 'silent' });
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

test('image cache: file and http sources are verified and kept by digest; a wrong checksum names the image', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'forseti-images-'));
  const body = Buffer.from('kernel bytes '.repeat(1000));
  const server = createServer((req, res) => {
    if (req.url === '/vmlinuz') res.end(body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const cache = new ImageCache(join(dir, 'cache'), log, { ...DEFAULT_IMAGE_POLICY, fileRoots: [dir], httpAllow: ['127.0.0.1'] });
    const local = join(dir, 'initrd.img');
    await writeFile(local, 'initrd bytes');
    await cache.ensureImage({
      name: 'tiny',
      kernel: { url: `http://127.0.0.1:${port}/vmlinuz`, sha256: sha(body) },
      initrds: [{ url: pathToFileURL(local).href, sha256: sha('initrd bytes') }],
      refs: {},
    });
    assert.deepEqual(await readFile(cache.pathOf(sha(body))), body);
    assert.ok(await cache.has(sha('initrd bytes')));

    const wrong = '0'.repeat(64);
    await assert.rejects(cache.ensureFile('broken', { url: `http://127.0.0.1:${port}/vmlinuz`, sha256: wrong }), (err: unknown) => {
      assert.ok(err instanceof ImageChecksumError);
      assert.match(err.message, /^image broken: \S+ does not match the declared sha256 0{64}; it was not kept$/);
      assert.ok(!err.message.includes(sha(body)), 'the digest of what was read is never named');
      return true;
    });
    assert.equal(await cache.has(wrong), false);
    await assert.rejects(cache.ensureFile('gone', { url: `http://127.0.0.1:${port}/nothing`, sha256: wrong }), ImageFetchError);
    assert.deepEqual((await readdir(join(dir, 'cache'))).filter((n) => n.startsWith('.partial')), [], 'no partial files left');
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

/** A cache whose file roots are `roots`, with small limits unless told. */
function cacheIn(dir: string, roots: string[], download: Partial<typeof DEFAULT_IMAGE_POLICY.download> = {}): ImageCache {
  return new ImageCache(join(dir, 'cache'), log, { ...DEFAULT_IMAGE_POLICY, fileRoots: roots, httpAllow: ['127.0.0.1'], download: { ...DEFAULT_IMAGE_POLICY.download, ...download } });
}

async function partials(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'cache')).catch(() => [] as string[])).filter((n) => n.startsWith('.partial'));
}

test('image cache: file:// only below the file roots, only regular files, nothing opened that could block', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'forseti-images-'));
  try {
    const root = join(dir, 'mirror');
    const outside = join(dir, 'outside');
    await mkdir(root);
    await mkdir(outside);
    await writeFile(join(root, 'vmlinuz'), 'kernel');
    await writeFile(join(outside, 'shadow'), 'root:$6$secret');
    spawnSync('mkfifo', [join(outside, 'fifo')]);
    spawnSync('mkfifo', [join(root, 'fifo')]);
    await mkdir(join(root, 'dir'));
    await symlink(join(outside, 'shadow'), join(root, 'escape'));
    const cache = cacheIn(dir, [root]);
    const refused = (re: RegExp) => (err: unknown): boolean => {
      assert.ok(err instanceof ImageUrlRefusedError || err instanceof ImageFetchError, String(err));
      assert.match((err as Error).message, re);
      assert.ok(!(err as Error).message.includes(sha('root:$6$secret')));
      return true;
    };
    const url = (p: string): string => pathToFileURL(p).href;
    // A FIFO outside the roots would block whoever opened it: it is refused by its path alone.
    await assert.rejects(cache.ensureFile('fifo', { url: url(join(outside, 'fifo')), sha256: '0'.repeat(64) }), refused(/outside the agent's image file roots/));
    await assert.rejects(cache.ensureFile('shadow', { url: url(join(outside, 'shadow')), sha256: sha('root:$6$secret') }), refused(/outside the agent's image file roots/));
    await assert.rejects(cache.ensureFile('dotdot', { url: `file://${root}/../outside/shadow`, sha256: sha('root:$6$secret') }), refused(/outside the agent's image file roots/));
    await assert.rejects(cache.ensureFile('escape', { url: url(join(root, 'escape')), sha256: sha('root:$6$secret') }), refused(/resolves outside the agent's image file roots/));
    await assert.rejects(cache.ensureFile('fifo', { url: url(join(root, 'fifo')), sha256: '0'.repeat(64) }), refused(/not a regular file/));
    await assert.rejects(cache.ensureFile('dir', { url: url(join(root, 'dir')), sha256: '0'.repeat(64) }), refused(/not a regular file/));
    await assert.rejects(cacheIn(dir, ['/dev']).ensureFile('zero', { url: 'file:///dev/zero', sha256: '0'.repeat(64) }), refused(/not a regular file/));
    await assert.rejects(cacheIn(dir, []).ensureFile('none', { url: url(join(root, 'vmlinuz')), sha256: sha('kernel') }), refused(/lists none/));
    await assert.rejects(cache.ensureFile('ftp', { url: 'ftp://127.0.0.1/x', sha256: '0'.repeat(64) }), refused(/scheme ftp: is not/));

    // A digest already cached does not let a refused URL through.
    await cache.ensureFile('tiny', { url: url(join(root, 'vmlinuz')), sha256: sha('kernel') });
    await writeFile(join(outside, 'kernel-copy'), 'kernel');
    await assert.rejects(cache.ensureFile('copy', { url: url(join(outside, 'kernel-copy')), sha256: sha('kernel') }), refused(/outside/));
    assert.equal(await cache.has(sha('root:$6$secret')), false);
    assert.deepEqual(await partials(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('image cache: a stalled, a slow and an endless download are cut off with their reason; an abort ends a download at once', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'forseti-images-'));
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    const drip = (ms: number, bytes: number): void => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const t = setInterval(() => res.write(Buffer.alloc(bytes)), ms);
      timers.add(t);
      res.on('close', () => clearInterval(t));
    };
    if (req.url === '/stalled') drip(60_000, 1);
    else if (req.url === '/slow') drip(50, 1);
    else if (req.url === '/endless') drip(1, 64 * 1024);
    else if (req.url === '/declared-huge') res.writeHead(200, { 'content-length': String(8 * 1024 * 1024) }).write('x');
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const cache = cacheIn(dir, [], { idleTimeoutSeconds: 0.5, totalTimeoutSeconds: 2, maxMiB: 1 });
    const file = (path: string): { url: string; sha256: string } => ({ url: `${base}${path}`, sha256: '0'.repeat(64) });
    await assert.rejects(cache.ensureFile('stalled', file('/stalled')), /image stalled: cannot fetch \S+: no data for 0\.5 s \(download\.idleTimeoutSeconds\)$/);
    await assert.rejects(cache.ensureFile('slow', file('/slow')), /image slow: cannot fetch \S+: not complete within 2 s \(download\.totalTimeoutSeconds\)$/);
    await assert.rejects(cache.ensureFile('endless', file('/endless')), /image endless: cannot fetch \S+: larger than the cap of 1 MiB \(download\.maxMiB\)$/);
    await assert.rejects(cache.ensureFile('huge', file('/declared-huge')), /larger than the cap of 1 MiB/);
    await assert.rejects(cache.ensureFile('gone', file('/nothing')), /HTTP 404$/);

    const controller = new AbortController();
    const patient = cacheIn(dir, []);
    const pending = patient.ensureFile('stalled', file('/stalled'), { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('superseded by a newer commit')), 200);
    await assert.rejects(pending, /^Error: superseded by a newer commit$/);

    const asked = { name: 'big', kernel: file('/endless'), initrds: [], refs: {}, download: { maxMiB: 1e9 } };
    await assert.rejects(cache.ensureImage(asked), (err: unknown) => err instanceof ImageLimitError && /download\.maxMiB 1000000000 is above the agent's ceiling of 16384/.test(err.message));
    for (let i = 0; i < 50 && (await partials(dir)).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await partials(dir), [], 'no partial files left');
    assert.deepEqual(patient.running(), []);
  } finally {
    for (const t of timers) clearInterval(t);
    server.closeAllConnections();
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
