// Starts bench/lib/git-server-child.ts and hands back a GitServer the fixtures' helpers (createBareRepo, commitFiles)
// work with: they reach the repositories through the server's URL and root, never through its process.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { GitServer } from '../../test/fixtures/git-server.ts';

const CHILD = fileURLToPath(new URL('./git-server-child.ts', import.meta.url));

export async function startGitServerProcess(): Promise<GitServer> {
  const root = await mkdtemp(join(tmpdir(), 'forseti-bench-git-'));
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, root], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const first = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      lines.close();
      resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`the git server process ended (${code}) before it listened`)));
  });
  const { url } = JSON.parse(first) as { url: string };
  const server: GitServer = {
    url,
    root,
    repoUrl: (name) => `${url}/${name.endsWith('.git') ? name : `${name}.git`}`,
    close: async (opts = {}) => {
      child.stdin.end();
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
      if (!opts.keepRoot) await rm(root, { recursive: true, force: true });
    },
  };
  return server;
}
