// The log of `forseti serve dhcp`: one JSON line per exchange, at the tens of thousands of exchanges a
// second a DHCP server sees under load (measured in bench/dhcp.bench.ts). Three costs dominated there:
// a write(2) per line, pino's redaction walking every key of every exchange line (10 µs a line on the
// reference machine), and pino's serialisation. So lines are gathered and written in batches (at least
// every 100 ms, so a person watching sees them at once), and an exchange line is one JSON.stringify of
// a flat object of strings, in pino's line shape (level, time, pid, hostname, name, fields, msg). It
// carries only fields of the DHCP packet and of the lab's boot answer (MAC, message type, addresses,
// boot file); no secret is in scope in `serve dhcp`. Every other line goes through the project's
// logger, redaction included, into the same batches, so the order of lines is kept.
import { write, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import type { DestinationStream } from 'pino';
import { createLogger, type Logger } from '../../log.ts';
import type { DhcpExchange } from '../../serve/dhcp/index.ts';

const FLUSH_MS = 100;
const BATCH_BYTES = 64 * 1024;
/** Past this much unwritten log (a reader that stopped reading), lines are dropped and counted, never the server blocked. */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

export interface DhcpServeLog {
  /** The project's logger (with redaction) for everything but the exchange lines. */
  log: Logger;
  /** One line per exchange: info when answered, debug when ignored. */
  exchange(e: DhcpExchange, host: string | undefined): void;
  /** Writes whatever is still buffered; resolves once it is out. */
  close(): Promise<void>;
}

export function createDhcpServeLog(name: string, fd = 1): DhcpServeLog {
  const out = new BatchedLines(fd);
  // Any object with write(line) is a pino destination; createLogger's parameter type is narrower than pino's.
  const log = createLogger({ name, destination: out as unknown as NodeJS.WritableStream });
  const head = `"pid":${process.pid},"hostname":${JSON.stringify(hostname())},"name":${JSON.stringify(name)}`;
  const line = (level: number, e: DhcpExchange, host: string | undefined): void => {
    const fields = summary(e);
    fields.msg = describe(e, host);
    out.write(`{"level":${level},"time":${Date.now()},${head},${JSON.stringify(fields).slice(1)}\n`);
  };
  return {
    log,
    exchange(e, host) {
      if (e.action !== 'ignored') {
        if (log.isLevelEnabled('info')) line(PINO_INFO, e, host);
      } else if (log.isLevelEnabled('debug')) {
        line(PINO_DEBUG, e, host);
      }
    },
    close: () => out.close(),
  };
}

const PINO_INFO = 30;
const PINO_DEBUG = 20;

/** Flat and without empty keys: one small object per exchange. */
function summary(e: DhcpExchange): Record<string, string> {
  const line: Record<string, string> = { mac: e.client.mac, type: e.client.messageType, stage: e.client.bootStage, firmware: e.client.firmware, action: e.action };
  if (e.reason !== undefined) line.reason = e.reason;
  if (e.answer?.ip !== undefined) line.ip = e.answer.ip;
  if (e.answer?.bootFile !== undefined) line.bootFile = e.answer.bootFile;
  line.from = `${e.from.address}:${e.from.port}`;
  if (e.sentTo) line.to = `${e.sentTo.address}:${e.sentTo.port}`;
  return line;
}

function describe(e: DhcpExchange, host: string | undefined): string {
  const who = `${e.client.mac}${host ? ` (${host})` : ''} ${e.client.messageType} from ${e.client.bootStage}`;
  if (!e.answer) return `dhcp ${who}: ${e.action}${e.reason ? ` (${e.reason})` : ''}`;
  return `dhcp ${who}: ${e.action}${e.answer.ip ? ` ${e.answer.ip}` : ''}${e.answer.bootFile ? ` boot ${e.answer.bootFile}` : ''}`;
}

/**
 * A pino destination that keeps lines in memory and writes them in one write(2) per batch, in order,
 * one write in flight at a time. What is left is written synchronously when the process exits.
 */
class BatchedLines implements DestinationStream {
  private pending: string[] = [];
  private pendingBytes = 0;
  private writing = false;
  private dropped = 0;
  private broken = false;
  private readonly timer: NodeJS.Timeout;
  private idle: Array<() => void> = [];

  constructor(private readonly fd: number) {
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref();
    process.once('exit', () => this.flushSync());
  }

  write(line: string): void {
    if (this.broken) return;
    if (this.pendingBytes > MAX_PENDING_BYTES) {
      this.dropped++;
      return;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes >= BATCH_BYTES) this.flush();
  }

  close(): Promise<void> {
    clearInterval(this.timer);
    this.flush();
    return this.writing ? new Promise((resolve) => this.idle.push(resolve)) : Promise.resolve();
  }

  private take(): string {
    if (this.dropped > 0) {
      this.pending.push(`${JSON.stringify({ level: 40, time: Date.now(), msg: `${this.dropped} log lines dropped: stdout was not read` })}\n`);
      this.dropped = 0;
    }
    const text = this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    return text;
  }

  private flush(): void {
    if (this.writing || this.broken || this.pending.length === 0) return;
    this.writing = true;
    this.send(Buffer.from(this.take()));
  }

  private send(buf: Buffer): void {
    write(this.fd, buf, 0, buf.length, null, (err, written) => {
      if (err && (err as NodeJS.ErrnoException).code === 'EAGAIN') {
        setTimeout(() => this.send(buf), 10);
        return;
      }
      if (err) this.broken = (err as NodeJS.ErrnoException).code === 'EPIPE';
      else if (written < buf.length) return this.send(buf.subarray(written));
      this.writing = false;
      if (this.pendingBytes >= BATCH_BYTES || (this.idle.length > 0 && this.pending.length > 0)) this.flush();
      if (!this.writing) for (const done of this.idle.splice(0)) done();
    });
  }

  /** At exit: the batch in flight is the kernel's already or lost with the process; the rest goes out now. */
  private flushSync(): void {
    if (this.broken || this.pending.length === 0) return;
    try {
      writeSync(this.fd, this.take());
    } catch { /* stdout gone: nothing to tell */ }
  }
}
