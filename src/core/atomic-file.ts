// The one way forseti writes a state file (journal, sightings, alert queue, pending status files, last-good, the
// agent key): to a temporary file in the same directory, flushed to the disk, then renamed over the file, and the
// directory flushed too. A crash or a full disk leaves the old content or the new, never a mix; a failed write
// removes its temporary file.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoCode } from './errors.ts';

export interface AtomicWriteOptions {
  /** File mode of a new file; default 0o644 (less the umask). */
  mode?: number;
}

/** Replaces `file` with `data`, whole or not at all. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const tmp = await writeTemporary(file, data, options);
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDirectory(dirname(file));
}

/** Creates `file` with `data` unless it exists (then false, and the file is left as it is); whole or not at all. */
export async function createFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<boolean> {
  const tmp = await writeTemporary(file, data, options);
  try {
    await link(tmp, file);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false;
    throw err;
  } finally {
    await rm(tmp, { force: true });
  }
  await syncDirectory(dirname(file));
  return true;
}

/** `value` as indented JSON, replacing `file` whole. */
export function writeJsonAtomic(file: string, value: unknown, options: AtomicWriteOptions & { indent?: number } = {}): Promise<void> {
  return writeFileAtomic(file, `${JSON.stringify(value, null, options.indent)}\n`, options);
}

/** The file's text, or undefined when it does not exist; any other failure throws. */
export async function readFileIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

async function writeTemporary(file: string, data: string | Uint8Array, options: AtomicWriteOptions): Promise<string> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', options.mode ?? 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  return tmp;
}

/** Makes a rename or link in `dir` durable; a file system that cannot sync a directory is left at that. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => null);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on a directory (EINVAL); the rename itself is still atomic.
  } finally {
    await handle.close();
  }
}
