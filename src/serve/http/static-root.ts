// Maps a request path to a regular file inside a root directory and opens it. Root and file are
// compared by real path, so a symlink may point anywhere inside the root but never out of it. A FIFO
// or a device inside the root is refused without being opened, so it cannot hold a file-system thread.

import { realpathSync } from 'node:fs';
import path from 'node:path';
import { openRegularFile, type OpenFile } from './open-regular.ts';

/** Base of the refusals; `status` is what the client is told. */
export abstract class StaticPathError extends Error {
  abstract readonly status: number;
}

/** The path is not a valid percent-encoded absolute path. */
export class StaticBadPathError extends StaticPathError {
  override readonly name = 'StaticBadPathError';
  readonly status = 400;
}

/** The path leaves the root, names a directory or something else that is not a regular file, or is unreadable. */
export class StaticForbiddenError extends StaticPathError {
  override readonly name = 'StaticForbiddenError';
  readonly status = 403;
}

export class StaticNotFoundError extends StaticPathError {
  override readonly name = 'StaticNotFoundError';
  readonly status = 404;
}

/**
 * The decoded path relative to the root. A `..` segment is refused outright (also percent-encoded),
 * even one that would stay inside the root, as are NUL bytes and backslashes.
 */
export function confineUrlPath(urlPath: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    throw new StaticBadPathError(`path ${JSON.stringify(urlPath)} is not valid percent-encoding`);
  }
  if (!decoded.startsWith('/')) throw new StaticBadPathError(`path ${JSON.stringify(urlPath)} is not absolute`);
  if (decoded.includes('\0') || decoded.includes('\\')) throw new StaticForbiddenError(`path ${JSON.stringify(urlPath)} contains a NUL or backslash`);
  const segments = decoded.split('/');
  if (segments.includes('..')) throw new StaticForbiddenError(`path ${JSON.stringify(urlPath)} leaves the root`);
  return path.posix.normalize(`.${decoded}`);
}

/**
 * Opens the file a request path names under `root`; the caller owns the descriptor. On the calling thread, as
 * openRegularFile is and for its reason: realpath(3) is lstat and readlink through the caches.
 */
export function openUnderRoot(root: string, urlPath: string): OpenFile {
  const name = confineUrlPath(urlPath);
  const realRoot = realpathSync.native(root);
  let real: string;
  try {
    real = realpathSync.native(path.join(realRoot, name));
  } catch (err) {
    throw fsError(err, urlPath);
  }
  if (real !== realRoot && !real.startsWith(realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep)) {
    throw new StaticForbiddenError(`${JSON.stringify(urlPath)} resolves outside the root`);
  }
  let file: OpenFile | null;
  try {
    // Not following: the real path has no symlinks; if one appeared since, refuse rather than follow.
    file = openRegularFile(real, { followSymlinks: false });
  } catch (err) {
    throw fsError(err, urlPath);
  }
  if (!file) throw new StaticForbiddenError(`${JSON.stringify(urlPath)} is not a regular file`);
  return file;
}

function fsError(err: unknown, urlPath: string): StaticPathError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new StaticNotFoundError(`${JSON.stringify(urlPath)} not found`);
  if (code === 'EISDIR') return new StaticForbiddenError(`${JSON.stringify(urlPath)} is a directory`);
  return new StaticForbiddenError(`${JSON.stringify(urlPath)}: ${code ?? String(err)}`);
}
