import { closeSync, constants, fstatSync, lstatSync, openSync, statSync, type Stats } from 'node:fs';

/** A regular file opened for reading: its descriptor, which whoever holds it closes, and what fstat said of it. */
export interface OpenFile {
  fd: number;
  info: Stats;
}

/**
 * Opens `path` for reading if it is a regular file. null: not a regular file. File-system errors (ENOENT, EACCES,
 * ELOOP with `followSymlinks: false`) are thrown.
 *
 * On the calling thread, not the file-system threads: a few metadata calls that the page and dentry caches answer in
 * microseconds, where each hand-off to a pool thread costs two context switches (six hand-offs a request cost
 * `forseti serve http` 1.5-1.8 ms of CPU per request on a busy two-core machine, nginx 0.09 ms; its worker opens files
 * on its event loop too). Nothing here waits for another process: what is not a regular file (a FIFO, a device, a
 * directory, a socket) is never opened, and O_NONBLOCK makes a FIFO put there between the check and the open return
 * at once, to be refused by fstat (opened without it, a FIFO waits for a writer).
 */
export function openRegularFile(path: string, options: { followSymlinks: boolean }): OpenFile | null {
  const before = options.followSymlinks ? statSync(path) : lstatSync(path);
  if (!before.isFile()) return null;
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (options.followSymlinks ? 0 : constants.O_NOFOLLOW);
  const fd = openSync(path, flags);
  try {
    const info = fstatSync(fd);
    if (info.isFile()) return { fd, info };
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
  closeQuietly(fd);
  return null;
}

/** Closes a descriptor this process opened for reading; a failure to close one is nothing a client can be told. */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed, or EIO from a file system gone bad: either way the descriptor is released */
  }
}
