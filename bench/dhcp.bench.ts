// DHCP DISCOVER -> OFFER rate: `forseti serve dhcp` against dnsmasq, both answering the same 1000
// reservations, driven by the same load generator (bench/lib/dhcp-load.ts) from a second network
// namespace over a veth pair: both servers need port 67 and broadcasts. Asserts nothing.
//
// Fairness: the same generator, MACs, concurrency and DISCOVER count for both; both log every exchange
// (dnsmasq two lines, forseti one); each server is warmed up before it is measured; the servers run in
// blocks ordered forseti, dnsmasq, dnsmasq, forseti so a load change on this shared machine during the
// run hits both alike. Reported: the median and the range of every round's rate, and the server's own
// CPU time per offer (utime + stime from /proc), which depends much less on what else the machine runs.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createLab, ip, type Lab } from '../test/fixtures/dhcp/netns.ts';
import { macOf, type LoadConfig, type LoadResult } from './lib/dhcp-load.ts';
import { dnsmasqHostsFile, writeReservationLab } from './lib/reservation-lab.ts';
import { cell, FORSETI, installed, median, startDaemon, timed, waitUntil, type Daemon } from './lib/proc.ts';

const HOSTS = 1000;
const ROUNDS_PER_BLOCK = 3;
const ORDER = ['forseti', 'dnsmasq', 'dnsmasq', 'forseti'] as const;
const LOAD: LoadConfig = { count: 20_000, concurrency: 64, macs: HOSTS, timeoutMs: 1000 };
const WARM_UP = 5000;

const ipOf = (i: number): string => `10.99.${10 + Math.floor(i / 250)}.${1 + (i % 250)}`;

const RESERVATIONS = Array.from({ length: HOSTS }, (_, i) => ({ mac: macOf(i), ip: ipOf(i) }));

/** CPU seconds (user + system) used so far by every process in the namespace: the server alone. */
function serverCpuSeconds(ns: string): number {
  const ticks = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of ip('netns', 'pids', ns).split('\n').filter(Boolean)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / ticks; // utime, stime
    } catch { /* exited meanwhile */ }
  }
  return total;
}

interface Round { rate: number; cpuUsPerOffer: number; lost: number }

export async function run(): Promise<void> {
  const missing = ['dnsmasq', 'ip'].filter((c) => !installed(c));
  if (process.getuid?.() !== 0 || missing.length > 0) {
    process.stdout.write(`skipped: needs root and ${missing.join(', ') || 'nothing else'} (apt-get install dnsmasq iproute2)\n`);
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'fsrv-dhcpb-'));
  let net: Lab | undefined;
  let daemon: Daemon | undefined;
  try {
    const lab = path.join(dir, 'lab');
    await writeReservationLab(lab, { interface: 'srv0', subnet: '10.99.0.0/16', gateway: '10.99.0.1', agent: '10.99.0.5' }, RESERVATIONS);
    const hostsFile = path.join(dir, 'dnsmasq.hosts');
    await writeFile(hostsFile, dnsmasqHostsFile(RESERVATIONS));
    net = createLab({ serverCidr: '10.99.0.5/16', clientMac: '02:00:00:99:ff:fe' });
    // The generator's plain UDP socket needs an address to receive broadcast replies and a route for its DISCOVERs.
    ip('-n', net.client, 'addr', 'add', '10.99.255.250/16', 'dev', net.clientIf);
    ip('-n', net.client, 'route', 'add', '255.255.255.255', 'dev', net.clientIf);
    const clientNs = net.client;
    const serverNs = net.server;

    const load = async (config: LoadConfig): Promise<LoadResult> => {
      const r = await timed([process.execPath, '--import', 'tsx', 'bench/lib/dhcp-load.ts', JSON.stringify(config)], clientNs);
      if (r.code !== 0) throw new Error(`load generator failed:\n${r.output}`);
      return JSON.parse(r.output.trim().split('\n').at(-1) ?? '{}') as LoadResult;
    };

    // DHCP_BENCH_CPU_PROF=DIR: forseti writes a V8 CPU profile there when it stops.
    const profDir = process.env.DHCP_BENCH_CPU_PROF;
    const profile = profDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profDir)}`] : [];
    const commands: Record<(typeof ORDER)[number], string[]> = {
      forseti: [FORSETI[0] ?? 'node', ...profile, ...FORSETI.slice(1), 'serve', 'dhcp', '--lab', lab, '--interface', 'srv0'],
      dnsmasq: ['dnsmasq', '--conf-file=/dev/null', '--no-daemon', '--port=0', '--interface=srv0', '--bind-interfaces', '--dhcp-range=10.99.0.0,static,255.255.0.0',
        `--dhcp-hostsfile=${hostsFile}`, `--dhcp-leasefile=${path.join(dir, 'dnsmasq.leases')}`, '--dhcp-authoritative', '--no-ping', '--pid-file=', '--log-facility=-'],
    };
    const rounds = new Map<string, Round[]>();
    for (const name of ORDER) {
      daemon = startDaemon(name, commands[name], serverNs);
      await waitUntil(async () => (await load({ count: 1, concurrency: 1, macs: 1, timeoutMs: 300 })).offers === 1, `${name} to offer`);
      const warm = await load({ ...LOAD, count: WARM_UP });
      const wrong = Object.entries(warm.offered).filter(([mac, o]) => o.ip !== ipOf(Number.parseInt(mac.replace(/:/g, ''), 16) - 0x020000000000));
      if (wrong.length > 0) throw new Error(`${name} offered the wrong address: ${JSON.stringify(wrong.slice(0, 3))}`);
      for (let i = 0; i < ROUNDS_PER_BLOCK; i++) {
        const cpuBefore = serverCpuSeconds(serverNs);
        const r = await load(LOAD);
        const cpu = serverCpuSeconds(serverNs) - cpuBefore;
        rounds.set(name, [...(rounds.get(name) ?? []), { rate: r.offersPerSecond, cpuUsPerOffer: (cpu * 1e6) / Math.max(1, r.offers), lost: r.lost }]);
      }
      await daemon.stop();
      daemon = undefined;
    }
    process.stdout.write(`DISCOVER -> OFFER, ${HOSTS} reservations, ${LOAD.count} DISCOVERs per round with ${LOAD.concurrency} outstanding, `
      + `${ROUNDS_PER_BLOCK * 2} rounds each in blocks ${ORDER.join(', ')} (load average ${loadavg()[0]?.toFixed(2)})\n`);
    const stats = (name: string): { rate: number; cpu: number } => {
      const r = rounds.get(name) ?? [];
      const rates = r.map((x) => x.rate);
      const cpus = r.map((x) => x.cpuUsPerOffer);
      process.stdout.write(`  ${cell(name, 10)}${cell(median(rates).toFixed(0), 7, true)} offers/s (range ${Math.min(...rates).toFixed(0)}-${Math.max(...rates).toFixed(0)}; `
        + `rounds ${rates.map((x) => x.toFixed(0)).join(' ')}; unanswered ${r.reduce((n, x) => n + x.lost, 0)})`
        + `   server CPU ${median(cpus).toFixed(1)} µs/offer (range ${Math.min(...cpus).toFixed(1)}-${Math.max(...cpus).toFixed(1)})\n`);
      return { rate: median(rates), cpu: median(cpus) };
    };
    const f = stats('forseti');
    const d = stats('dnsmasq');
    const fr = (rounds.get('forseti') ?? []).map((x) => x.rate);
    const dr = (rounds.get('dnsmasq') ?? []).map((x) => x.rate);
    process.stdout.write(`  forseti / dnsmasq: ${(f.rate / d.rate).toFixed(2)}x offers/s (worst-best pairing ${(Math.min(...fr) / Math.max(...dr)).toFixed(2)}-${(Math.max(...fr) / Math.min(...dr)).toFixed(2)}x; target >= 1x), `
      + `${(f.cpu / d.cpu).toFixed(2)}x the CPU per offer\n`);
  } finally {
    await daemon?.stop();
    net?.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}
