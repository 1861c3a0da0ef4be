import type { ChildProcess } from 'node:child_process';

/** Resolves when the child prints `line` on stdout; rejects if it exits first or takes longer than timeoutMs. */
export function waitForLine(child: ChildProcess, line: string, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => done(new Error(`${what}: no "${line}" within ${timeoutMs} ms\n${stderr}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      stdout += chunk.toString();
      if (stdout.split('\n').includes(line)) done();
    };
    const onStderr = (chunk: Buffer): void => void (stderr += chunk.toString());
    const onExit = (code: number | null): void => done(new Error(`${what} exited with ${code} before "${line}"\n${stderr}`));
    const done = (error?: Error): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onStderr);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onStderr);
    child.once('exit', onExit);
  });
}
