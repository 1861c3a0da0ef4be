// TFTP under a storm of read requests that are never acknowledged (issue 11's attack): 2,000 RRQs in
// 10 s, each from its own address, against `forseti serve tftp` with its default caps (native engine,
// then `--pump js`) and against dnsmasq (its default tftp-max of 50), on the loopback of a namespace of
// its own. Every 100 ms it samples each server's threads, open descriptors and RSS, during the storm
// and until its last transfer has given up; prints the peaks and what is left after. Asserts
// nothing: that the counts stay within the caps is tested in test/tftp-limits.test.ts.
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createNetns, type Netns } from '../test/fixtures/tftp/netns.ts';
import { footprint, samplePeak } from './lib/footprint.ts';
import { cell, FORSETI, installed, startDaemon, timed, waitUntil, type Daemon } from './lib/proc.ts';

const COUNT = 2000;
const SECONDS = 10;
/** After the last request: the server's default 5 retransmissions at 1 s, and some. */
const DRAIN_MS = 9000;

export async function run(): Promise<void> {
  const missing = ['dnsmasq', 'ip', 'curl'].filter((c) => !installed(c));
  if (process.getuid?.() !== 0 || missing.length > 0) {
    process.stdout.write(`skipped: needs root and ${missing.join(', ') || 'nothing else'} (apt-get install dnsmasq iproute2 curl)\n`);
    return;
  }
  const root = await mkdtemp(path.join(tmpdir(), 'fsrv-tftps-'));
  let ns: Netns | undefined;
  try {
    await chmod(root, 0o755);
    await writeFile(path.join(root, 'big.bin'), randomBytes(4 * 1024 * 1024), { mode: 0o644 });
    ns = createNetns('tftps');
    const nsName = ns.name;
    const servers: Array<{ name: string; port: number; cmd: string[] }> = [
      { name: 'forseti', port: 16969, cmd: [...FORSETI, 'serve', 'tftp', '--root', root, '--listen', '127.0.0.1:16969'] },
      { name: 'forseti js', port: 16970, cmd: [...FORSETI, 'serve', 'tftp', '--pump', 'js', '--root', root, '--listen', '127.0.0.1:16970'] },
      {
        name: 'dnsmasq', port: 69,
        cmd: ['dnsmasq', '--conf-file=/dev/null', '--no-daemon', '--port=0', '--enable-tftp', `--tftp-root=${root}`, '--listen-address=127.0.0.1',
          '--bind-interfaces', '--pid-file=', '--log-facility=-', '--quiet-tftp'],
      },
    ];
    process.stdout.write(`${COUNT} read requests in ${SECONDS} s, each from its own address, none acknowledged (load average ${loadavg()[0]?.toFixed(2)})\n`);
    process.stdout.write('answered: requests that got any reply; the rest were dropped at a cap (forseti: 1000 at once, 8 per address; dnsmasq: tftp-max 50)\n');
    process.stdout.write(`${cell('server', 12)}${cell('answered', 10, true)}${cell('threads', 16, true)}${cell('fds', 16, true)}${cell('RSS MiB', 18, true)}   (before / peak / after)\n`);
    for (const s of servers) {
      let daemon: Daemon | undefined;
      try {
        daemon = startDaemon(s.name, s.cmd, nsName);
        const port = s.port;
        await waitUntil(async () => (await timed(['curl', '-s', '--max-time', '2', `tftp://127.0.0.1:${port}/big.bin`, '-o', '/dev/null'], nsName)).code === 0, `${s.name} to answer`);
        const pids = [daemon.pid ?? 0];
        const before = footprint(pids);
        const sampler = samplePeak(pids);
        const r = await timed([process.execPath, '--import', 'tsx', 'bench/lib/tftp-storm.ts', JSON.stringify({ port, count: COUNT, seconds: SECONDS, file: 'big.bin', holdMs: DRAIN_MS })], nsName);
        const peak = await sampler.stop();
        const after = footprint(pids);
        const result = JSON.parse(r.output.trim().split('\n').at(-1) ?? '{}') as { answered?: number };
        const three = (a: number, b: number, c: number, digits = 0): string => `${a.toFixed(digits)} / ${b.toFixed(digits)} / ${c.toFixed(digits)}`;
        process.stdout.write(`${cell(s.name, 12)}${cell(result.answered ?? 'n/a', 10, true)}${cell(three(before.threads, peak.threads, after.threads), 16, true)}${cell(three(before.fds, peak.fds, after.fds), 16, true)}${cell(three(before.rssMiB, peak.rssMiB, after.rssMiB), 18, true)}\n`);
      } finally {
        await daemon?.stop();
      }
    }
  } finally {
    ns?.destroy();
    await rm(root, { recursive: true, force: true });
  }
}
