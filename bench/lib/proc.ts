// Process helpers for the benchmarks: servers run in the foreground as children (optionally in a
// network namespace) and are always stopped, also when the benchmark fails or is interrupted.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FORSETI = [process.execPath, fileURLToPath(new URL('../../bin/forseti.js', import.meta.url))];

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130)); // runs the exit handlers: children killed, namespaces deleted
}

function inNs(ns: string | undefined, cmd: string[]): [string, string[]] {
  const full = ns ? ['ip', 'netns', 'exec', ns, ...cmd] : cmd;
  return [full[0] ?? '', full.slice(1)];
}

export interface Daemon {
  name: string;
  /** The process id (`ip netns exec` execs the command, so it is the daemon's own). */
  pid: number | undefined;
  /** Everything it printed so far (the last 64 KiB). */
  output(): string;
  stop(): Promise<void>;
}

export function startDaemon(name: string, cmd: string[], ns?: string): Daemon {
  const [file, args] = inNs(ns, cmd);
  const child = spawn(file, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  const keep = (c: Buffer): void => {
    out = (out + c.toString()).slice(-65536);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => children.delete(child));
  return {
    name,
    pid: child.pid,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface Run {
  code: number | null;
  seconds: number;
  output: string;
}

/** Runs a command to completion and times it (wall clock, from spawn to exit); keeps the last `keep` characters of its output. */
export function timed(cmd: string[], ns?: string, keep = 65536): Promise<Run> {
  const [file, args] = inNs(ns, cmd);
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(file, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-keep)));
    child.stderr.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-keep)));
    child.once('exit', (code) => {
      children.delete(child);
      resolve({ code, seconds: (performance.now() - started) / 1000, output: out });
    });
  });
}

/** Polls `check` until it is true; throws naming `what` after `limitMs` (a safety net, not a measurement). */
export async function waitUntil(check: () => Promise<boolean>, what: string, limitMs = 15_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/** Whether `cmd` is an executable on PATH (also /usr/sbin, where the daemons live). */
export function installed(cmd: string): boolean {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  return dirs.some((dir) => {
    try {
      accessSync(`${dir}/${cmd}`, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Left-pads or right-pads for a plain text table. */
export function cell(text: string | number, width: number, right = false): string {
  const t = String(text);
  return right ? t.padStart(width) : t.padEnd(width);
}

/**
 * CPU time (user + system) a process used so far, in ms, with its reaped children and, with `live`, the
 * children still running (nginx's workers). From /proc, at 10 ms resolution.
 */
export function cpuMs(pid: number, live = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at ") "; utime is field 14.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
  const own = (ticks * 1000) / 100;
  if (!live) return own;
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return own + children.reduce((sum, child) => sum + cpuMs(child, true), 0);
}
