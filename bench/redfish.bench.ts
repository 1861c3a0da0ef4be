// 200 simulated Redfish BMCs (the test fixture, 200 ms per answer) converged at once through the agent's global BMC
// gate (src/bmc/gate.ts, the same class every driver uses): per host a one-time PXE override (PATCH + read-back) and
// a power cycle (reset + read-back). The gate bounds BMC exchanges in flight, so the best possible time is
// max(longest chain, ceil(all exchanges / limit)) × latency; printed against it, target ≤ 1.1x. Also printed against
// the older per-host bound (chain × latency × ceil(hosts / limit): a limit on hosts rather than exchanges). The
// chain lengths are counted at the fixture, not assumed.
import { CommandQueue } from '../src/bmc/command-queue.ts';
import { BmcGate } from '../src/bmc/gate.ts';
import { createRedfishDriver } from '../src/bmc/redfish-driver.ts';
import type { RedfishDriver } from '../src/bmc/redfish-driver.ts';
import { startRedfishBmc } from '../test/fixtures/redfish/bmc.ts';
import type { RedfishBmc } from '../test/fixtures/redfish/bmc.ts';
import { syntheticBmc } from '../test/fixtures/redfish/resources.ts';

export interface RedfishBenchOptions {
  hosts?: number;
  latencyMs?: number;
  concurrency?: number;
}

interface Host {
  bmc: RedfishBmc;
  driver: RedfishDriver;
}

async function converge(hosts: Host[], device: 'pxe' | 'disk'): Promise<{ ms: number; calls: number[] }> {
  const before = hosts.map((h) => h.bmc.requests.length);
  const start = performance.now();
  await Promise.all(
    hosts.map(async (h) => {
      await h.driver.setBootOverride({ device, persistent: false });
      await h.driver.powerCycle();
    }),
  );
  const ms = performance.now() - start;
  return { ms, calls: hosts.map((h, i) => h.bmc.requests.length - before[i]!) };
}

function report(label: string, r: { ms: number; calls: number[] }, o: Required<RedfishBenchOptions>): void {
  const calls = Math.max(...r.calls);
  const total = r.calls.reduce((a, b) => a + b, 0);
  const uniform = calls === Math.min(...r.calls) ? '' : ` (min ${Math.min(...r.calls)})`;
  const reference = Math.max(calls, Math.ceil(total / o.concurrency)) * o.latencyMs;
  const perHost = calls * o.latencyMs * Math.ceil(o.hosts / o.concurrency);
  process.stdout.write(
    `${label}: ${o.hosts} hosts, ${o.concurrency} exchanges at once, ${calls} calls/host${uniform}: ${(r.ms / 1000).toFixed(2)} s; ` +
      `reference ${(reference / 1000).toFixed(2)} s → ${(r.ms / reference).toFixed(3)}x (target ≤ 1.1x); ` +
      `vs the per-host bound ${(perHost / 1000).toFixed(2)} s ${(r.ms / perHost).toFixed(2)}x\n`,
  );
}

export async function run(options: RedfishBenchOptions = {}): Promise<void> {
  const o: Required<RedfishBenchOptions> = {
    hosts: options.hosts ?? 200,
    latencyMs: options.latencyMs ?? 200,
    concurrency: options.concurrency ?? Number(process.env['FORSETI_BENCH_REDFISH_CONCURRENCY'] ?? 32),
  };
  const hosts: Host[] = [];
  const gate = new BmcGate({ maxConcurrent: o.concurrency });
  try {
    for (let i = 0; i < o.hosts; i++) {
      const bmc = await startRedfishBmc({ resources: syntheticBmc(), behaviour: { latencyMs: o.latencyMs } });
      const driver = createRedfishDriver(
        { host: `bench-${i}`, address: bmc.address, port: bmc.port, username: bmc.username, password: bmc.password, firmware: 'uefi' },
        { scheme: 'http', queue: new CommandQueue({ minIntervalMs: 0 }), gate, powerPoll: { attempts: 20, intervalMs: o.latencyMs } },
      );
      hosts.push({ bmc, driver });
    }
    report('cold (login + discovery in the chain)', await converge(hosts, 'pxe'), o);
    report('warm (sessions and systems known)', await converge(hosts, 'disk'), o);
  } finally {
    await Promise.all(hosts.map(async (h) => {
      await h.driver.close(); // logs out: one DELETE per host
      await h.bmc.close();
    }));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
