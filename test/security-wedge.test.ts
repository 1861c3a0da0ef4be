// Issue 11, item 4: SIGTERM ends the real agent process whatever it hangs on (an image read, a BMC that never
// answers, a Git server that never answers), and says what was still running when it had to leave it behind; a
// FIFO in a `forseti serve http` root never stops the server; `validate` and `plan` never read file:// images.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createBareRepo, commitFiles, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { git as runGit } from './fixtures/git/git-cli.ts';
import { loopbackLabFiles, writeTree } from './fixtures/loopback-lab.ts';
import { freeTcpPort, imageFile, slowImageServer, type SlowImageServer } from './fixtures/security-images.ts';
import { startServe } from './fixtures/tftp/serve-process.ts';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const CLI = resolve('bin/forseti.js');
let dir = '';
let git: GitServer;
let images: SlowImageServer;

const host = (name: string, role: string, bmc: string): string =>
  `apiVersion: forseti/v1\nkind: Host\nname: ${name}\nmacs: ['02:00:00:00:0c:01']\nip: 127.0.0.81\nbmc: ${bmc}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: ${role}\n`;
const profile = (name: string, image: string): string => `apiVersion: forseti/v1\nkind: Profile\nname: ${name}\nboot: {image: ${image}, cmdline: "console=ttyS0"}\n`;

/** A TCP server that accepts and never says a word: a dead BMC, a dead Git server. */
interface StuckServer {
  port: number;
  connected(): Promise<void>;
  close(): Promise<void>;
}

async function stuckServer(): Promise<StuckServer> {
  const sockets = new Set<Socket>();
  let onConnect: (() => void) | null = null;
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    onConnect?.();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    connected: () => (sockets.size > 0 ? Promise.resolve() : new Promise((r) => (onConnect = r))),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface AgentRun {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  waitFor(match: (l: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The real agent process on its own state directory; its JSON log lines are kept. */
async function runAgent(name: string, labUrl: string, extra = ''): Promise<AgentRun> {
  const work = join(dir, name);
  await mkdir(work, { recursive: true });
  await writeFile(join(work, 'secrets.yaml'), 'stuck-bmc: {username: admin, password: never-answered, use: [bmc], addresses: [127.0.0.1], allowInsecureTls: true}\n');
  await writeFile(
    join(work, 'agent.yaml'),
    `lab: {url: '${labUrl}', pollSeconds: 1}\nstatus: {batchSeconds: 0.2}\nstateDir: ${join(work, 'state')}\nsecretsFile: ${join(work, 'secrets.yaml')}\n` +
      `serve: {bindAddress: 127.0.0.1, dhcp: false, tftp: false}\nbmc: {minIntervalMs: 0, timeoutMs: 120000, retries: 0}\nreconcileIntervalMs: 200\n` +
      `images: {fileRoots: [${join(dir, 'mirror')}], httpAllow: [127.0.0.1]}\n${extra}`,
  );
  const child = spawn(process.execPath, [CLI, 'agent', '--config', join(work, 'agent.yaml')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORSETI_LOG_LEVEL: 'debug' } });
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  let partial = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const text of parts.filter(Boolean)) {
      try {
        lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        lines.push({ msg: text });
      }
    }
    for (const w of [...waiters]) w();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => lines.push({ msg: chunk, stream: 'stderr' }));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('close', (code, signal) => r({ code, signal })));
  return {
    child,
    lines,
    exited,
    waitFor: (match, what) =>
      new Promise((resolvePromise, reject) => {
        const check = (): void => {
          const hit = lines.find(match);
          if (!hit) return;
          waiters.delete(check);
          resolvePromise(hit);
        };
        waiters.add(check);
        void exited.then(() => {
          if (waiters.delete(check)) reject(new Error(`the agent exited before ${what}:\n${lines.slice(-20).map((l) => JSON.stringify(l)).join('\n')}`));
        });
        check();
      }),
  };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forseti-sec-wedge-'));
  git = await startGitServer();
  images = await slowImageServer();
});

after(async () => {
  await images?.close();
  await git?.close();
  await rm(dir, { recursive: true, force: true });
});

test('SIGTERM while the agent hangs on an image read (after refusing a FIFO image) ends it cleanly', { timeout: 120_000 }, async () => {
  const lab = await loopbackLabFiles(dir, { http: await freeTcpPort(), tftp: 1 });
  const fifo = join(dir, 'mirror', 'fifo');
  spawnSync('mkfifo', [fifo]);
  const seed = join(dir, 'seed-image');
  await writeTree(seed, {
    ...lab,
    'images/pipe.yaml': imageFile('pipe', pathToFileURL(fifo).href, '0'.repeat(64)),
    'profiles/piped.yaml': profile('piped', 'pipe'),
    'hosts/hand.yaml': host('hand', 'piped', '{type: manual}'),
  });
  await createBareRepo(git, 'image', seed);
  const agent = await runAgent('image', git.repoUrl('image'));
  try {
    await agent.waitFor((l) => /not a regular file/.test(String(l.msg)) || /not a regular file/.test(JSON.stringify(l.err ?? '')), 'the FIFO image refused');
    await commitFiles(git, 'image', 'main', {
      'images/hung.yaml': imageFile('hung', `${images.url}/stalled`, '0'.repeat(64), 'download: {idleTimeoutSeconds: 600, totalTimeoutSeconds: 3600}\n'),
      'profiles/piped.yaml': profile('piped', 'hung'),
    }, 'an image server that never answers');
    await images.waitFor('/stalled');
    agent.child.kill('SIGTERM');
    const { code, signal } = await agent.exited;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, tail(agent));
    assert.ok(agent.lines.some((l) => l.msg === 'commit apply abandoned; neither applied nor rejected'));
    assert.ok(agent.lines.some((l) => l.msg === 'agent stopped'));
  } finally {
    agent.child.kill('SIGKILL');
  }
});

test('SIGTERM while a BMC never answers, then SIGINT: the second signal ends the agent at once, naming the exchange', { timeout: 120_000 }, async () => {
  const stuck = await stuckServer();
  const lab = await loopbackLabFiles(dir, { http: await freeTcpPort(), tftp: 1 });
  const seed = join(dir, 'seed-bmc');
  await writeTree(seed, { ...lab, 'hosts/mute.yaml': host('mute', 'worker', `{type: redfish, address: 127.0.0.1, port: ${stuck.port}, credential: stuck-bmc, tls: {insecure: true}}`) });
  await createBareRepo(git, 'bmc', seed);
  const agent = await runAgent('bmc', git.repoUrl('bmc'));
  try {
    await agent.waitFor((l) => l.msg === 'commit applied', 'the commit applied');
    await stuck.connected();
    agent.child.kill('SIGTERM');
    await agent.waitFor((l) => l.msg === 'stopping', 'the stop begun');
    agent.child.kill('SIGINT');
    const { signal } = await agent.exited;
    assert.equal(signal, 'SIGTERM', tail(agent));
    const last = agent.lines.find((l) => /^exiting now/.test(String(l.msg)));
    assert.match(String(last?.msg), /^exiting now \(a second signal\); still running: .*BMC actions on mute/, tail(agent));
  } finally {
    agent.child.kill('SIGKILL');
    await stuck.close();
  }
});

test('SIGTERM while the Git server never answers: the agent stops what it can, names what it leaves, and ends by SIGTERM', { timeout: 120_000 }, async () => {
  const stuck = await stuckServer();
  const agent = await runAgent('git', `http://127.0.0.1:${stuck.port}/lab.git`);
  try {
    await stuck.connected();
    agent.child.kill('SIGTERM');
    const { signal } = await agent.exited;
    assert.equal(signal, 'SIGTERM', tail(agent));
    const last = agent.lines.find((l) => /^exiting now/.test(String(l.msg)));
    assert.match(String(last?.msg), /^exiting now \(stopped with work left behind\); still running: .*(reading the status branch|fetching the lab branch)/, tail(agent));
  } finally {
    agent.child.kill('SIGKILL');
    await stuck.close();
  }
});

test('forseti serve http: a FIFO and a device in the root, asked for again and again, block nothing', { timeout: 60_000 }, async () => {
  const root = join(dir, 'http-root');
  await mkdir(root);
  await writeFile(join(root, 'kernel'), 'kernel bytes');
  spawnSync('mkfifo', [join(root, 'fifo')]);
  const device = spawnSync('mknod', [join(root, 'zero'), 'c', '1', '5']).status === 0; // needs root; the FIFO alone proves the point
  const srv = await startServe(['http', '--root', root, '--listen', '127.0.0.1:0']);
  try {
    const url = (p: string): string => `http://127.0.0.1:${srv.port}/${p}`;
    for (let i = 0; i < 24; i++) {
      const res = await fetch(url('fifo'), { signal: AbortSignal.timeout(20_000) });
      assert.equal(res.status, 403);
      assert.match(await res.text(), /is not a regular file/);
      if (device) assert.equal((await fetch(url('zero'), { signal: AbortSignal.timeout(20_000) })).status, 403);
    }
    const ok = await fetch(url('kernel'), { signal: AbortSignal.timeout(20_000) });
    assert.equal(await ok.text(), 'kernel bytes');
  } finally {
    await srv.stop('SIGKILL');
  }
});

test('forseti validate and forseti plan never read a file:// image (a FIFO outside any root would hang them)', { timeout: 120_000 }, async () => {
  const repo = join(dir, 'plan-lab');
  const fifo = join(dir, 'outside-fifo');
  spawnSync('mkfifo', [fifo]);
  await writeTree(repo, { ...(await loopbackLabFiles(dir, { http: 8080, tftp: 69 })), 'hosts/hand.yaml': host('hand', 'worker', '{type: manual}') });
  await runGit(['init', '-q', '-b', 'main'], repo);
  await runGit(['add', '-A'], repo);
  await runGit(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'base'], repo);
  await writeTree(repo, { 'images/tiny.yaml': imageFile('tiny', pathToFileURL(fifo).href, sha('never read')) });
  await runGit(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', 'kernel from a FIFO'], repo);
  const validate = await forseti(['validate', repo]);
  assert.equal(validate.code, 0, validate.stdout + validate.stderr);
  const plan = await forseti(['plan', '--base', 'HEAD~1', '--head', 'HEAD', repo]);
  assert.ok(plan.code === 0 || plan.code === 1, `plan exit ${String(plan.code)}: ${plan.stderr}`);
});

function tail(agent: AgentRun): string {
  return agent.lines.slice(-15).map((l) => JSON.stringify(l)).join('\n');
}

function forseti(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolvePromise({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}
