// TFTP throughput: forseti against tftpd-hpa (in.tftpd) and dnsmasq, same clients (atftp, curl),
// same block size, on the loopback of a network namespace of its own (dnsmasq 2.90 has no option
// for another TFTP port than 69, so it needs a namespace). Then windowsize 16 against lock-step on
// a path with a round-trip time, made by a user-space delay relay (tc netem does not work here and
// nftables cannot delay). On loopback a minimal Node server (bench/lib/tftp-node-floor.ts) runs too:
// what Node itself costs per lock-step block, which no Node server can go below. Prints figures and
// ratios with their spread over the rounds; asserts nothing. forseti runs twice: with its native data
// pump (the default where it was built) and with `--pump js`, the JavaScript one.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createNetns, type Netns } from '../test/fixtures/tftp/netns.ts';
import { cell, cpuMs, FORSETI, installed, median, startDaemon, timed, waitUntil, type Daemon } from './lib/proc.ts';

const SIZE = 30 * 1024 * 1024;
const DELAY_SIZE = 2 * 1024 * 1024;
const BLKSIZE = 1428;
const RUNS = 7;
const DELAY_MS = 1; // each way: about 2 ms round trip plus the relay's own time

interface Server { name: string; port: number; daemon?: Daemon }

/** 0 ms for a whole download means the work was done where /proc does not account it to the server. */
function cpuCell(ms: number | undefined): string {
  return ms === undefined || Number.isNaN(ms) || ms === 0 ? 'n/a' : ms.toFixed(0);
}

export async function run(): Promise<void> {
  const missing = ['atftp', 'curl', 'in.tftpd', 'dnsmasq', 'ip'].filter((c) => !installed(c));
  if (process.getuid?.() !== 0 || missing.length > 0) {
    process.stdout.write(`skipped: needs root and ${missing.join(', ') || 'nothing else'} (apt-get install atftp curl tftpd-hpa dnsmasq)\n`);
    return;
  }
  const root = await mkdtemp(path.join(tmpdir(), 'fsrv-tftpb-'));
  let ns: Netns | undefined;
  const servers: Server[] = [];
  let floor: Server | undefined;
  let jsPump: Server | undefined;
  try {
    // in.tftpd and dnsmasq drop privileges: the files must be readable by anyone.
    await chmod(root, 0o755);
    const sums = new Map<string, string>();
    for (const [name, size] of [['big.bin', SIZE], ['mid.bin', DELAY_SIZE], ['small.bin', 100_000]] as const) {
      const data = randomBytes(size);
      await writeFile(path.join(root, name), data, { mode: 0o644 });
      sums.set(name, createHash('sha256').update(data).digest('hex'));
    }
    ns = createNetns('tftpb');
    const nsName = ns.name;
    // in.tftpd resolves its -a address with AI_ADDRCONFIG, which finds nothing where 127.0.0.1 is the
    // only IPv4 address: one more address (on lo, reachable from nowhere) makes it resolvable.
    execFileSync('ip', ['-n', nsName, 'addr', 'add', '10.254.254.1/32', 'dev', 'lo']);
    servers.push(
      { name: 'forseti', port: 16969, daemon: startDaemon('forseti', [...FORSETI, 'serve', 'tftp', '--root', root, '--listen', '127.0.0.1:16969'], nsName) },
      { name: 'in.tftpd', port: 16970, daemon: startDaemon('in.tftpd', ['in.tftpd', '-L', '-s', root, '-a', '127.0.0.1:16970'], nsName) },
      {
        name: 'dnsmasq', port: 69,
        daemon: startDaemon('dnsmasq', ['dnsmasq', '--conf-file=/dev/null', '--no-daemon', '--port=0', '--enable-tftp', `--tftp-root=${root}`,
          '--listen-address=127.0.0.1', '--bind-interfaces', '--pid-file=', '--log-facility=-', '--quiet-tftp'], nsName),
      },
    );
    // The reference for what Node itself costs per block (see bench/lib/tftp-node-floor.ts); loopback rows only.
    floor = {
      name: 'node floor', port: 16971,
      daemon: startDaemon('node floor', [process.execPath, '--import', 'tsx', 'bench/lib/tftp-node-floor.ts', JSON.stringify({ root, port: 16971 })], nsName),
    };
    jsPump = {
      name: 'forseti js', port: 16972,
      daemon: startDaemon('forseti js', [...FORSETI, 'serve', 'tftp', '--pump', 'js', '--root', root, '--listen', '127.0.0.1:16972'], nsName),
    };
    const out = path.join(root, 'out.bin');
    for (const s of [...servers, jsPump, floor]) {
      await waitUntil(async () => (await timed(['curl', '-s', '--max-time', '2', `tftp://127.0.0.1:${s.port}/small.bin`, '-o', '/dev/null'], nsName)).code === 0, `${s.name} to answer`);
    }

    const atftp = (port: number, file: string, window: boolean, relayPort?: number): string[] =>
      ['atftp', '--option', `blksize ${BLKSIZE}`, ...(window ? ['--option', 'windowsize 16'] : []), '-g', '-r', file, '-l', out, '127.0.0.1', String(relayPort ?? port)];
    const clients = [
      { name: `atftp blksize ${BLKSIZE}`, cmd: (p: number, f: string) => atftp(p, f, false) },
      { name: `atftp blksize ${BLKSIZE} windowsize 16`, cmd: (p: number, f: string) => atftp(p, f, true) },
      { name: `curl blksize ${BLKSIZE}`, cmd: (p: number, f: string) => ['curl', '-sS', '--tftp-blksize', String(BLKSIZE), `tftp://127.0.0.1:${p}/${f}`, '-o', out] },
    ];

    process.stdout.write(`options each server accepts (atftp asks blksize ${BLKSIZE}, windowsize 16, tsize 0):\n`);
    for (const s of servers) {
      const r = await timed(['atftp', '--trace', '--option', `blksize ${BLKSIZE}`, '--option', 'windowsize 16', '--option', 'tsize 0', '-g', '-r', 'small.bin', '-l', out, '127.0.0.1', String(s.port)], nsName);
      process.stdout.write(`  ${cell(s.name, 10)} OACK <${/received OACK <([^>]*)>/.exec(r.output)?.[1] ?? 'none'}>\n`);
    }

    /** Seconds of one download; its sha256 is checked. */
    const once = async (label: string, cmd: string[], file: string): Promise<number> => {
      await rm(out, { force: true });
      const r = await timed(cmd, nsName);
      const sum = r.code === 0 ? createHash('sha256').update(await readFile(out)).digest('hex') : '';
      if (sum !== sums.get(file)) throw new Error(`${label}: download failed or differs (exit ${r.code}):\n${r.output.slice(-2000)}`);
      return r.seconds;
    };
    /** CPU ms each server process used per download, over the last compare(): unlike wall time, hardly moved by other load. */
    const cpuPerRun = new Map<string, number>();
    /** Seconds per variant, one per round; each round runs every variant once, so background load spreads evenly. */
    const compare = async (variants: Array<{ key: string; cmd: string[]; file: string; pid?: number | undefined }>): Promise<Map<string, number[]>> => {
      const times = new Map<string, number[]>(variants.map((v) => [v.key, []]));
      const cpuBefore = new Map(variants.map((v) => [v.key, v.pid ? cpuMs(v.pid) : NaN]));
      for (let i = 0; i < RUNS; i++) for (const v of variants) times.get(v.key)?.push(await once(v.key, v.cmd, v.file));
      await new Promise((r) => setTimeout(r, 200)); // in.tftpd reaps its last transfer child
      for (const v of variants) cpuPerRun.set(v.key, v.pid ? (cpuMs(v.pid) - (cpuBefore.get(v.key) ?? NaN)) / RUNS : NaN);
      return times;
    };
    /** Median of the per-round ratios a/b of speeds (b's time / a's time), with their range: the spread under load. */
    const ratio = (t: Map<string, number[]>, a: string, b: string): string => {
      const ta = t.get(a) ?? [];
      const rs = (t.get(b) ?? []).map((tb, i) => tb / (ta[i] ?? NaN));
      return `${median(rs).toFixed(2)}x (${Math.min(...rs).toFixed(2)}-${Math.max(...rs).toFixed(2)})`;
    };

    const loopbackServers = [...servers, jsPump, floor];
    process.stdout.write(`\n${SIZE / 1024 / 1024} MiB over loopback in a namespace, ${RUNS} rounds (MiB/s of the median time; ratio = forseti's speed / the other's, median of the rounds and their range; target >= 1.0x against in.tftpd)\n`);
    process.stdout.write(`${cell('client', 34)}${loopbackServers.map((s) => cell(s.name, 11, true)).join('')}   ${cell('forseti/in.tftpd', 22)}${cell('forseti/dnsmasq', 22)}${cell('forseti js/in.tftpd', 22)}forseti/node floor\n`);
    const loopback = new Map<string, number>();
    const cpu: string[] = [];
    for (const c of clients) {
      const t = await compare(loopbackServers.map((s) => ({ key: s.name, cmd: c.cmd(s.port, 'big.bin'), file: 'big.bin', pid: s.daemon?.pid })));
      for (const [k, v] of t) loopback.set(`${c.name}|${k}`, median(v));
      const speed = (n: string): number => SIZE / 1024 / 1024 / median(t.get(n) ?? []);
      process.stdout.write(`${cell(c.name, 34)}${loopbackServers.map((s) => cell(speed(s.name).toFixed(1), 11, true)).join('')}   ${cell(ratio(t, 'forseti', 'in.tftpd'), 22)}${cell(ratio(t, 'forseti', 'dnsmasq'), 22)}${cell(ratio(t, 'forseti js', 'in.tftpd'), 22)}${ratio(t, 'forseti', 'node floor')}\n`);
      cpu.push(`${cell(c.name, 34)}${loopbackServers.map((s) => cell(cpuCell(cpuPerRun.get(s.name)), 11, true)).join('')}`);
    }
    process.stdout.write(`server CPU ms per download (user + system of the server process and the children it reaps; in.tftpd's are not accounted to it):\n${cpu.join('\n')}\n`);
    const lockstep = loopback.get(`${clients[0]?.name}|forseti`) ?? NaN;
    const windowed = loopback.get(`${clients[1]?.name}|forseti`) ?? NaN;
    process.stdout.write(`forseti windowsize 16 vs lock-step on loopback: ${(lockstep / windowed).toFixed(1)}x (the >= 5x target is for a path with a round-trip time, below)\n`);

    // A path with a round-trip time: the relay delays each datagram DELAY_MS in each direction.
    process.stdout.write(`\n${DELAY_SIZE / 1024 / 1024} MiB through a user-space relay adding ${DELAY_MS} ms each way, median of ${RUNS} (seconds)\n`);
    process.stdout.write(`${cell('server', 12)}${cell('lock-step', 12, true)}${cell('windowsize 16', 16, true)}   windowsize 16 / lock-step (target >= 5x)\n`);
    for (const s of servers) {
      const relayPort = 17000 + servers.indexOf(s);
      const relay = startDaemon('relay', [process.execPath, '--import', 'tsx', 'bench/lib/udp-delay-relay.ts', JSON.stringify({ listen: relayPort, server: s.port, delayMs: DELAY_MS })], nsName);
      try {
        await waitUntil(async () => relay.output().includes('relay ready'), 'the delay relay');
        const t = await compare([
          { key: 'lock-step', cmd: atftp(s.port, 'mid.bin', false, relayPort), file: 'mid.bin' },
          { key: 'windowsize 16', cmd: atftp(s.port, 'mid.bin', true, relayPort), file: 'mid.bin' },
        ]);
        const slow = median(t.get('lock-step') ?? []);
        const fast = median(t.get('windowsize 16') ?? []);
        process.stdout.write(`${cell(s.name, 12)}${cell(`${slow.toFixed(2)} s`, 12, true)}${cell(`${fast.toFixed(2)} s`, 16, true)}   ${ratio(t, 'windowsize 16', 'lock-step')}\n`);
      } finally {
        await relay.stop();
      }
    }
  } finally {
    for (const s of servers) await s.daemon?.stop();
    await floor?.daemon?.stop();
    await jsPump?.daemon?.stop();
    ns?.destroy();
    await rm(root, { recursive: true, force: true });
  }
}
