import { execFile } from 'node:child_process';

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command to completion; never throws on a non-zero exit (the code is in the result). */
export function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(new Error(`${cmd} ${args.join(' ')}: ${error.message}`));
      resolve({ stdout, stderr, code: error ? Number(error.code) : 0 });
    });
  });
}

/** Like run(), but a non-zero exit is an error carrying stderr. */
export async function runChecked(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const result = await run(cmd, args, opts);
  if (result.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${result.code}: ${result.stderr.trim()}`);
  return result.stdout;
}
