// Where the built form finds the files the code reads at run time (schemas, dashboard, the native TFTP pump).
// The sources read them next to themselves through their module URL (import.meta); the bundle cannot, so the build rewrites
// each module's URL to `moduleUrl('<its path in the repository>')`, resolved against a root that
// holds the same files at the same relative paths:
//   node dist/forseti.cjs   dist/assets/ (copied there by scripts/build-release.mjs)
//   dist/forseti (SEA)      a private directory (mode 0700) the embedded assets are written to on first use,
//                           removed when the process exits (a native addon must be a file to be loaded).
// Only the bundle imports this module (scripts/build-release.mjs injects it).
import { mkdtempSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { getRawAsset, isSea } from 'node:sea';
import { pathToFileURL } from 'node:url';

/** The assets' names (paths in the repository), set by the build. */
declare const FORSETI_ASSET_NAMES: readonly string[];

const DIR_PREFIX = 'forseti-sea-';

interface Root {
  url: URL;
}

// The root is a property of the running process, decided once: a per-process cache, not shared state.
const root: { value?: Root } = {};

/** The module URL (import.meta) it had in the sources, for the module at `sourcePath` (e.g. `src/model/schemas.ts`). */
export function moduleUrl(sourcePath: string): string {
  root.value ??= { url: pathToFileURL(`${isSea() ? extractAssets() : join(__dirname, 'assets')}/`) };
  return new URL(sourcePath, root.value.url).href;
}

function extractAssets(): string {
  removeLeftovers();
  // mkdtemp creates the directory with mode 0700: no other user can read or replace what is loaded from it.
  const dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  removeAtExit(dir);
  for (const name of FORSETI_ASSET_NAMES) {
    const file = join(dir, name);
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, new Uint8Array(getRawAsset(name) as ArrayBuffer), { mode: 0o400, flag: 'wx' });
  }
  return dir;
}

function removeAtExit(dir: string): void {
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', remove);
  // A signal with no handler of the program's own ends the process without 'exit': remove, then die of it.
  // When the program handles the signal (the agent stops cleanly), it exits and 'exit' removes the directory.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(signal) > 1) return;
      process.off(signal, onSignal);
      remove();
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** Directories of this user's earlier runs that were killed (SIGKILL leaves no chance to clean up). */
function removeLeftovers(): void {
  const uid = process.getuid?.();
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(name.slice(DIR_PREFIX.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || isAlive(pid)) continue;
    const path = join(tmpdir(), name);
    try {
      if (statSync(path).uid === uid) rmSync(path, { recursive: true, force: true });
    } catch {
      // Gone already, or not ours to remove.
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
