// Maps a requested name to a regular file inside the root and opens it. The root and the file
// are compared by real path, so a symlink may point anywhere inside the root but never out.
// Only regular files are opened, and never in a way that can block: opening a FIFO for reading
// waits for a writer, and each such open held one of libuv's four file-system threads for good.

import { constants, type promises as fsp } from 'node:fs';
import { lstat, open, realpath } from 'node:fs/promises';
import path from 'node:path';
import { TftpAccessViolationError, TftpFileNotFoundError, TftpSourceError } from './errors.ts';

/**
 * The name relative to the root, or an access violation. Backslashes count as separators (DOS-era
 * PXE clients send them), one leading slash is stripped as tftpd-hpa does, and any `..`
 * component is refused outright, even one that would stay inside the root.
 */
export function confineName(requested: string): string {
  let name = requested.replaceAll('\\', '/');
  if (name.startsWith('/')) name = name.slice(1);
  if (name.startsWith('/')) throw new TftpAccessViolationError(`absolute path ${JSON.stringify(requested)} is outside the root`);
  if (name.split('/').includes('..')) throw new TftpAccessViolationError(`path ${JSON.stringify(requested)} leaves the root`);
  return path.posix.normalize(name === '' ? '.' : name);
}

export interface OpenedFile {
  handle: fsp.FileHandle;
  size: number;
}

/** Opens `name` (already passed through confineName) under `root` for reading. */
export async function openInRoot(root: string, name: string): Promise<OpenedFile> {
  const realRoot = await realpath(root).catch((err: unknown) => {
    throw new TftpSourceError(`root ${root} is not usable: ${describe(err)}`);
  });
  let real: string;
  try {
    real = await realpath(path.join(realRoot, name));
  } catch (err) {
    throw fsError(err, name);
  }
  const inside = realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep;
  if (!real.startsWith(inside)) throw new TftpAccessViolationError(`${JSON.stringify(name)} resolves outside the root`);
  // A FIFO, socket or device is refused before it is opened. The real path has no symlinks, so
  // lstat sees what open would.
  const before = await lstat(real).catch((err: unknown) => {
    throw fsError(err, name);
  });
  if (!before.isFile()) throw notRegular(name);
  let handle: fsp.FileHandle;
  try {
    // O_NOFOLLOW: if a symlink appeared since, refuse rather than follow. O_NONBLOCK: if a FIFO
    // replaced the file since, the open returns at once and fstat below refuses it (on a regular
    // file O_NONBLOCK changes nothing).
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw fsError(err, name);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw notRegular(name);
    return { handle, size: stat.size };
  } catch (err) {
    await handle.close();
    throw err instanceof TftpAccessViolationError ? err : fsError(err, name);
  }
}

function notRegular(name: string): TftpAccessViolationError {
  return new TftpAccessViolationError(`${JSON.stringify(name)} is not a regular file`);
}

function fsError(err: unknown, name: string): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new TftpFileNotFoundError(`${JSON.stringify(name)} not found`);
  if (code === 'EACCES' || code === 'EPERM' || code === 'ELOOP') return new TftpAccessViolationError(`${JSON.stringify(name)}: ${code}`);
  return new TftpSourceError(`${JSON.stringify(name)}: ${describe(err)}`);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
