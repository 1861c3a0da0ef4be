// One bounded download, hashed as it streams (nothing is stored): http, https or file URLs, with a size cap, a
// limit on silence (no byte for `idleMs`) and on the whole transfer (`totalMs`). Progress goes to a callback.
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../../core/errors.ts';

export interface DownloadLimits {
  maxBytes: number;
  idleMs: number;
  totalMs: number;
}

export interface Progress {
  bytes: number;
  /** From Content-Length or the file's size; undefined when the server does not say. */
  total: number | undefined;
}

export class DownloadError extends Error {
  override readonly name = 'DownloadError';
  constructor(readonly url: string, reason: string) {
    super(`${url}: ${reason}`);
  }
}

export async function downloadSha256(url: string, limits: DownloadLimits, onProgress: (p: Progress) => void = () => undefined): Promise<{ sha256: string; bytes: number }> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DownloadError(url, 'not a URL');
  }
  const controller = new AbortController();
  let reason = '';
  const abort = (why: string): void => {
    reason ||= why;
    controller.abort();
  };
  const total = setTimeout(() => abort(`not complete after ${limits.totalMs / 1000} s`), limits.totalMs);
  let idle = setTimeout(() => abort(`no data for ${limits.idleMs / 1000} s`), limits.idleMs);
  const alive = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => abort(`no data for ${limits.idleMs / 1000} s`), limits.idleMs);
  };
  try {
    const { chunks, size } = await open(parsed, controller.signal, limits.maxBytes);
    const hash = createHash('sha256');
    let bytes = 0;
    onProgress({ bytes, total: size });
    for await (const chunk of chunks) {
      alive();
      bytes += chunk.length;
      if (bytes > limits.maxBytes) throw new DownloadError(url, `larger than the limit of ${limits.maxBytes} bytes`);
      hash.update(chunk);
      onProgress({ bytes, total: size });
    }
    if (size !== undefined && bytes !== size) throw new DownloadError(url, `ended after ${bytes} of ${size} bytes`);
    return { sha256: hash.digest('hex'), bytes };
  } catch (err) {
    if (err instanceof DownloadError) throw err;
    if (controller.signal.aborted) throw new DownloadError(url, reason);
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    throw new DownloadError(url, `${errorMessage(err)}${cause}`);
  } finally {
    clearTimeout(total);
    clearTimeout(idle);
    controller.abort();
  }
}

async function open(url: URL, signal: AbortSignal, maxBytes: number): Promise<{ chunks: AsyncIterable<Uint8Array>; size: number | undefined }> {
  if (url.protocol === 'file:') {
    const path = fileURLToPath(url);
    let size: number;
    try {
      size = statSync(path).size;
    } catch (err) {
      throw new DownloadError(url.href, (err as NodeJS.ErrnoException).code ?? String(err));
    }
    if (size > maxBytes) throw new DownloadError(url.href, `${size} bytes, larger than the limit of ${maxBytes}`);
    return { chunks: createReadStream(path, { signal }), size };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DownloadError(url.href, `unsupported scheme ${url.protocol} (http, https or file)`);
  const res = await fetch(url, { signal, redirect: 'follow' });
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    throw new DownloadError(url.href, `HTTP ${res.status}`);
  }
  const length = res.headers.get('content-length');
  const size = length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
  if (size !== undefined && size > maxBytes) {
    await res.body.cancel().catch(() => undefined);
    throw new DownloadError(url.href, `${size} bytes, larger than the limit of ${maxBytes}`);
  }
  return { chunks: res.body as unknown as AsyncIterable<Uint8Array>, size };
}
