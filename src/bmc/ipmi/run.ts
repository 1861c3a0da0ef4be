import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { childEnv } from '../../child-env.ts';
import { IpmiAuthError, IpmiCommandError, IpmiUnreachableError } from './errors.ts';

/** Where and as whom to talk to one BMC over IPMI v2 (lanplus). */
export interface IpmiConnection {
  address: string;
  port?: number;
  username: string;
  password: string;
  /** ipmitool -C; 3 (HMAC-SHA1, AES) unless told otherwise. */
  cipherSuite?: number;
}

export interface IpmitoolRunOptions {
  /** ipmitool executable; default `ipmitool`. */
  binary?: string;
  /** Words run in front of the binary, e.g. `['ip', 'netns', 'exec', 'lab']`. */
  prefix?: readonly string[];
  /** Kill one ipmitool run after this long; default 30 s. */
  timeoutMs?: number;
  /** Extra attempts after an unreachable BMC (idempotent commands only); default 2. */
  retries?: number;
  /** Pause between attempts; default 1000 ms. */
  retryDelayMs?: number;
  /** ipmitool -N (seconds per lanplus request); ipmitool's default when unset. */
  lanTimeoutS?: number;
  /** ipmitool -R (lanplus retransmissions, at least 1); ipmitool's default when unset. */
  lanRetries?: number;
  /** Runs each single ipmitool run (a global concurrency slot); retry delays stay outside it. */
  schedule?: <T>(attempt: () => Promise<T>) => Promise<T>;
}

export interface IpmitoolCall {
  /** ipmitool command words, e.g. `['chassis', 'power', 'status']`. */
  command: readonly string[];
  /** Safe to repeat if an attempt's outcome is unknown (power cycle is not). */
  idempotent: boolean;
}

export interface IpmitoolOutput {
  stdout: string;
  stderr: string;
}

const DEFAULT_PORT = 623;
const DEFAULT_CIPHER_SUITE = 3;

export function bmcLabel(conn: IpmiConnection): string {
  return `${conn.address}:${conn.port ?? DEFAULT_PORT}`;
}

/** The argument list; the password is never part of it (see ipmitoolEnv). */
export function ipmitoolArgs(conn: IpmiConnection, command: readonly string[], opts: IpmitoolRunOptions = {}, verbose = false): string[] {
  const args = ['-I', 'lanplus', '-C', String(conn.cipherSuite ?? DEFAULT_CIPHER_SUITE)];
  args.push('-H', conn.address, '-p', String(conn.port ?? DEFAULT_PORT), '-U', conn.username, '-E');
  if (opts.lanTimeoutS !== undefined) args.push('-N', String(opts.lanTimeoutS));
  // ipmitool 1.8.19 takes `-R 0` as "retry for 20 s", not "no retries".
  if (opts.lanRetries !== undefined) args.push('-R', String(Math.max(1, opts.lanRetries)));
  if (verbose) args.push('-v');
  return [...args, ...command];
}

/**
 * `-E` makes ipmitool read the password from IPMI_PASSWORD, which other users cannot read (argv they can). Its own
 * BMC's password is the only secret the run gets: nothing else of the agent's environment (src/child-env.ts).
 */
export function ipmitoolEnv(conn: IpmiConnection, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return childEnv({ IPMI_PASSWORD: conn.password }, base);
}

const SESSION_FAILED = /Unable to establish (IPMI v2 \/ RMCP\+|LAN) session|Error: No response|Activate Session error/i;
// Only visible with -v; without it ipmitool says "Unable to establish ... session" for every cause.
const SESSION_REFUSED = /RAKP 2 HMAC is invalid|unauthorized name|RAKP \d message indicates an error|invalid (authentication|integrity|confidentiality) algorithm|no matching cipher suite|invalid role/i;
// ipmitool exits 0 after some failures (e.g. `chassis bootdev`): its words are the only signal.
const COMMAND_FAILED = /\berror\b|\bfailed\b|\bunable\b/i;

export type Outcome = { kind: 'ok' } | { kind: 'session-failed' } | { kind: 'command-failed'; detail: string };

export function classifyOutput(out: IpmitoolOutput, exitCode: number): Outcome {
  const all = `${out.stdout}\n${out.stderr}`;
  if (SESSION_FAILED.test(all)) return { kind: 'session-failed' };
  if (exitCode !== 0 || COMMAND_FAILED.test(all)) return { kind: 'command-failed', detail: summarise(all) || `exit code ${exitCode}` };
  return { kind: 'ok' };
}

export function sessionRefused(verboseOutput: string): string | null {
  const match = SESSION_REFUSED.exec(verboseOutput);
  return match ? match[0] : null;
}

// The BMC has no such algorithm: the cipher suite, not the credentials, is what it refused (IPMI v2.0 §13.17, the
// RMCP+ Open Session Response status codes 04h-06h and 11h "no Cipher Suite match").
const CIPHER_REFUSED = /invalid (authentication|integrity|confidentiality) algorithm|no matching cipher suite|no cipher suite match/i;

/** Whether a refusal (IpmiAuthError's detail) is about the cipher suite, so another suite may be tried. */
export function cipherSuiteRefused(detail: string): boolean {
  return CIPHER_REFUSED.test(detail);
}

function summarise(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0).join('; ').slice(0, 300);
}

/** Never let the password through, even if a BMC or ipmitool ever echoed it. */
function scrub(text: string, password: string): string {
  return password.length > 0 ? text.split(password).join('[redacted]') : text;
}

interface Exec extends IpmitoolOutput {
  exitCode: number;
  timedOut: boolean;
}

function execOnce(conn: IpmiConnection, command: readonly string[], opts: IpmitoolRunOptions, verbose: boolean): Promise<Exec> {
  const words = [...(opts.prefix ?? []), opts.binary ?? 'ipmitool', ...ipmitoolArgs(conn, command, opts, verbose)];
  const [file, ...args] = words as [string, ...string[]];
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: ipmitoolEnv(conn), timeout: opts.timeoutMs ?? 30_000, killSignal: 'SIGKILL', maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const out = { stdout: scrub(stdout, conn.password), stderr: scrub(stderr, conn.password) };
      if (err === null) return resolve({ ...out, exitCode: 0, timedOut: false });
      if (typeof err.code === 'number') return resolve({ ...out, exitCode: err.code, timedOut: false });
      if (err.killed) return resolve({ ...out, exitCode: -1, timedOut: true });
      reject(new IpmiCommandError(bmcLabel(conn), command.join(' '), `cannot run ${file}: ${err.message}`));
    });
  });
}

function scheduled<T>(opts: IpmitoolRunOptions, attempt: () => Promise<T>): Promise<T> {
  return opts.schedule ? opts.schedule(attempt) : attempt();
}

/** Asks again with -v, with a harmless read, to tell a refused session from a silent BMC. */
async function diagnoseSession(conn: IpmiConnection, opts: IpmitoolRunOptions): Promise<string | null> {
  const probe = await scheduled(opts, () => execOnce(conn, ['chassis', 'power', 'status'], { ...opts, lanRetries: 1 }, true));
  return sessionRefused(`${probe.stdout}\n${probe.stderr}`);
}

/**
 * Runs one ipmitool command and returns its output, or throws IpmiUnreachableError (after the
 * bounded retries), IpmiAuthError (never retried: retrying a wrong password can lock the account)
 * or IpmiCommandError (the BMC answered; asking again would get the same answer).
 */
export async function runIpmitool(conn: IpmiConnection, call: IpmitoolCall, opts: IpmitoolRunOptions = {}): Promise<IpmitoolOutput> {
  const bmc = bmcLabel(conn);
  const name = call.command.join(' ');
  const attempts = call.idempotent ? 1 + (opts.retries ?? 2) : 1;
  let diagnosed = false;
  let lastDetail = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await sleep(opts.retryDelayMs ?? 1000);
    const res = await scheduled(opts, () => execOnce(conn, call.command, opts, false));
    if (res.timedOut) {
      lastDetail = `no answer within ${opts.timeoutMs ?? 30_000} ms`;
      continue;
    }
    const outcome = classifyOutput(res, res.exitCode);
    if (outcome.kind === 'ok') return res;
    if (outcome.kind === 'command-failed') throw new IpmiCommandError(bmc, name, outcome.detail);
    lastDetail = summarise(`${res.stdout}\n${res.stderr}`);
    // ipmitool says some refusals without -v ("invalid authentication algorithm"): no second run needed to tell.
    const said = sessionRefused(`${res.stdout}\n${res.stderr}`);
    if (said !== null) throw new IpmiAuthError(bmc, name, said);
    if (!diagnosed) {
      diagnosed = true;
      const refusal = await diagnoseSession(conn, opts);
      if (refusal !== null) throw new IpmiAuthError(bmc, name, refusal);
    }
  }
  throw new IpmiUnreachableError(bmc, name, lastDetail, attempts);
}
