import { constants, type Stats } from 'node:fs';
import { lstat, open, stat, type FileHandle } from 'node:fs/promises';

/**
 * Opens `path` for reading if it is a regular file, and never blocks a libuv file-system thread doing so: what is not
 * a regular file (a FIFO, a device, a directory, a socket) is never opened, and O_NONBLOCK makes a FIFO put there
 * between the check and the open return at once, to be refused by fstat. A FIFO opened without it waits for a writer
 * and holds one of the four threads every file read shares; a few such requests would stop all file serving.
 * null: not a regular file. File-system errors (ENOENT, EACCES, ELOOP with `followSymlinks: false`) are thrown.
 */
export async function openRegularFile(path: string, options: { followSymlinks: boolean }): Promise<{ handle: FileHandle; info: Stats } | null> {
  const before = await (options.followSymlinks ? stat(path) : lstat(path));
  if (!before.isFile()) return null;
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (options.followSymlinks ? 0 : constants.O_NOFOLLOW);
  const handle = await open(path, flags);
  try {
    const info = await handle.stat();
    if (info.isFile()) return { handle, info };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
  await handle.close().catch(() => undefined);
  return null;
}
