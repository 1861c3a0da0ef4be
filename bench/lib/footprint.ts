// What server processes hold, from /proc: threads, open descriptors, resident memory and CPU time,
// summed over the given processes and their descendants (servers that fork a child per client).
import { readdirSync, readFileSync } from 'node:fs';

export interface Footprint {
  threads: number;
  fds: number;
  rssMiB: number;
  /** user + system, ms */
  cpuMs: number;
}

function withDescendants(pids: number[]): number[] {
  const all = [...pids];
  for (let i = 0; i < all.length; i++) {
    try {
      for (const c of readFileSync(`/proc/${all[i]}/task/${all[i]}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) all.push(Number(c));
    } catch { /* exited */ }
  }
  return all;
}

export function footprint(pids: number[]): Footprint {
  const total: Footprint = { threads: 0, fds: 0, rssMiB: 0, cpuMs: 0 };
  for (const pid of withDescendants(pids)) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      total.threads += Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      total.rssMiB += Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024;
      total.fds += readdirSync(`/proc/${pid}/fd`).length;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total.cpuMs += ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime in USER_HZ (100)
    } catch { /* exited meanwhile */ }
  }
  return total;
}

/** Samples `pids` every `everyMs` until stop(), keeping the peak of each figure. */
export function samplePeak(pids: number[], everyMs = 100): { stop(): Promise<Footprint> } {
  const peak = footprint(pids);
  let sampling = true;
  const loop = (async () => {
    while (sampling) {
      const now = footprint(pids);
      peak.threads = Math.max(peak.threads, now.threads);
      peak.fds = Math.max(peak.fds, now.fds);
      peak.rssMiB = Math.max(peak.rssMiB, now.rssMiB);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      sampling = false;
      await loop;
      return peak;
    },
  };
}
