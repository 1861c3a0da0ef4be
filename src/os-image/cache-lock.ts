import { spawn } from 'node:child_process';
import { once } from 'node:events';

/**
 * Holds an exclusive flock(1) on `lockFile` while `work` runs. The kernel drops the lock when the
 * holder dies, so a crashed run never leaves a stale lock behind.
 */
export async function withFileLock<T>(lockFile: string, work: () => Promise<T>): Promise<T> {
  const holder = spawn('flock', ['--exclusive', lockFile, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const locked = new Promise<void>((resolve, reject) => {
    holder.stdout.on('data', () => resolve());
    holder.on('error', reject);
    holder.on('exit', (code) => reject(new Error(`flock ${lockFile} exited with ${code}`)));
  });
  try {
    await locked;
    return await work();
  } finally {
    holder.stdin.end();
    if (holder.exitCode === null) await once(holder, 'exit');
  }
}
