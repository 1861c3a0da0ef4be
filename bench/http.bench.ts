// HTTP download throughput: `forseti serve http` against nginx (its own minimal configuration, in
// the foreground, never the system service), same client (curl to /dev/null), same 200 MB file,
// over 127.0.0.1, page cache warm. Rounds alternate the two servers; prints the median speed, the
// per-round ratio's median and range, and each server's CPU time per download (which other load on
// the machine hardly moves, unlike wall time) and their ratio. Asserts nothing.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { nginxCommand } from './lib/nginx.ts';
import { cell, cpuMs, FORSETI, freePort, installed, median, startDaemon, timed, waitUntil, type Daemon } from './lib/proc.ts';

const SIZE = 200 * 1024 * 1024;
const RUNS = 11;

/** CPU ms of a server and its workers so far; NaN when it cannot be read. */
function cpuOf(pid: number | undefined): number {
  try {
    return pid === undefined ? NaN : cpuMs(pid, true);
  } catch {
    return NaN;
  }
}

export async function run(): Promise<void> {
  const missing = ['nginx', 'curl'].filter((c) => !installed(c));
  if (missing.length > 0) {
    process.stdout.write(`skipped: ${missing.join(', ')} not installed (apt-get install nginx-light curl)\n`);
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'fsrv-httpb-'));
  const daemons: Daemon[] = [];
  try {
    const root = path.join(dir, 'root');
    const prefix = path.join(dir, 'nginx');
    await mkdir(root);
    // nginx's worker runs as nobody: the files must be readable by anyone.
    await chmod(dir, 0o755);
    await chmod(root, 0o755);
    const file = await open(path.join(root, 'big.bin'), 'w', 0o644);
    const block = randomBytes(1024 * 1024);
    for (let i = 0; i < SIZE / block.length; i++) await file.write(block);
    await file.close();

    const nginxPort = await freePort();
    const forsetiPort = await freePort();
    daemons.push(startDaemon('nginx', await nginxCommand({ prefix, root, listen: `127.0.0.1:${nginxPort}` })));
    daemons.push(startDaemon('forseti', [...FORSETI, 'serve', 'http', '--root', root, '--listen', `127.0.0.1:${forsetiPort}`]));
    const servers = [{ name: 'forseti', port: forsetiPort }, { name: 'nginx', port: nginxPort }];
    const curl = (port: number): string[] => ['curl', '-sS', '--max-time', '120', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', `http://127.0.0.1:${port}/big.bin`];
    for (const s of servers) {
      await waitUntil(async () => (await timed(['curl', '-s', '-o', '/dev/null', '-I', `http://127.0.0.1:${s.port}/big.bin`])).code === 0, `${s.name} to answer`);
      await timed(curl(s.port)); // warm-up: page cache, JIT
    }
    const times = new Map<string, number[]>(servers.map((s) => [s.name, []]));
    const pids = new Map(daemons.map((d) => [d.name, d.pid]));
    const cpuBefore = new Map(servers.map((s) => [s.name, cpuOf(pids.get(s.name))]));
    // Rounds alternate the servers, so load from elsewhere spreads over both; each round gives one ratio.
    for (let i = 0; i < RUNS; i++) {
      for (const s of servers) {
        const r = await timed(curl(s.port));
        const [status, bytes, seconds] = r.output.trim().split(' ');
        if (status !== '200' || Number(bytes) !== SIZE) throw new Error(`${s.name}: HTTP ${status}, ${bytes} bytes:\n${r.output}`);
        times.get(s.name)?.push(Number(seconds));
      }
    }
    const cpu = new Map(servers.map((s) => [s.name, (cpuOf(pids.get(s.name)) - (cpuBefore.get(s.name) ?? NaN)) / RUNS]));
    const speed = (name: string): number => SIZE / 1024 / 1024 / median(times.get(name) ?? []);
    process.stdout.write(`${SIZE / 1024 / 1024} MiB over 127.0.0.1, curl to /dev/null, ${RUNS} rounds after a warm-up (load average ${loadavg()[0]?.toFixed(2)})\n`);
    for (const s of servers) {
      const t = times.get(s.name) ?? [];
      process.stdout.write(`  ${cell(s.name, 10)}${cell(speed(s.name).toFixed(0), 8, true)} MiB/s (median)   server CPU ${cell((cpu.get(s.name) ?? NaN).toFixed(0), 4, true)} ms per download   (runs: ${t.map((x) => x.toFixed(3)).join(' ')} s)\n`);
    }
    const f = times.get('forseti') ?? [];
    const ratios = (times.get('nginx') ?? []).map((n, i) => n / (f[i] ?? NaN));
    process.stdout.write(`  forseti / nginx: ${median(ratios).toFixed(2)}x, rounds ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}, ratio of the medians ${(speed('forseti') / speed('nginx')).toFixed(2)}x (target >= 0.8x)\n`);
    process.stdout.write(`  server CPU per download, forseti / nginx: ${((cpu.get('forseti') ?? NaN) / (cpu.get('nginx') ?? NaN)).toFixed(2)}x (target <= 2x; both send the body with sendfile)\n`);
  } finally {
    for (const d of daemons) await d.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
