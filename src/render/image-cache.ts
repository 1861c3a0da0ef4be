import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Image, ImageFile } from '../model/types.ts';
import type { Logger } from '../log.ts';
import { DownloadGuard } from './download-guard.ts';
import { ImageChecksumError, ImageFetchError, ImageUrlRefusedError } from './image-errors.ts';
import { DEFAULT_IMAGE_POLICY, downloadLimits, ImageLimitError, type DownloadLimits, type ImagePolicy } from './image-limits.ts';
import { imageTarget, openImageSource, type OpenedSource } from './image-source.ts';
import { errorMessage } from '../core/errors.ts';

export { ImageChecksumError, ImageFetchError, ImageUrlRefusedError } from './image-errors.ts';
export { ImageLimitError } from './image-limits.ts';

/** True for the refusals the cache itself makes (as opposed to the caller's abort reason passed through). */
export function isImageError(err: unknown): boolean {
  return err instanceof ImageFetchError || err instanceof ImageChecksumError || err instanceof ImageUrlRefusedError || err instanceof ImageLimitError;
}

interface Transfer {
  image: string;
  url: string;
  since: number;
  /** Given up (timeout, cap, abandoned apply) while its read or write has not come back yet. */
  abandoned: boolean;
}

/** Kernels and initrds kept by content digest: fetched once, verified, then served from disk. */
export class ImageCache {
  private readonly transfers = new Set<Transfer>();
  private seq = 0;

  constructor(readonly dir: string, private readonly log: Logger, private readonly policy: ImagePolicy = DEFAULT_IMAGE_POLICY) {}

  pathOf(sha256: string): string {
    return join(this.dir, sha256);
  }

  async has(sha256: string): Promise<boolean> {
    return stat(this.pathOf(sha256)).then((s) => s.isFile(), () => false);
  }

  /** Every file of the image, with the image's own download settings; `signal` abandons the fetch at once. */
  async ensureImage(image: Image, signal?: AbortSignal): Promise<void> {
    const limits = downloadLimits(this.policy, image.name, image.download);
    for (const file of [image.kernel, ...image.initrds]) await this.ensureFile(image.name, file, { limits, ...(signal ? { signal } : {}) });
  }

  /** How long fetching every file of the image may take at most; 0 when its settings are refused (ensureImage says why). */
  boundMs(image: Image): number {
    try {
      return (1 + image.initrds.length) * downloadLimits(this.policy, image.name, image.download).totalMs;
    } catch {
      return 0;
    }
  }

  /**
   * The URL is checked before the cache is looked at, so a commit naming a refused URL is refused even when a file
   * with its digest is cached already.
   */
  async ensureFile(imageName: string, file: ImageFile, options: { limits?: DownloadLimits; signal?: AbortSignal } = {}): Promise<void> {
    const target = imageTarget(imageName, file.url, this.policy.fileRoots);
    if (await this.has(file.sha256)) return;
    options.signal?.throwIfAborted();
    await mkdir(this.dir, { recursive: true });
    const limits = options.limits ?? downloadLimits(this.policy, imageName);
    const guard = new DownloadGuard(limits, (reason) => new ImageFetchError(imageName, file.url, reason), options.signal);
    const tmp = join(this.dir, `.partial-${file.sha256}-${process.pid}-${++this.seq}`);
    const transfer: Transfer = { image: imageName, url: file.url, since: Date.now(), abandoned: false };
    this.transfers.add(transfer);
    const hash = createHash('sha256');
    let bytes = 0;
    let lastReport = Date.now();
    let source: OpenedSource | undefined;
    const meter = new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        hash.update(chunk);
        bytes += chunk.length;
        guard.progress(chunk.length);
        if (Date.now() - lastReport > 5000) {
          lastReport = Date.now();
          this.log.info({ image: imageName, url: file.url, bytes }, 'downloading image');
        }
        done(null, chunk);
      },
    });
    const work = (async () => {
      source = await openImageSource(imageName, target, this.policy, limits, guard.signal);
      // Errors reach us through pipeline; this keeps a stream that is never piped (too large) from throwing.
      source.stream.on('error', () => undefined);
      guard.opened(source.size);
      await pipeline(source.stream, meter, createWriteStream(tmp), { signal: guard.signal });
    })();
    try {
      // Raced: a read stuck in the thread pool (a hung network file system) does not hold the apply.
      await Promise.race([work, guard.aborted]);
      if (hash.digest('hex') !== file.sha256) throw new ImageChecksumError(imageName, file.url, file.sha256);
      await rename(tmp, this.pathOf(file.sha256));
      this.log.info({ image: imageName, url: file.url, bytes, sha256: file.sha256 }, 'image cached');
    } catch (err) {
      const reason: unknown = guard.signal.aborted ? guard.signal.reason : err;
      if (isImageError(reason) || options.signal?.aborted) throw reason;
      throw new ImageFetchError(imageName, file.url, errorMessage(reason));
    } finally {
      guard.dispose();
      transfer.abandoned = true;
      // The partial file goes once the transfer has really ended, also when it was given up before.
      void work
        .catch(() => undefined)
        .finally(() => {
          source?.close();
          this.transfers.delete(transfer);
          return rm(tmp, { force: true }).catch(() => undefined);
        });
    }
  }

  /** Transfers running or given up but not yet ended, for a stop that must say what it leaves behind. */
  running(): string[] {
    return [...this.transfers].map((t) => `image ${t.image}: ${t.abandoned ? 'abandoned read of' : 'fetching'} ${t.url} (${Math.round((Date.now() - t.since) / 1000)} s)`);
  }
}
