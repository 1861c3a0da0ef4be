import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Exists and is not a zombie: reparented orphans (detached QEMU) may be reaped late by PID 1. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function signal(target: number, name: NodeJS.Signals): void {
  try {
    process.kill(target, name);
  } catch {
    // already gone
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** SIGTERM, then SIGKILL; resolves once the process is gone, throws if it survives. `group` signals its process group too. */
export async function killAndVerify(pid: number, opts: { group?: boolean; graceMs?: number } = {}): Promise<void> {
  if (!isAlive(pid)) return;
  signal(opts.group ? -pid : pid, 'SIGTERM');
  if (await waitGone(pid, opts.graceMs ?? 3000)) return;
  signal(opts.group ? -pid : pid, 'SIGKILL');
  if (!(await waitGone(pid, 5000))) throw new Error(`process ${pid} survived SIGKILL`);
}

export function killNow(pid: number, opts: { group?: boolean } = {}): void {
  if (opts.group) signal(-pid, 'SIGKILL');
  signal(pid, 'SIGKILL');
}

const exitCleanups = new Set<() => void>();
let hooksInstalled = false;

function runExitCleanups(): void {
  for (const cleanup of exitCleanups) {
    try {
      cleanup();
    } catch {
      // best effort at exit: keep going with the others
    }
  }
  exitCleanups.clear();
}

/** Registers a synchronous cleanup run on process exit and on SIGINT/SIGTERM/SIGHUP; returns its unregister. */
export function onProcessExit(cleanup: () => void): () => void {
  exitCleanups.add(cleanup);
  if (!hooksInstalled) {
    hooksInstalled = true;
    process.on('exit', runExitCleanups);
    for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      const handler = (): void => {
        runExitCleanups();
        process.off(name, handler);
        // Keep the default meaning of the signal unless someone else handles it.
        if (process.listenerCount(name) === 0) process.kill(process.pid, name);
      };
      process.on(name, handler);
    }
  }
  return () => exitCleanups.delete(cleanup);
}
