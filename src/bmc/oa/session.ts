// One interactive SSH session to an HP Onboard Administrator's command line. The OA is slow to log in
// (seconds) and limits concurrent sessions, so an enclosure's blades share one session: commands go
// through a queue, one at a time; the OA's prompt ("OA-9C8E991A2B3C> ", or the OA's name) ends each
// command's output. A dropped session is opened again for the next command. Each login attempt and each command
// exchange is scheduled on its own (`schedule`: a global slot), the pauses between login attempts outside it.
import ssh2 from 'ssh2';
import type { Client as SshClient, ClientChannel, ConnectConfig } from 'ssh2';
import { OaAuthError, OaSessionLostError, OaUnreachableError } from './errors.ts';

// ssh2 is CommonJS: its classes come through the default export.
const { Client } = ssh2;

export interface OaSessionOptions {
  address: string;
  /** Default 22. */
  port?: number;
  username: string;
  password: string;
  /** Matches the OA's prompt line; default: a name followed by "> " (the OA prints its name). */
  prompt?: RegExp;
  /** Connect + login bound; default 20000 ms. */
  connectTimeoutMs?: number;
  /** From sending a command to its prompt; default 60000 ms (POWERON of a blade can take a while). */
  commandTimeoutMs?: number;
  /** Further connection attempts after a failed one (not after a refused login); default 2. */
  retries?: number;
  /** Pause between connection attempts, outside any slot; default 1000 ms. */
  retryDelayMs?: number;
  /** Waits out the pauses between connection attempts (tests pass a hook); default a timer. */
  sleep?: (ms: number) => Promise<void>;
  /** SHA-256 of the OA's host key (hex): when set, any other key is refused. */
  hostKeySha256?: string;
  /**
   * Runs each single exchange with the OA when its turn in the queue comes (a global concurrency slot, and a refusal
   * while the OA backs off): one login attempt (its connect timeout inside), or one command (its timeout inside).
   * Default: at once.
   */
  schedule?: <T>(exchange: () => Promise<T>) => Promise<T>;
}

export interface RunOptions {
  /** Safe to send again after the session dropped mid-command (reads, one-time boot settings). */
  idempotent?: boolean;
}

const DEFAULT_PROMPT = /^[A-Za-z0-9][A-Za-z0-9._-]*> $/;

/** One login attempt that failed without a refusal; after the last attempt it becomes OaUnreachableError. */
class OaLoginFailure extends Error {
  override readonly name = 'OaLoginFailure';
}

interface Pending {
  command: string;
  resolve: (output: string) => void;
  reject: (err: Error) => void;
}

interface Connection {
  client: SshClient;
  shell: ClientChannel;
  /** The exact prompt line seen after login; every command's output ends with it. */
  prompt: string;
  buffer: string;
  pending: Pending | null;
  closed: boolean;
}

export class OaSession {
  readonly oa: string;
  private connection: Connection | null = null;
  private connecting: Promise<Connection> | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  private closing = false;
  /** SSH logins made so far (1 unless the session dropped). */
  logins = 0;

  constructor(private readonly opts: OaSessionOptions) {
    this.oa = `${opts.address}:${opts.port ?? 22}`;
  }

  /** Runs one CLI command after every command queued before it; resolves with its output (echo and prompt removed). */
  run(command: string, options: RunOptions = {}): Promise<string> {
    if (/[\r\n]/.test(command)) return Promise.reject(new Error('an OA command is one line'));
    const result = this.tail.then(() => this.runNow(command, options));
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Logs out (`exit`) and closes the connection; a later `run` logs in again. */
  async close(): Promise<void> {
    this.closing = true;
    try {
      await this.tail;
      const conn = this.connection;
      this.connection = null;
      if (conn && !conn.closed) {
        const gone = new Promise<void>((resolve) => conn.client.once('close', () => resolve()));
        conn.shell.end('exit\n');
        const timer = setTimeout(() => conn.client.end(), 2000);
        await gone;
        clearTimeout(timer);
      }
    } finally {
      this.closing = false;
    }
  }

  private async runNow(command: string, options: RunOptions): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const conn = await this.connect();
      try {
        return await this.scheduled(() => this.exchange(conn, command));
      } catch (err) {
        // A command never sent (the session dropped while it waited for its slot) is safe to send again.
        const again = err instanceof OaSessionLostError && (options.idempotent === true || !err.sent);
        if (again && attempt === 1 && !this.closing) continue;
        throw err;
      }
    }
  }

  private exchange(conn: Connection, command: string): Promise<string> {
    if (conn.closed) return Promise.reject(new OaSessionLostError(this.oa, command, 'the session closed before the command was sent', false, false));
    return new Promise<string>((resolve, reject) => {
      const timeoutMs = this.opts.commandTimeoutMs ?? 60_000;
      const timer = setTimeout(() => {
        // The output stream can no longer be matched to commands: start over with a fresh session.
        const pending = conn.pending;
        conn.pending = null;
        this.drop(conn);
        pending?.reject(new OaSessionLostError(this.oa, command, `no prompt within ${timeoutMs} ms`, true));
      }, timeoutMs);
      conn.pending = {
        command,
        resolve: (output) => {
          clearTimeout(timer);
          resolve(output);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      conn.buffer = '';
      conn.shell.write(`${command}\n`);
    });
  }

  private connect(): Promise<Connection> {
    if (this.connection && !this.connection.closed) return Promise.resolve(this.connection);
    this.connecting ??= this.connectWithRetries().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async connectWithRetries(): Promise<Connection> {
    const attempts = 1 + (this.opts.retries ?? 2);
    let last: Error | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) await this.sleep(this.opts.retryDelayMs ?? 1000);
      try {
        this.connection = await this.scheduled(() => this.login());
        return this.connection;
      } catch (err) {
        if (err instanceof OaAuthError) throw err;
        // Not an answer from the OA: the gate refused the attempt (the OA backs off), or the schedule failed.
        if (!(err instanceof OaLoginFailure)) throw err;
        last = err;
      }
    }
    throw new OaUnreachableError(this.oa, attempts, last?.message ?? 'unknown error', { cause: last });
  }

  private scheduled<T>(exchange: () => Promise<T>): Promise<T> {
    return this.opts.schedule ? this.opts.schedule(exchange) : exchange();
  }

  private sleep(ms: number): Promise<void> {
    return this.opts.sleep ? this.opts.sleep(ms) : new Promise((r) => setTimeout(r, ms));
  }

  private login(): Promise<Connection> {
    const { address, port = 22, username, password } = this.opts;
    const client = new Client();
    return new Promise<Connection>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.end();
        reject(err);
      };
      const timeoutMs = this.opts.connectTimeoutMs ?? 20_000;
      const timer = setTimeout(() => fail(new OaLoginFailure(`no prompt within ${timeoutMs} ms of connecting`)), timeoutMs);
      client.on('error', (err: Error & { level?: string }) => {
        if (err.level === 'client-authentication') fail(new OaAuthError(this.oa, username));
        else fail(new OaLoginFailure(err.message));
      });
      // Some OA firmware asks the password through keyboard-interactive only.
      client.on('keyboard-interactive', (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => password)));
      client.on('ready', () => {
        client.shell({ term: 'vt100', cols: 200, rows: 50 }, (err, shell) => {
          if (err) return fail(new OaLoginFailure(err.message));
          const conn: Connection = { client, shell, prompt: '', buffer: '', pending: null, closed: false };
          shell.on('data', (chunk: Buffer) => {
            if (!settled) {
              conn.buffer += chunk.toString('utf8').replace(/\r/g, '');
              const prompt = this.promptAtEnd(conn.buffer);
              if (prompt === null) return;
              settled = true;
              clearTimeout(timer);
              conn.prompt = prompt;
              conn.buffer = '';
              this.logins++;
              resolve(conn);
              return;
            }
            this.onData(conn, chunk);
          });
          const lost = (): void => {
            if (!settled) fail(new OaLoginFailure('the OA closed the session during login'));
            else this.drop(conn);
          };
          shell.on('close', lost);
          client.on('close', lost);
        });
      });
      const config: ConnectConfig = { host: address, port, username, password, tryKeyboard: true, readyTimeout: timeoutMs, keepaliveInterval: 30_000 };
      const pin = this.opts.hostKeySha256?.toLowerCase().replace(/:/g, '');
      if (pin) {
        config.hostHash = 'sha256';
        config.hostVerifier = (hash: string) => hash.toLowerCase() === pin;
      }
      try {
        client.connect(config);
      } catch (err) {
        fail(new OaLoginFailure(err instanceof Error ? err.message : String(err)));
      }
    });
  }

  private onData(conn: Connection, chunk: Buffer): void {
    conn.buffer += chunk.toString('utf8').replace(/\r/g, '');
    const pending = conn.pending;
    if (!pending) return; // unsolicited output (an OA broadcast message): wait for the next command
    const end = `\n${conn.prompt}`;
    if (!conn.buffer.endsWith(end)) return;
    let output = conn.buffer.slice(0, -end.length);
    conn.buffer = '';
    conn.pending = null;
    const firstBreak = output.indexOf('\n');
    const firstLine = firstBreak === -1 ? output : output.slice(0, firstBreak);
    if (firstLine.trim().toLowerCase() === pending.command.trim().toLowerCase()) output = firstBreak === -1 ? '' : output.slice(firstBreak + 1);
    pending.resolve(output);
  }

  private promptAtEnd(buffer: string): string | null {
    const lastBreak = buffer.lastIndexOf('\n');
    const last = buffer.slice(lastBreak + 1);
    return (this.opts.prompt ?? DEFAULT_PROMPT).test(last) ? last : null;
  }

  /** Marks the connection dead; a command still waiting on it fails as lost. */
  private drop(conn: Connection): void {
    const pending = conn.pending;
    conn.pending = null;
    if (pending) pending.reject(new OaSessionLostError(this.oa, pending.command, 'the OA closed the session'));
    if (conn.closed) return;
    conn.closed = true;
    if (this.connection === conn) this.connection = null;
    conn.client.end();
  }
}
