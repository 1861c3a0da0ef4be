import { destination as pinoDestination, pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** What scrubs a finished log line of secrets (src/redact/redactor.ts Redactor is one). */
export interface LineRedactor {
  redactLine(line: string): string;
}

/** Keys whose values never reach a log line, wherever they appear in a logged object, whatever their length. */
const SECRET_KEYS = ['password', 'token', 'secret', 'authorization', '*.password', '*.token', '*.secret', '*.authorization'];

export interface LoggerOptions {
  level?: string;
  name?: string;
  destination?: NodeJS.WritableStream;
  /**
   * Scrubs every finished line (message, fields, error messages and stacks, nested causes) of the secrets it knows,
   * in every encoding, before the line is written.
   */
  redactor?: LineRedactor;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const base = { level: options.level ?? process.env.FORSETI_LOG_LEVEL ?? 'info', name: options.name ?? 'forseti', redact: { paths: SECRET_KEYS, censor: '[redacted]' } };
  const redactor = options.redactor;
  if (!redactor) return options.destination ? pino(base, options.destination) : pino(base);
  const inner = options.destination ?? pinoDestination(process.stdout.fd);
  const flushable = inner as { flush?: (cb?: (err?: Error) => void) => void; flushSync?: () => void };
  // pino's flush() and its final flush on exit reach the real destination through these.
  const destination: DestinationStream & typeof flushable = {
    write: (line: string) => void inner.write(redactor.redactLine(line)),
    ...(flushable.flush ? { flush: (cb?: (err?: Error) => void) => flushable.flush?.(cb) } : {}),
    ...(flushable.flushSync ? { flushSync: () => flushable.flushSync?.() } : {}),
  };
  return pino(base, destination);
}
