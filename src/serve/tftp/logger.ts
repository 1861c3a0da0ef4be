/** The pino-compatible subset the server logs through. */
export interface TftpLogger {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  debug(o: object, m: string): void;
}

export const silentLogger: TftpLogger = { info() {}, warn() {}, debug() {} };
