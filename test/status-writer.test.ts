import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startGitServer, createBareRepo, commitFiles, readBranchFiles, countCommits, type GitServer, type GitRequestInfo } from './fixtures/git-server.ts';
import { createLogger } from '../src/log.ts';
import { StatusWriter, StatusPushError, InvalidStatusPathError, type StatusWriterOptions } from '../src/status/index.ts';

const logLines: string[] = [];
const log = createLogger({ level: 'debug', destination: new Writable({ write: (chunk: Buffer, _enc, cb) => (logLines.push(chunk.toString()), cb()) }) });
const author = { name: 'forseti agent', email: 'agent@lab.test' };
const BRANCH = 'forseti-status';

let server: GitServer;
let scratch: string;
let counter = 0;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'forseti-status-test-'));
  server = await startGitServer();
});

after(async () => {
  await server.close();
  await rm(scratch, { recursive: true, force: true });
});

async function newLab(): Promise<string> {
  const name = `lab${++counter}`;
  await createBareRepo(server, name);
  await commitFiles(server, name, 'main', { 'site.yaml': 'name: lab\n' }, 'lab');
  return name;
}

function writer(repo: string, extra: Partial<StatusWriterOptions> = {}): StatusWriter {
  return new StatusWriter({ url: server.repoUrl(repo), dir: join(scratch, `state-${repo}`), author, log, batchMs: 20, backoffMs: 10, ...extra });
}

// The git CLI announces itself as `git/2.x`; isomorphic-git's node client sends no user agent.
const fromWriter = (r: GitRequestInfo): boolean => !/^git\/\d/.test(r.userAgent);
const isOurPush = (r: GitRequestInfo): boolean => r.method === 'POST' && r.path.endsWith('/git-receive-pack') && fromWriter(r);

test('creates the status branch as an orphan and batches many set() into one commit', async () => {
  const repo = await newLab();
  const w = writer(repo);
  for (let i = 0; i < 20; i++) w.set(`hosts/bld-${String(i % 5).padStart(3, '0')}.yaml`, `phase: Pending\nn: ${i}\n`);
  w.set('site.yaml', 'revision: abc\n');
  const { commit } = await w.flush();
  assert.match(commit ?? '', /^[0-9a-f]{40}$/);
  assert.equal(await countCommits(server, repo, BRANCH), 1, 'one orphan commit');
  const files = await readBranchFiles(server, repo, BRANCH);
  assert.deepEqual(Object.keys(files).sort(), ['hosts/bld-000.yaml', 'hosts/bld-001.yaml', 'hosts/bld-002.yaml', 'hosts/bld-003.yaml', 'hosts/bld-004.yaml', 'site.yaml']);
  assert.equal(files['hosts/bld-004.yaml'], 'phase: Pending\nn: 19\n', 'last write to a path wins');
  // The lab branch is untouched.
  assert.deepEqual(await readBranchFiles(server, repo, 'main'), { 'site.yaml': 'name: lab\n' });
  assert.equal(w.dirty, false);
});

test('no empty commits: identical content and empty queues push nothing', async () => {
  const repo = await newLab();
  const w = writer(repo);
  w.set('hosts/a.yaml', 'x\n');
  assert.notEqual((await w.flush()).commit, null);
  assert.deepEqual(await w.flush(), { commit: null });
  w.set('hosts/a.yaml', 'x\n');
  assert.deepEqual(await w.flush(), { commit: null });
  assert.equal(w.dirty, false);
  assert.equal(await countCommits(server, repo, BRANCH), 1);
  w.set('hosts/a.yaml', 'y\n');
  w.remove('hosts/none.yaml');
  assert.notEqual((await w.flush()).commit, null);
  assert.equal(await countCommits(server, repo, BRANCH), 2);
});

test('remove() deletes a file and an emptied directory', async () => {
  const repo = await newLab();
  const w = writer(repo);
  w.set('hosts/a.yaml', 'a\n');
  w.set('site.yaml', 's\n');
  await w.flush();
  w.remove('hosts/a.yaml');
  await w.flush();
  assert.deepEqual(await readBranchFiles(server, repo, BRANCH), { 'site.yaml': 's\n' });
});

test('timer-driven batching: start() flushes queued writes in one commit, stop() flushes the rest', async () => {
  const repo = await newLab();
  const w = writer(repo);
  const pushed = new Promise<void>((resolve) => {
    server.beforeRequest = (r) => {
      if (isOurPush(r)) resolve();
    };
  });
  try {
    w.start();
    for (let i = 0; i < 10; i++) w.set(`hosts/h${i}.yaml`, `n: ${i}\n`);
    await pushed;
    server.beforeRequest = undefined;
    w.set('site.yaml', 'late\n');
    await w.stop();
    const files = await readBranchFiles(server, repo, BRANCH);
    assert.equal(Object.keys(files).length, 11);
    assert.equal(files['site.yaml'], 'late\n');
    assert.ok((await countCommits(server, repo, BRANCH)) <= 2, 'batched: never one commit per set()');
  } finally {
    server.beforeRequest = undefined;
    await w.stop();
  }
});

test('push race: another client pushes between our fetch and our push; both writes survive', async () => {
  const repo = await newLab();
  const w = writer(repo);
  w.set('hosts/a.yaml', 'ours-1\n');
  await w.flush();
  let raced = false;
  server.beforeRequest = async (r) => {
    if (!raced && isOurPush(r)) {
      raced = true;
      await commitFiles(server, repo, BRANCH, { 'hosts/other.yaml': 'theirs\n', 'notes/by-human.md': 'hello\n' }, 'someone else');
    }
  };
  try {
    w.set('hosts/a.yaml', 'ours-2\n');
    w.set('hosts/b.yaml', 'ours-b\n');
    const { commit } = await w.flush();
    assert.ok(raced, 'the race was injected');
    assert.notEqual(commit, null);
  } finally {
    server.beforeRequest = undefined;
  }
  assert.deepEqual(await readBranchFiles(server, repo, BRANCH), {
    'hosts/a.yaml': 'ours-2\n',
    'hosts/b.yaml': 'ours-b\n',
    'hosts/other.yaml': 'theirs\n',
    'notes/by-human.md': 'hello\n',
  });
  assert.equal(await countCommits(server, repo, BRANCH), 3);
});

test('push race before ref discovery (client-side non-fast-forward) and on branch creation', async () => {
  const repo = await newLab();
  const w = writer(repo);
  let raced = 0;
  // First race: the branch does not exist when we fetch, and someone creates it before our push.
  server.beforeRequest = async (r) => {
    if (raced === 0 && isOurPush(r)) {
      raced++;
      await commitFiles(server, repo, BRANCH, { 'x.txt': 'x\n' }, 'create');
    }
  };
  try {
    w.set('hosts/a.yaml', 'a\n');
    await w.flush();
    // Second race: the branch moves right before our receive-pack ref discovery.
    server.beforeRequest = async (r) => {
      if (raced === 1 && r.method === 'GET' && r.query === 'service=git-receive-pack' && fromWriter(r)) {
        raced++;
        await commitFiles(server, repo, BRANCH, { 'y.txt': 'y\n' }, 'move');
      }
    };
    w.set('hosts/b.yaml', 'b\n');
    await w.flush();
  } finally {
    server.beforeRequest = undefined;
  }
  assert.equal(raced, 2);
  assert.deepEqual(await readBranchFiles(server, repo, BRANCH), { 'hosts/a.yaml': 'a\n', 'hosts/b.yaml': 'b\n', 'x.txt': 'x\n', 'y.txt': 'y\n' });
});

test('a push that keeps losing the race fails after bounded attempts and stays queued', async () => {
  const repo = await newLab();
  const w = writer(repo, { attempts: 3 });
  let n = 0;
  server.beforeRequest = async (r) => {
    if (isOurPush(r)) await commitFiles(server, repo, BRANCH, { 'noise.txt': `${++n}\n` }, 'noise');
  };
  try {
    w.set('hosts/a.yaml', 'a\n');
    await assert.rejects(w.flush(), (e: unknown) => e instanceof StatusPushError && e.attempts === 3);
    assert.equal(n, 3);
    assert.equal(w.dirty, true);
  } finally {
    server.beforeRequest = undefined;
  }
  assert.notEqual((await w.flush()).commit, null);
  assert.equal((await readBranchFiles(server, repo, BRANCH))['hosts/a.yaml'], 'a\n');
});

test('nothing is lost while the server is down; the queue survives a restart of the writer', async () => {
  const own = await startGitServer();
  const root = own.root;
  let back: GitServer | undefined;
  try {
    await createBareRepo(own, 'lab');
    const url = own.repoUrl('lab');
    const dir = join(scratch, 'state-down');
    const w = new StatusWriter({ url, dir, author, log });
    w.set('hosts/a.yaml', 'v1\n');
    await w.flush();
    const port = Number(new URL(own.url).port);
    await own.close({ keepRoot: true });
    w.set('hosts/a.yaml', 'v2\n');
    w.set('hosts/b.yaml', 'b\n');
    await assert.rejects(w.flush(), StatusPushError);
    w.set('site.yaml', 'site\n');
    await assert.rejects(w.flush(), StatusPushError);
    assert.equal(w.dirty, true);
    await w.stop(); // does not throw; keeps the queue on disk
    assert.ok(logLines.some((l) => l.includes('"level":40') && l.includes('status push failed')), 'warned');

    back = await startGitServer({ root, port });
    // A new writer on the same state dir (agent restarted) delivers what the old one could not.
    const again = new StatusWriter({ url, dir, author, log });
    assert.equal(again.dirty, true);
    assert.notEqual((await again.flush()).commit, null);
    assert.deepEqual(await readBranchFiles(back, 'lab', BRANCH), { 'hosts/a.yaml': 'v2\n', 'hosts/b.yaml': 'b\n', 'site.yaml': 'site\n' });
    assert.equal(await countCommits(back, 'lab', BRANCH), 2);
  } finally {
    await back?.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('a wiped state dir starts from the remote branch and preserves its files', async () => {
  const repo = await newLab();
  const dir = join(scratch, `wipe-${repo}`);
  const first = new StatusWriter({ url: server.repoUrl(repo), dir, author, log });
  first.set('hosts/a.yaml', 'a\n');
  await first.flush();
  await rm(dir, { recursive: true, force: true });
  const second = new StatusWriter({ url: server.repoUrl(repo), dir, author, log });
  second.set('hosts/b.yaml', 'b\n');
  await second.flush();
  assert.deepEqual(await readBranchFiles(server, repo, BRANCH), { 'hosts/a.yaml': 'a\n', 'hosts/b.yaml': 'b\n' });
  assert.equal(await countCommits(server, repo, BRANCH), 2);
});

test('a custom branch name and path validation', async () => {
  const repo = await newLab();
  const w = writer(repo, { branch: 'lab-status' });
  assert.throws(() => w.set('../escape.yaml', 'x'), InvalidStatusPathError);
  assert.throws(() => w.set('/abs.yaml', 'x'), InvalidStatusPathError);
  assert.throws(() => w.set('.git/config', 'x'), InvalidStatusPathError);
  w.set('hosts/a.yaml', 'a\n');
  await w.flush();
  assert.deepEqual(await readBranchFiles(server, repo, 'lab-status'), { 'hosts/a.yaml': 'a\n' });
});

test('with credentials: pushes authenticate and errors and logs never carry the password', async () => {
  const secured = await startGitServer({ auth: { username: 'agent', password: 'pw-very-secret' } });
  try {
    await createBareRepo(secured, 'lab');
    const w = new StatusWriter({ url: secured.repoUrl('lab'), dir: join(scratch, 'state-auth'), auth: { username: 'agent', password: 'pw-very-secret' }, author, log });
    w.set('hosts/a.yaml', 'a\n');
    assert.notEqual((await w.flush()).commit, null);
    assert.deepEqual(await readBranchFiles(secured, 'lab', BRANCH), { 'hosts/a.yaml': 'a\n' });
    const bad = new StatusWriter({ url: secured.repoUrl('lab'), dir: join(scratch, 'state-auth-bad'), auth: { username: 'agent', password: 'wrong-pw' }, author, log });
    bad.set('hosts/b.yaml', 'b\n');
    await assert.rejects(bad.flush(), (e: unknown) => e instanceof StatusPushError && /401/.test(e.message) && !/wrong-pw/.test(e.message));
    const all = logLines.join('');
    assert.ok(!all.includes('pw-very-secret') && !all.includes('wrong-pw'));
  } finally {
    await secured.close();
  }
});

test('push results are counted: two writers racing for the branch, one retries on top of the other; both states survive', async () => {
  const repo = await newLab();
  const results: { a: string[]; b: string[] } = { a: [], b: [] };
  const a = writer(repo, { onPush: (r) => void results.a.push(r) });
  const b = new StatusWriter({ url: server.repoUrl(repo), dir: join(scratch, `state-${repo}-b`), author, log, batchMs: 20, backoffMs: 10, onPush: (r) => void results.b.push(r) });
  a.set('hosts/a.yaml', 'a-1\n');
  await a.flush();
  // Writer B pushes its own batch after A fetched the branch and before A's push reaches the server.
  let injected = false;
  server.beforeRequest = async (r) => {
    if (injected || !isOurPush(r)) return;
    injected = true;
    b.set('hosts/b.yaml', 'b-1\n');
    b.set('site.yaml', 'from b\n');
    await b.flush();
  };
  try {
    a.set('hosts/a.yaml', 'a-2\n');
    a.set('site.yaml', 'from a\n');
    await a.flush();
  } finally {
    server.beforeRequest = undefined;
  }
  assert.ok(injected);
  assert.deepEqual(results, { a: ['ok', 'retried'], b: ['ok'] });
  // A's batch was re-applied on top of B's commit: A's files win where both wrote, B's other files stay.
  assert.deepEqual(await readBranchFiles(server, repo, BRANCH), { 'hosts/a.yaml': 'a-2\n', 'hosts/b.yaml': 'b-1\n', 'site.yaml': 'from a\n' });
  assert.equal(await countCommits(server, repo, BRANCH), 3);
  // Nothing new to say: unchanged, not pushed. A server that refuses: failed, and the files stay queued.
  a.set('hosts/a.yaml', 'a-2\n');
  await a.flush();
  assert.deepEqual(results.a, ['ok', 'retried', 'unchanged']);
  const refusing = writer(repo, { onPush: (r) => void results.a.push(r), attempts: 1, url: server.repoUrl('no-such-repo'), dir: join(scratch, `state-${repo}-refusing`) });
  refusing.set('hosts/x.yaml', 'x\n');
  await assert.rejects(refusing.flush(), StatusPushError);
  assert.equal(results.a.at(-1), 'failed');
  assert.equal(refusing.dirty, true);
});
