// Where an image file's bytes come from. http(s) through undici with connect, header and body timeouts; file://
// only below the directories the operator lists (images.fileRoots), only regular files, opened so that nothing
// (a FIFO without a writer, a device, a symlink out of the root) can block or be read.

import { constants } from 'node:fs';
import { lstat, open, realpath } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { isIP } from 'node:net';
import { Agent, errors, request } from 'undici';
import { HttpAllowList, isNotAllowed, NOT_ALLOWED } from './image-http-allow.ts';
import { ImageFetchError, ImageUrlRefusedError } from './image-errors.ts';
import type { DownloadLimits } from './image-limits.ts';
import { errorMessage } from '../core/errors.ts';

export type ImageTarget = { kind: 'file'; url: string; path: string } | { kind: 'http'; url: string };

export interface OpenedSource {
  stream: Readable;
  /** Bytes the source says it has (a file's size, Content-Length), when it says. */
  size?: number;
  /** Releases what the stream does not release itself (the HTTP connection pool). */
  close(): void;
}

const MAX_REDIRECTIONS = 5;

/**
 * What the URL names, checked without touching the file system: a file:// path must lie below one of `fileRoots`
 * as written, so a path outside them is never even looked at.
 */
export function imageTarget(image: string, url: string, fileRoots: readonly string[]): ImageTarget {
  const refuse = (reason: string): ImageUrlRefusedError => new ImageUrlRefusedError(image, url, reason);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw refuse('not a valid URL');
  }
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return { kind: 'http', url: parsed.href };
  if (parsed.protocol !== 'file:') throw refuse(`the scheme ${parsed.protocol} is not http, https or file`);
  if (fileRoots.length === 0) throw refuse('file:// images are read only below images.fileRoots of the agent config, and it lists none');
  if (parsed.search || parsed.hash) throw refuse('a file:// URL has no query or fragment');
  let path: string;
  try {
    path = fileURLToPath(parsed);
  } catch {
    throw refuse('not a local file URL');
  }
  if (/[\u0000-\u001f\u007f]/.test(path)) throw refuse('the path contains a control character');
  const normal = resolve(path);
  if (!fileRoots.some((root) => isBelow(normal, resolve(root)))) throw refuse("outside the agent's image file roots (images.fileRoots)");
  return { kind: 'file', url, path: normal };
}

export function openImageSource(image: string, target: ImageTarget, policy: { fileRoots: readonly string[]; httpAllow?: readonly string[] }, limits: DownloadLimits, signal: AbortSignal): Promise<OpenedSource> {
  return target.kind === 'file' ? openLocalFile(image, target.url, target.path, policy.fileRoots) : openRemote(image, target.url, new HttpAllowList(policy.httpAllow), limits, signal);
}

/**
 * The real path must still lie below a root's real path (a symlink may point anywhere inside the roots, never out),
 * be a regular file before it is opened (a device is never opened), and still be one once open: O_NOFOLLOW refuses a
 * symlink swapped in meanwhile and O_NONBLOCK makes a FIFO swapped in open at once, to be refused by fstat.
 */
async function openLocalFile(image: string, url: string, path: string, fileRoots: readonly string[]): Promise<OpenedSource> {
  const fail = (reason: string): ImageFetchError => new ImageFetchError(image, url, reason);
  const real = await realpath(path).catch((err: unknown) => {
    throw fail(fsReason(err));
  });
  const roots = await Promise.all(fileRoots.map((root) => realpath(root).catch(() => null)));
  if (!roots.some((root) => root !== null && isBelow(real, root))) throw new ImageUrlRefusedError(image, url, "resolves outside the agent's image file roots (images.fileRoots)");
  const before = await lstat(real).catch((err: unknown) => {
    throw fail(fsReason(err));
  });
  if (!before.isFile()) throw fail('not a regular file');
  const handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY).catch((err: unknown) => {
    throw fail(fsReason(err));
  });
  const info = await handle.stat().catch(() => null);
  if (!info?.isFile()) {
    await handle.close().catch(() => undefined);
    throw fail('not a regular file');
  }
  return { stream: handle.createReadStream(), size: info.size, close: () => void handle.close().catch(() => undefined) };
}

const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/**
 * GET with every hop checked by the allow-list (src/render/image-http-allow.ts): an address literal before the
 * connection, a name at the connection, by the lookup the connection uses. A refused hop, the first or a redirect's,
 * is told only NOT_ALLOWED, for the URL the lab wrote.
 */
async function openRemote(image: string, url: string, allow: HttpAllowList, limits: DownloadLimits, signal: AbortSignal): Promise<OpenedSource> {
  const refused = (): ImageUrlRefusedError => new ImageUrlRefusedError(image, url, NOT_ALLOWED);
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    const named = allow.namesUrl(current);
    const literal = current.hostname.replace(/^\[|\]$/g, '');
    if (isIP(literal) && !allow.allows(literal, named)) throw refused();
    const agent = new Agent({ connect: { timeout: limits.connectMs, lookup: allow.pinnedLookup(named) }, headersTimeout: limits.idleMs, bodyTimeout: limits.idleMs });
    const close = (): void => void agent.destroy().catch(() => undefined);
    try {
      const res = await request(current, { dispatcher: agent, signal });
      const location = res.headers['location'];
      if (REDIRECTS.has(res.statusCode) && typeof location === 'string') {
        res.body.on('error', () => undefined).destroy();
        close();
        if (hop >= MAX_REDIRECTIONS) throw new ImageFetchError(image, url, `more than ${MAX_REDIRECTIONS} redirects`);
        const next = new URL(location, current);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') throw refused();
        current = next;
        continue;
      }
      if (res.statusCode !== 200) {
        res.body.on('error', () => undefined).destroy();
        throw new ImageFetchError(image, url, `HTTP ${res.statusCode}`);
      }
      const length = Number(res.headers['content-length']);
      return { stream: res.body, ...(Number.isSafeInteger(length) ? { size: length } : {}), close };
    } catch (err) {
      close();
      if (signal.aborted || err instanceof ImageFetchError || err instanceof ImageUrlRefusedError) throw err;
      if (isNotAllowed(err)) throw refused();
      if (err instanceof TypeError && /Invalid URL/i.test(err.message)) throw new ImageFetchError(image, url, 'a redirect to an invalid URL');
      throw new ImageFetchError(image, url, httpReason(err, limits));
    }
  }
}

/** The reason of a transfer error, in the settings' own words where a limit was hit. */
export function httpReason(err: unknown, limits: DownloadLimits): string {
  if (err instanceof errors.ConnectTimeoutError) return `no connection within ${limits.connectMs / 1000} s (download.connectTimeoutSeconds)`;
  if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) return `no data for ${limits.idleMs / 1000} s (download.idleTimeoutSeconds)`;
  const code = (err as { code?: unknown } | null)?.code;
  const message = errorMessage(err);
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ELOOP') return 'a symlink where none may be';
  return code ?? errorMessage(err);
}

function isBelow(path: string, root: string): boolean {
  return path.startsWith(root.endsWith(sep) ? root : root + sep);
}
