import { pino, type Logger } from 'pino';

export type { Logger };

/** Keys whose values never reach a log line, wherever they appear in a logged object. */
const SECRET_KEYS = ['password', 'token', 'secret', 'authorization', '*.password', '*.token', '*.secret', '*.authorization'];

export function createLogger(options: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const base = { level: options.level ?? process.env.FORSETI_LOG_LEVEL ?? 'info', name: options.name ?? 'forseti', redact: { paths: SECRET_KEYS, censor: '[redacted]' } };
  return options.destination ? pino(base, options.destination) : pino(base);
}
