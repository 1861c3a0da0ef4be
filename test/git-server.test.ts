import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { gzipSync } from 'node:zlib';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import * as fs from 'node:fs';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { startGitServer, createBareRepo, commitFiles, revertCommit, readBranchFiles, type GitServer } from './fixtures/git-server.ts';
import { git as gitCli } from './fixtures/git/git-cli.ts';

let server: GitServer;
let scratch: string;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'forseti-git-server-test-'));
  server = await startGitServer({ socketPath: join(scratch, 'sock', 'git.sock') });
  const seed = join(scratch, 'seed');
  await mkdir(join(seed, 'hosts'), { recursive: true });
  await writeFile(join(seed, 'site.yaml'), 'name: lab\n');
  await writeFile(join(seed, 'hosts', 'bld-001.yaml'), 'name: bld-001\n');
  await createBareRepo(server, 'lab', seed);
});

after(async () => {
  await server.close();
  await rm(scratch, { recursive: true, force: true });
});

test('git CLI clones and pushes through the server', async () => {
  const dir = join(scratch, 'cli-clone');
  await gitCli(['clone', '--quiet', server.repoUrl('lab'), dir]);
  assert.equal(await readFile(join(dir, 'site.yaml'), 'utf8'), 'name: lab\n');
  await writeFile(join(dir, 'README'), 'hello\n');
  await gitCli(['add', '-A'], dir);
  await gitCli(['commit', '--quiet', '-m', 'readme'], dir);
  await gitCli(['push', '--quiet', 'origin', 'main'], dir);
  const files = await readBranchFiles(server, 'lab', 'main');
  assert.equal(files['README'], 'hello\n');
  assert.equal(files['hosts/bld-001.yaml'], 'name: bld-001\n');
});

test('commitFiles writes and deletes, revertCommit undoes', async () => {
  const sha = await commitFiles(server, 'lab', 'main', { 'hosts/bld-002.yaml': 'name: bld-002\n', 'site.yaml': null }, 'add bld-002, drop site');
  assert.match(sha, /^[0-9a-f]{40}$/);
  let files = await readBranchFiles(server, 'lab', 'main');
  assert.equal(files['hosts/bld-002.yaml'], 'name: bld-002\n');
  assert.equal(files['site.yaml'], undefined);
  await revertCommit(server, 'lab', 'main', sha);
  files = await readBranchFiles(server, 'lab', 'main');
  assert.equal(files['hosts/bld-002.yaml'], undefined);
  assert.equal(files['site.yaml'], 'name: lab\n');
});

test('commitFiles creates a missing branch as an orphan', async () => {
  await commitFiles(server, 'lab', 'side', { 'a.txt': 'a\n' }, 'orphan');
  assert.deepEqual(await readBranchFiles(server, 'lab', 'side'), { 'a.txt': 'a\n' });
});

test('isomorphic-git clones through the server', async () => {
  const dir = join(scratch, 'iso-clone');
  await git.clone({ fs, http, dir, url: server.repoUrl('lab'), ref: 'main', singleBranch: true, depth: 1 });
  assert.equal(await readFile(join(dir, 'hosts', 'bld-001.yaml'), 'utf8'), 'name: bld-001\n');
});

test('isomorphic-git pushes through the server', async () => {
  const dir = join(scratch, 'iso-push');
  await git.clone({ fs, http, dir, url: server.repoUrl('lab'), ref: 'main', singleBranch: true });
  await writeFile(join(dir, 'iso.txt'), 'iso\n');
  await git.add({ fs, dir, filepath: 'iso.txt' });
  await git.commit({ fs, dir, message: 'iso', author: { name: 'iso', email: 'iso@lab.test' } });
  const result = await git.push({ fs, http, dir, remote: 'origin', ref: 'main' });
  assert.equal(result.ok, true);
  assert.equal((await readBranchFiles(server, 'lab', 'main'))['iso.txt'], 'iso\n');
});

function pktLine(s: string): string {
  return (s.length + 4).toString(16).padStart(4, '0') + s;
}

function post(base: string, path: string, body: Buffer, headers: Record<string, string>): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method: 'POST', headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function get(target: { socketPath: string } | { host: string; port: number }, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ ...target, path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

test('gzip-encoded upload-pack requests are inflated by http-backend', async () => {
  const head = (await gitCli(['ls-remote', server.repoUrl('lab'), 'refs/heads/main'])).split('\t')[0] ?? '';
  const body = gzipSync(Buffer.from(pktLine(`want ${head}\n`) + '0000' + pktLine('done\n')));
  const res = await post(server.url, '/lab.git/git-upload-pack', body, {
    'content-type': 'application/x-git-upload-pack-request',
    'content-encoding': 'gzip',
  });
  assert.equal(res.status, 200);
  assert.ok(res.body.includes(Buffer.from('PACK')), 'response carries a packfile');
});

test('unknown repositories are 404', async () => {
  const res = await get({ host: '127.0.0.1', port: Number(new URL(server.url).port) }, '/nope.git/info/refs?service=git-upload-pack');
  assert.equal(res.status, 404);
});

test('the server also listens on its Unix socket', async () => {
  assert.ok(server.socketPath);
  const res = await get({ socketPath: server.socketPath }, '/lab.git/info/refs?service=git-upload-pack');
  assert.equal(res.status, 200);
  assert.match(res.body, /refs\/heads\/main/);
});

test('unix-forwarder pipes TCP to the Unix socket', async () => {
  const free = createNetServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', () => r()));
  const port = (free.address() as AddressInfo).port;
  await new Promise<void>((r) => free.close(() => r()));
  assert.ok(server.socketPath);
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/unix-forwarder.ts', `127.0.0.1:${port}`, server.socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const lines = createInterface({ input: child.stdout });
    for await (const line of lines) if (line === 'ready') break;
    const out = await gitCli(['ls-remote', `http://127.0.0.1:${port}/lab.git`]);
    assert.match(out, /refs\/heads\/main/);
  } finally {
    child.kill('SIGTERM');
  }
});

test('Basic auth is enforced when configured', async () => {
  const secured = await startGitServer({ auth: { username: 'lab', password: 's3cret' } });
  try {
    await createBareRepo(secured, 'lab');
    await commitFiles(secured, 'lab', 'main', { 'x.txt': 'x\n' }, 'x');
    await assert.rejects(gitCli(['ls-remote', secured.repoUrl('lab')]));
    const dir = join(scratch, 'auth-clone');
    await git.clone({ fs, http, dir, url: secured.repoUrl('lab'), onAuth: () => ({ username: 'lab', password: 's3cret' }) });
    assert.equal(await readFile(join(dir, 'x.txt'), 'utf8'), 'x\n');
  } finally {
    await secured.close();
  }
});
