import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Image, ImageFile } from '../model/types.ts';
import type { Logger } from '../log.ts';

export class ImageFetchError extends Error {
  constructor(readonly image: string, readonly url: string, reason: string) {
    super(`image ${image}: cannot fetch ${url}: ${reason}`);
    this.name = 'ImageFetchError';
  }
}

export class ImageChecksumError extends Error {
  constructor(readonly image: string, readonly url: string, expected: string, actual: string) {
    super(`image ${image}: ${url} has sha256 ${actual}, but the lab declares ${expected}`);
    this.name = 'ImageChecksumError';
  }
}

/** Kernels and initrds kept by content digest: fetched once, verified, then served from disk. */
export class ImageCache {
  constructor(readonly dir: string, private readonly log: Logger) {}

  pathOf(sha256: string): string {
    return join(this.dir, sha256);
  }

  async has(sha256: string): Promise<boolean> {
    return stat(this.pathOf(sha256)).then((s) => s.isFile(), () => false);
  }

  async ensureImage(image: Image): Promise<void> {
    for (const file of [image.kernel, ...image.initrds]) await this.ensureFile(image.name, file);
  }

  async ensureFile(imageName: string, file: ImageFile): Promise<void> {
    if (await this.has(file.sha256)) return;
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `.partial-${file.sha256}-${process.pid}`);
    const hash = createHash('sha256');
    let bytes = 0;
    let lastReport = Date.now();
    const meter = new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        hash.update(chunk);
        bytes += chunk.length;
        if (Date.now() - lastReport > 5000) {
          lastReport = Date.now();
          this.log.info({ image: imageName, url: file.url, bytes }, 'downloading image');
        }
        done(null, chunk);
      },
    });
    try {
      await pipeline(await openSource(imageName, file.url), meter, createWriteStream(tmp));
      const actual = hash.digest('hex');
      if (actual !== file.sha256) throw new ImageChecksumError(imageName, file.url, file.sha256, actual);
      await rename(tmp, this.pathOf(file.sha256));
      this.log.info({ image: imageName, url: file.url, bytes, sha256: actual }, 'image cached');
    } catch (err) {
      await rm(tmp, { force: true });
      if (err instanceof ImageChecksumError || err instanceof ImageFetchError) throw err;
      throw new ImageFetchError(imageName, file.url, err instanceof Error ? err.message : String(err));
    }
  }
}

async function openSource(imageName: string, url: string): Promise<Readable> {
  const parsed = new URL(url);
  if (parsed.protocol === 'file:') return createReadStream(fileURLToPath(parsed));
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ImageFetchError(imageName, url, `unsupported scheme ${parsed.protocol}`);
  const res = await fetch(url, { redirect: 'follow' });
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel();
    throw new ImageFetchError(imageName, url, `HTTP ${res.status}`);
  }
  return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
}
