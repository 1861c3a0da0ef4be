// A boot storm: a whole rack of PXE machines powered on within one second, each doing what a blade
// does (bench/lib/boot-storm-client.ts): DHCP DISCOVER and REQUEST, TFTP of a ~1 MB iPXE binary at
// blksize 1428, then over HTTP its script, a 10 MiB kernel and a 60 MiB initrd. forseti's own DHCP,
// TFTP and HTTP (`forseti serve dhcp|tftp|http`, default settings) against dnsmasq (DHCP and TFTP)
// plus nginx (HTTP), one after the other, the same generator and machines, in network namespaces the
// benchmark makes (a server namespace and a client namespace on a veth pair: DHCP is broadcast). Each
// system answers the same 1,001 reservations and serves the same files.
//
// Printed per run: time from the storm's start until the last machine holds its initrd, the 99th
// percentile of one machine's boot, failed machines and address errors, the system's peak RSS and
// threads (all its processes) and the CPU it used. Target at 200 machines: forseti's time <= 1.0x the
// references', zero failed machines; 1,000 machines are printed with no target. Every machine's boot
// file and script are checked by digest, kernel and initrd by size, and by digest for every 20th
// machine (the generator shares two cores with the servers; hashing 14 GB would be most of its work).
// Each run also prints each process's CPU and the generator's own: it is the bottleneck here, and how a
// server sends (segment sizes, wake-ups) shows in what the generator spends, not only in the server.
// Settings for a closer look (none changes what a full run prints): BOOT_STORM_MACHINES, BOOT_STORM_SKIP,
// BOOT_STORM_PROFILE, below.
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import type { MachineResult, StormPlan } from './lib/boot-storm-client.ts';
import { createStormNet, forsetiCommands, HTTP_PORT, referenceCommands, SCRIPT_PATH, SERVER_IP, summarize, writeStormFiles, type StormSummary } from './lib/boot-storm-setup.ts';
import { footprint, samplePeak, type Footprint } from './lib/footprint.ts';
import { cell, installed, median, startDaemon, timed, waitUntil, type Daemon } from './lib/proc.ts';

const SIZES = { bootFile: 1024 * 1024, kernel: 10 * 1024 * 1024, initrd: 60 * 1024 * 1024 };
/**
 * 200 machines five times each in alternating order (load from elsewhere hits both alike; with three, one run the
 * machine's noise slowed decided the headline); 1,000 once each.
 */
const ALL_RUNS: Array<{ machines: number; order: Array<'references' | 'forseti'> }> = [
  { machines: 200, order: ['references', 'forseti', 'forseti', 'references', 'references', 'forseti', 'forseti', 'references', 'references', 'forseti'] },
  { machines: 1000, order: ['references', 'forseti'] },
];
/** BOOT_STORM_MACHINES=200 runs only the storms of that size (a quicker look while working on one). */
const RUNS = ALL_RUNS.filter((r) => !process.env.BOOT_STORM_MACHINES || String(r.machines) === process.env.BOOT_STORM_MACHINES);
const MAX_MACHINES = Math.max(...RUNS.map((r) => r.machines));
const SPREAD_MS = 1000;
const DIGEST_EVERY = 20;

/** BOOT_STORM_SKIP=tftp|http: every machine leaves that step out, to see what the other costs alone. */
const SKIP: { skip?: 'tftp' | 'http' } = process.env.BOOT_STORM_SKIP === 'tftp' || process.env.BOOT_STORM_SKIP === 'http' ? { skip: process.env.BOOT_STORM_SKIP } : {};
/** BOOT_STORM_PROFILE=DIR: CPU profiles of the generator and of forseti's services (written as each exits) go there. */
function withProfile(cmd: string[]): string[] {
  const dir = process.env.BOOT_STORM_PROFILE;
  return dir ? [cmd[0] ?? '', '--cpu-prof', `--cpu-prof-dir=${dir}`, ...cmd.slice(1)] : cmd;
}

interface Run { system: string; summary: StormSummary; peak: Footprint; cpuMs: number }
interface Storm { results: MachineResult[]; generatorCpuMs: number }

export async function run(): Promise<void> {
  const missing = ['dnsmasq', 'nginx', 'ip', 'curl'].filter((c) => !installed(c));
  if (process.getuid?.() !== 0 || missing.length > 0) {
    process.stdout.write(`skipped: needs root and ${missing.join(', ') || 'nothing else'} (apt-get install dnsmasq nginx-light iproute2 curl)\n`);
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'fsrv-storm-'));
  const net = createStormNet();
  try {
    const files = await writeStormFiles(dir, MAX_MACHINES, SIZES);
    const storm = async (plan: Omit<StormPlan, 'httpPort' | 'blksize' | 'scriptPath' | 'expect'>): Promise<Storm> => {
      const full: StormPlan = { ...plan, httpPort: HTTP_PORT, blksize: 1428, scriptPath: SCRIPT_PATH, expect: files.expect };
      const cmd = [process.execPath, '--import', 'tsx', 'bench/lib/boot-storm-client.ts', JSON.stringify(full)];
      const r = await timed(plan.dhcpOnly ? cmd : withProfile(cmd), net.client, 64 * 1024 * 1024);
      if (r.code !== 0) throw new Error(`the storm generator failed:\n${r.output.slice(-2000)}`);
      const lines = r.output.trim().split('\n');
      const json = lines.find((l) => l.startsWith('[')) ?? '[]';
      return { results: JSON.parse(json) as MachineResult[], generatorCpuMs: Number(/generator CPU ms (\d+)/.exec(r.output)?.[1] ?? NaN) };
    };
    const start = async (system: 'references' | 'forseti', machines: number): Promise<Daemon[]> => {
      const daemons: Daemon[] = [];
      if (system === 'forseti') {
        for (const [name, cmd] of Object.entries(forsetiCommands(files, net.serverIf, machines))) daemons.push(startDaemon(`forseti ${name}`, withProfile(cmd), net.server));
      } else {
        for (const [name, cmd] of Object.entries(await referenceCommands(files, dir, net.serverIf, machines))) daemons.push(startDaemon(name, cmd, net.server));
      }
      // Ready: the probe machine (one past the storm's) gets a lease, TFTP and HTTP answer.
      await waitUntil(async () => (await storm({ machines: 1, first: MAX_MACHINES, spreadMs: 0, digestEvery: 1, dhcpOnly: true })).results[0]?.ok === true, `${system} DHCP`, 30_000);
      await waitUntil(async () => (await timed(['curl', '-s', '--max-time', '2', `tftp://${SERVER_IP}/undionly.kpxe`, '-o', '/dev/null'], net.client)).code === 0, `${system} TFTP`);
      await waitUntil(async () => (await timed(['curl', '-sf', '--max-time', '2', `http://${SERVER_IP}:${HTTP_PORT}/images/kernel`, '-o', '/dev/null'], net.client)).code === 0, `${system} HTTP`);
      return daemons;
    };

    process.stdout.write(`machines start within ${SPREAD_MS} ms; boot file ${SIZES.bootFile / 1024} KiB by TFTP, kernel ${SIZES.kernel / 1048576} MiB and initrd ${SIZES.initrd / 1048576} MiB by HTTP (load average ${loadavg().map((l) => l.toFixed(2)).join(' ')})\n`);
    process.stdout.write(`${cell('machines', 9)}${cell('system', 12)}${cell('last initrd', 12, true)}${cell('p99 boot', 10, true)}${cell('failed', 8, true)}${cell('addr err', 9, true)}${cell('peak RSS', 10, true)}${cell('threads', 8, true)}${cell('CPU s', 8, true)}\n`);
    for (const { machines, order } of RUNS) {
      const runs: Run[] = [];
      for (const system of order) {
        const daemons = await start(system, machines);
        try {
          const pids = daemons.map((d) => d.pid ?? 0);
          const before = footprint(pids);
          const beforeEach = pids.map((pid) => footprint([pid]).cpuMs);
          const sampler = samplePeak(pids, 200);
          const { results, generatorCpuMs } = await storm({ machines, spreadMs: SPREAD_MS, digestEvery: DIGEST_EVERY, ...SKIP });
          const peak = await sampler.stop();
          const summary = summarize(results);
          const cpuMs = footprint(pids).cpuMs - before.cpuMs;
          const eachCpu = daemons.map((d, i) => `${d.name} ${((footprint([pids[i] ?? 0]).cpuMs - (beforeEach[i] ?? 0)) / 1000).toFixed(1)}`).join(', ');
          runs.push({ system, summary, peak, cpuMs });
          const name = system === 'forseti' ? 'forseti' : 'dnsmasq+nginx';
          process.stdout.write(`${cell(machines, 9)}${cell(name, 12)}${cell(`${(summary.lastMs / 1000).toFixed(2)} s`, 12, true)}${cell(`${(summary.p99Ms / 1000).toFixed(2)} s`, 10, true)}`
            + `${cell(summary.failed, 8, true)}${cell(summary.wrongAddress + summary.duplicateAddresses, 9, true)}${cell(`${peak.rssMiB.toFixed(0)} MiB`, 10, true)}${cell(peak.threads, 8, true)}${cell((cpuMs / 1000).toFixed(1), 8, true)}\n`);
          process.stdout.write(`${cell('', 21)}steps, median/slowest s: ${Object.entries(summary.steps).map(([k, v]) => `${k} ${(v.p50 / 1000).toFixed(2)}/${(v.max / 1000).toFixed(2)}`).join(', ')}; `
            + `TFTP sent again by the server ${summary.resent.byServer}, by the machines ${summary.resent.byMachine}; HTTP 503 waited out ${summary.httpRetries}\n`);
          process.stdout.write(`${cell('', 21)}CPU s: ${eachCpu}; the generator ${(generatorCpuMs / 1000).toFixed(1)}\n`);
          for (const e of summary.errors) process.stdout.write(`    ${e}\n`);
        } finally {
          for (const d of daemons) await d.stop();
        }
      }
      const times = (system: string): number[] => runs.filter((r) => r.system === system).map((r) => r.summary.lastMs);
      const p99s = (system: string): number[] => runs.filter((r) => r.system === system).map((r) => r.summary.p99Ms);
      const target = machines === 200 ? ' (target <= 1.0x, zero failed)' : ' (no target)';
      // The i-th run of each, paired: they ran next to each other, under the same load from elsewhere; the
      // headline is the median of the pairs' ratios, as in the other benchmarks, the ratio of the medians follows.
      const pairs = times('forseti').map((t, i) => t / (times('references')[i] ?? NaN));
      const ofMedians = median(times('forseti')) / median(times('references'));
      process.stdout.write(`  ${machines} machines: forseti / dnsmasq+nginx, time until the last initrd ${median(pairs).toFixed(2)}x (pairs ${pairs.map((p) => p.toFixed(2)).join(' ')}; `
        + `ratio of the medians ${ofMedians.toFixed(2)}x), p99 ${(median(p99s('forseti')) / median(p99s('references'))).toFixed(2)}x${target}\n`);
    }
  } finally {
    net.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}
