// Download progress on stderr: a bar redrawn in place on a terminal, plain lines (start, end) otherwise.
import type { Progress } from './download.ts';

export interface ProgressReport {
  update(p: Progress): void;
  done(line: string): void;
}

const MiB = 1024 * 1024;
const WIDTH = 24;

export function progressReport(label: string, url: string, out: NodeJS.WriteStream = process.stderr): ProgressReport {
  const started = Date.now();
  if (!out.isTTY) {
    out.write(`${label}: downloading ${url}\n`);
    return { update: () => undefined, done: (line) => out.write(`${label}: ${line}\n`) };
  }
  let drawn = 0;
  const draw = (p: Progress): void => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const rate = `${(p.bytes / MiB / seconds).toFixed(1)} MiB/s`;
    const size = p.total ? `${(p.bytes / MiB).toFixed(1)}/${(p.total / MiB).toFixed(1)} MiB` : `${(p.bytes / MiB).toFixed(1)} MiB`;
    const fraction = p.total ? Math.min(1, p.bytes / p.total) : 0;
    const bar = p.total ? `[${'#'.repeat(Math.round(fraction * WIDTH)).padEnd(WIDTH, '.')}] ${String(Math.floor(fraction * 100)).padStart(3)}% ` : '';
    out.write(`\r\x1b[2K${label} ${bar}${size} ${rate}`);
  };
  return {
    update(p) {
      // At most ten redraws a second, and always the last one.
      const now = Date.now();
      if (now - drawn < 100 && p.bytes !== p.total) return;
      drawn = now;
      draw(p);
    },
    done(line) {
      out.write(`\r\x1b[2K${label}: ${line}\n`);
    },
  };
}
