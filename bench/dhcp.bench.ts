// DHCP DISCOVER -> OFFER rate: `forseti serve dhcp` against dnsmasq, both answering the same 1000
// reservations, driven by the same load generator (bench/lib/dhcp-load.ts) from a second network
// namespace over a veth pair: both servers need port 67 and broadcasts. Prints the median of
// several runs and the ratio; asserts nothing.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createNetns, type Netns } from '../test/fixtures/tftp/netns.ts';
import { macOf, type LoadConfig, type LoadResult } from './lib/dhcp-load.ts';
import { cell, FORSETI, installed, median, startDaemon, timed, waitUntil, type Daemon } from './lib/proc.ts';

const HOSTS = 1000;
const RUNS = 3;
const LOAD: LoadConfig = { count: 20_000, concurrency: 64, macs: HOSTS, timeoutMs: 1000 };

const ipOf = (i: number): string => `10.99.${10 + Math.floor(i / 250)}.${1 + (i % 250)}`;

async function writeLab(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'hosts'), { recursive: true });
  await mkdir(path.join(dir, 'profiles'));
  await mkdir(path.join(dir, 'images'));
  await writeFile(path.join(dir, 'site.yaml'), `apiVersion: forseti/v1
kind: Site
name: bench
network:
  interface: srv0
  subnet: 10.99.0.0/16
  gateway: 10.99.0.1
dhcp:
  mode: full
agent:
  address: 10.99.0.5
`);
  await writeFile(path.join(dir, 'profiles', 'off.yaml'), 'apiVersion: forseti/v1\nkind: Profile\nname: off\nboot: {off: true}\n');
  for (let i = 0; i < HOSTS; i++) {
    const name = `h${String(i).padStart(4, '0')}`;
    await writeFile(path.join(dir, 'hosts', `${name}.yaml`), `apiVersion: forseti/v1
kind: Host
name: ${name}
macs: [${macOf(i)}]
ip: ${ipOf(i)}
bmc: {type: wol}
role: off
power: off
`);
  }
}

export async function run(): Promise<void> {
  const missing = ['dnsmasq', 'ip'].filter((c) => !installed(c));
  if (process.getuid?.() !== 0 || missing.length > 0) {
    process.stdout.write(`skipped: needs root and ${missing.join(', ') || 'nothing else'} (apt-get install dnsmasq iproute2)\n`);
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'fsrv-dhcpb-'));
  let server: Netns | undefined;
  let client: Netns | undefined;
  let daemon: Daemon | undefined;
  try {
    const lab = path.join(dir, 'lab');
    await writeLab(lab);
    const hostsFile = path.join(dir, 'dnsmasq.hosts');
    await writeFile(hostsFile, Array.from({ length: HOSTS }, (_, i) => `${macOf(i)},${ipOf(i)}\n`).join(''));
    server = createNetns('dhcpb-s');
    client = createNetns('dhcpb-c');
    const ip = (...args: string[]): void => void execFileSync('ip', args);
    ip('-n', server.name, 'link', 'add', 'srv0', 'type', 'veth', 'peer', 'name', 'cli0', 'netns', client.name);
    ip('-n', server.name, 'addr', 'add', '10.99.0.5/16', 'dev', 'srv0');
    ip('-n', server.name, 'link', 'set', 'srv0', 'up');
    // The generator's plain UDP socket needs an address to receive broadcast replies and a route for its DISCOVERs.
    ip('-n', client.name, 'addr', 'add', '10.99.255.250/16', 'dev', 'cli0');
    ip('-n', client.name, 'link', 'set', 'cli0', 'up');
    ip('-n', client.name, 'route', 'add', '255.255.255.255', 'dev', 'cli0');
    const clientNs = client.name;

    const load = async (config: LoadConfig): Promise<LoadResult> => {
      const r = await timed([process.execPath, '--import', 'tsx', 'bench/lib/dhcp-load.ts', JSON.stringify(config)], clientNs);
      if (r.code !== 0) throw new Error(`load generator failed:\n${r.output}`);
      return JSON.parse(r.output.trim().split('\n').at(-1) ?? '{}') as LoadResult;
    };

    const servers = [
      { name: 'forseti', cmd: [...FORSETI, 'serve', 'dhcp', '--lab', lab, '--interface', 'srv0'] },
      {
        name: 'dnsmasq',
        cmd: ['dnsmasq', '--conf-file=/dev/null', '--no-daemon', '--port=0', '--interface=srv0', '--bind-interfaces', '--dhcp-range=10.99.0.0,static,255.255.0.0',
          `--dhcp-hostsfile=${hostsFile}`, `--dhcp-leasefile=${path.join(dir, 'dnsmasq.leases')}`, '--dhcp-authoritative', '--no-ping', '--pid-file=', '--log-facility=-'],
      },
    ];
    const rates = new Map<string, number[]>();
    const lost = new Map<string, number>();
    for (const s of servers) {
      daemon = startDaemon(s.name, s.cmd, server.name);
      await waitUntil(async () => (await load({ count: 1, concurrency: 1, macs: 1, timeoutMs: 300 })).offers === 1, `${s.name} to offer`);
      const warm = await load({ ...LOAD, count: 2000 });
      const wrong = Object.entries(warm.offered).filter(([mac, o]) => o.ip !== ipOf(Number.parseInt(mac.replace(/:/g, ''), 16) - 0x020000000000));
      if (wrong.length > 0) throw new Error(`${s.name} offered the wrong address: ${JSON.stringify(wrong.slice(0, 3))}`);
      for (let i = 0; i < RUNS; i++) {
        const r = await load(LOAD);
        rates.set(s.name, [...(rates.get(s.name) ?? []), r.offersPerSecond]);
        lost.set(s.name, (lost.get(s.name) ?? 0) + r.lost);
      }
      await daemon.stop();
      daemon = undefined;
    }
    process.stdout.write(`DISCOVER -> OFFER, ${HOSTS} reservations, ${LOAD.count} DISCOVERs per run with ${LOAD.concurrency} outstanding, median of ${RUNS} (load average ${loadavg()[0]?.toFixed(2)})\n`);
    for (const s of servers) {
      const r = rates.get(s.name) ?? [];
      process.stdout.write(`  ${cell(s.name, 10)}${cell(median(r).toFixed(0), 8, true)} offers/s   (runs: ${r.map((x) => x.toFixed(0)).join(' ')}; unanswered: ${lost.get(s.name) ?? 0})\n`);
    }
    process.stdout.write(`  forseti / dnsmasq: ${(median(rates.get('forseti') ?? []) / median(rates.get('dnsmasq') ?? [])).toFixed(2)}x (target >= 1x)\n`);
  } finally {
    await daemon?.stop();
    server?.destroy();
    client?.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}
