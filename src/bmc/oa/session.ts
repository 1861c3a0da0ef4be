// One interactive SSH session to an HP Onboard Administrator's command line. The OA is slow to log in
// (seconds) and limits concurrent sessions, so an enclosure's blades share one session: commands go
// through a queue, one at a time; the OA's prompt ("OA-9C8E991A2B3C> ", or the OA's name) ends each
// command's output. A dropped session is opened again for the next command. Each login attempt and each command
// exchange is scheduled on its own (`schedule`: a global slot), the pauses between login attempts outside it.
// What the OA sends is bounded (`maxOutputBytes`): a command's output, the login's banner, and output nobody asked for
// between commands; each chunk is looked at once (the prompt is found in a short tail, not by scanning all output).
import { StringDecoder } from 'node:string_decoder';
import ssh2 from 'ssh2';
import type { Client as SshClient, ClientChannel, ConnectConfig } from 'ssh2';
import { OaAuthError, OaHostKeyError, OaOutputLimitError, OaSessionLostError, OaUnreachableError } from './errors.ts';
import { checkHostKey, sshFingerprint, type HostKeyPolicy, type HostKeyVerdict } from './host-key.ts';

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
  /**
   * Which SSH host key the OA may present (src/bmc/oa/host-key.ts): a pin, or trust on first use through a store. Checked
   * before authentication: a refused key never gets the password. Default: not checked (what was seen is reported).
   */
  hostKey?: HostKeyPolicy;
  /** Told what each login's host key check found (for the log). */
  onHostKey?: (verdict: HostKeyVerdict) => void;
  /**
   * Most bytes the OA may send for one command (its output up to the prompt), for the login (banner up to the prompt),
   * and between two commands unasked (an OA broadcast message): past it the command fails, the login fails, the idle
   * session is closed. Default 1 MiB: SHOW SERVER INFO of a blade is a few KiB.
   */
  maxOutputBytes?: number;
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
export const DEFAULT_MAX_OA_OUTPUT_BYTES = 1024 * 1024;
/** The login's last line is matched against the prompt pattern: a prompt is short, a longer line is not one. */
const MAX_PROMPT_LINE = 256;

/** One login attempt that failed without a refusal; after the last attempt it becomes OaUnreachableError. */
class OaLoginFailure extends Error {
  override readonly name = 'OaLoginFailure';
}

interface Pending {
  command: string;
  resolve: (output: string) => void;
  reject: (err: Error) => void;
}

/**
 * What the OA sent since the command was written (or since login began): the text in pieces, its size, and the last
 * characters, enough to see the prompt at the end. Bytes are counted as they arrive, before any decoding.
 */
class Output {
  private readonly pieces: string[] = [];
  private readonly decoder = new StringDecoder('utf8');
  bytes = 0;
  tail = '';

  constructor(private readonly tailLength: number) {}

  /** Takes a chunk; false once more than `limit` bytes came (nothing more is kept then). */
  add(chunk: Buffer, limit: number): boolean {
    this.bytes += chunk.length;
    if (this.bytes > limit) return false;
    const text = this.decoder.write(chunk).replace(/\r/g, '');
    if (text === '') return true;
    this.pieces.push(text);
    this.tail = (this.tail + text).slice(-this.tailLength);
    return true;
  }

  text(): string {
    return this.pieces.join('');
  }
}

interface Connection {
  client: SshClient;
  shell: ClientChannel;
  /** The exact prompt line seen after login; every command's output ends with it. */
  prompt: string;
  /** The running command's output; null between commands. */
  output: Output | null;
  /** Bytes that came between commands, unasked, since the last command ended. */
  unsolicited: number;
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
  /** The OA's host key fingerprint as last seen ("SHA256:…"), whether or not it was accepted. */
  hostKeyFingerprint: string | undefined;

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
      conn.output = new Output(conn.prompt.length + 1);
      conn.unsolicited = 0;
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
        if (err instanceof OaAuthError || err instanceof OaHostKeyError) throw err;
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
      /** Why the host key was refused, or could not be checked: what the handshake's failure is reported as. */
      let keyRefusal: Error | undefined;
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
        if (keyRefusal) fail(keyRefusal);
        else if (err.level === 'client-authentication') fail(new OaAuthError(this.oa, username));
        else fail(new OaLoginFailure(err.message));
      });
      // Some OA firmware asks the password through keyboard-interactive only.
      client.on('keyboard-interactive', (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => password)));
      client.on('ready', () => {
        client.shell({ term: 'vt100', cols: 200, rows: 50 }, (err, shell) => {
          if (err) return fail(new OaLoginFailure(err.message));
          const conn: Connection = { client, shell, prompt: '', output: null, unsolicited: 0, pending: null, closed: false };
          const banner = new Output(MAX_PROMPT_LINE + 1);
          shell.on('data', (chunk: Buffer) => {
            if (!settled) {
              if (!banner.add(chunk, this.maxOutput)) return fail(new OaLoginFailure(`the OA sent more than ${this.maxOutput} bytes without a prompt at login`));
              const prompt = this.promptAtEnd(banner.tail);
              if (prompt === null) return;
              settled = true;
              clearTimeout(timer);
              conn.prompt = prompt;
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
      // ssh2 asks before it authenticates: with the raw key blob (no hostHash), answered through `verify`.
      const hostVerifier = (key: Buffer, verify: (valid: boolean) => void): void => {
        const fingerprint = sshFingerprint(key);
        this.hostKeyFingerprint = fingerprint;
        checkHostKey(this.oa, fingerprint, this.opts.hostKey ?? {}).then(
          (verdict) => {
            this.opts.onHostKey?.(verdict);
            if (!verdict.ok) keyRefusal = new OaHostKeyError(this.oa, verdict, this.opts.hostKey?.store?.where);
            verify(verdict.ok);
          },
          (err: unknown) => {
            keyRefusal = new OaLoginFailure(`cannot check the OA's host key ${fingerprint}: ${err instanceof Error ? err.message : String(err)}`);
            verify(false);
          },
        );
      };
      const config: ConnectConfig = { host: address, port, username, password, tryKeyboard: true, readyTimeout: timeoutMs, keepaliveInterval: 30_000, hostVerifier };
      try {
        client.connect(config);
      } catch (err) {
        fail(new OaLoginFailure(err instanceof Error ? err.message : String(err)));
      }
    });
  }

  private get maxOutput(): number {
    return this.opts.maxOutputBytes ?? DEFAULT_MAX_OA_OUTPUT_BYTES;
  }

  private onData(conn: Connection, chunk: Buffer): void {
    const pending = conn.pending;
    const received = conn.output;
    if (!pending || !received) {
      // Unsolicited output (an OA broadcast message) is dropped; an OA that keeps talking unasked is cut off.
      conn.unsolicited += chunk.length;
      if (conn.unsolicited > this.maxOutput) this.drop(conn);
      return;
    }
    if (!received.add(chunk, this.maxOutput)) {
      // The rest of this output cannot be told from the next command's: the session goes.
      conn.pending = null;
      conn.output = null;
      this.drop(conn);
      pending.reject(new OaOutputLimitError(this.oa, pending.command, this.maxOutput));
      return;
    }
    const end = `\n${conn.prompt}`;
    if (received.tail !== end) return;
    let output = received.text().slice(0, -end.length);
    conn.output = null;
    conn.unsolicited = 0;
    conn.pending = null;
    const firstBreak = output.indexOf('\n');
    const firstLine = firstBreak === -1 ? output : output.slice(0, firstBreak);
    if (firstLine.trim().toLowerCase() === pending.command.trim().toLowerCase()) output = firstBreak === -1 ? '' : output.slice(firstBreak + 1);
    pending.resolve(output);
  }

  /** The prompt line that ends what the OA sent, from the tail of it (MAX_PROMPT_LINE + 1 characters). */
  private promptAtEnd(tail: string): string | null {
    const lastBreak = tail.lastIndexOf('\n');
    if (lastBreak === -1 && tail.length > MAX_PROMPT_LINE) return null;
    const last = tail.slice(lastBreak + 1);
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
