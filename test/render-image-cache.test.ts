import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createLogger } from '../src/log.ts';
import { ImageCache, ImageChecksumError, ImageFetchError } from '../src/render/image-cache.ts';

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
    const cache = new ImageCache(join(dir, 'cache'), log);
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
      assert.match(err.message, /^image broken: .* has sha256 [0-9a-f]{64}, but the lab declares 0{64}$/);
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
