import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, readFile, readdir, readlink, rm, stat, lstat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, isAbsolute } from 'node:path';
import { Writable } from 'node:stream';
import { startGitServer, createBareRepo, commitFiles, revertCommit, type GitServer } from './fixtures/git-server.ts';
import { git as gitCli, gitEnv } from './fixtures/git/git-cli.ts';
import { execFileSync } from 'node:child_process';
import { createLogger } from '../src/log.ts';
import { GitSource, SourceFetchError, RefusedTreeError, RevisionNotFoundError, TargetNotEmptyError, UnsafeTreePathError, checkoutRevision } from '../src/source/index.ts';
import { applyChanges } from '../src/source/apply-changes.ts';

const logLines: string[] = [];
const log = createLogger({ level: 'debug', destination: new Writable({ write: (chunk: Buffer, _enc, cb) => (logLines.push(chunk.toString()), cb()) }) });

let server: GitServer;
let scratch: string;
let counter = 0;

async function newRepo(): Promise<string> {
  const name = `lab${++counter}`;
  const seed = join(scratch, `seed-${name}`);
  await mkdir(join(seed, 'hosts'), { recursive: true });
  await writeFile(join(seed, 'site.yaml'), 'name: lab\n');
  await writeFile(join(seed, 'hosts', 'bld-001.yaml'), 'name: bld-001\n');
  await writeFile(join(seed, 'hosts', 'bld-002.yaml'), 'name: bld-002\n');
  await createBareRepo(server, name, seed);
  return name;
}

async function listTree(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listTree(dir, p)));
    else out.push(p);
  }
  return out.sort();
}

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'forseti-source-test-'));
  server = await startGitServer();
});

after(async () => {
  await server.close();
  await rm(scratch, { recursive: true, force: true });
});

test('first sync clones and checks out the branch head on disk', async () => {
  const repo = await newRepo();
  const source = new GitSource({ url: server.repoUrl(repo), dir: join(scratch, 'state-first'), log });
  const r = await source.sync();
  assert.match(r.commit, /^[0-9a-f]{40}$/);
  assert.equal(r.changed, true);
  assert.ok(isAbsolute(r.tree));
  assert.deepEqual(await listTree(r.tree), ['hosts/bld-001.yaml', 'hosts/bld-002.yaml', 'site.yaml']);
  const again = await source.sync();
  assert.equal(again.commit, r.commit);
  assert.equal(again.changed, false);
});

test('new commits are detected; deleted files and emptied dirs vanish; local edits are discarded', async () => {
  const repo = await newRepo();
  const source = new GitSource({ url: server.repoUrl(repo), dir: join(scratch, 'state-changes'), log });
  const first = await source.sync();
  // Local tampering: edit a tracked file and drop a stray one.
  await writeFile(join(first.tree, 'site.yaml'), 'tampered\n');
  await mkdir(join(first.tree, 'stray'));
  await writeFile(join(first.tree, 'stray', 'junk.txt'), 'junk\n');
  const sha = await commitFiles(server, repo, 'main', { 'hosts/bld-002.yaml': null, 'hosts/bld-001.yaml': 'name: bld-001\nrole: worker\n', 'images/talos.yaml': 'name: talos\n' }, 'change');
  const second = await source.sync();
  assert.equal(second.commit, sha);
  assert.equal(second.changed, true);
  assert.deepEqual(await listTree(second.tree), ['hosts/bld-001.yaml', 'images/talos.yaml', 'site.yaml']);
  assert.equal(await readFile(join(second.tree, 'site.yaml'), 'utf8'), 'name: lab\n');
  assert.equal(await readFile(join(second.tree, 'hosts', 'bld-001.yaml'), 'utf8'), 'name: bld-001\nrole: worker\n');

  await commitFiles(server, repo, 'main', { 'images/talos.yaml': null }, 'drop images');
  const third = await source.sync();
  await assert.rejects(stat(join(third.tree, 'images')), { code: 'ENOENT' });

  // Revert back to a tree identical to an earlier commit: still a new commit, exact tree.
  const reverted = await revertCommit(server, repo, 'main', sha);
  await commitFiles(server, repo, 'main', { 'images/talos.yaml': 'name: talos\n' }, 're-add image');
  const fourth = await source.sync();
  assert.notEqual(fourth.commit, reverted);
  assert.deepEqual(await listTree(fourth.tree), ['hosts/bld-001.yaml', 'hosts/bld-002.yaml', 'images/talos.yaml', 'site.yaml']);
});

async function readAll(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const path of await listTree(dir)) out[path] = await readFile(join(dir, path), 'utf8');
  return out;
}

test('a new commit is checked out by writing only the files it changed, and the tree equals a whole checkout', async () => {
  const repo = await newRepo();
  const dir = join(scratch, 'state-incremental');
  const source = new GitSource({ url: server.repoUrl(repo), dir, log });
  await source.sync();
  const steps: Array<Record<string, string | null>> = [
    { 'hosts/bld-001.yaml': 'name: bld-001\nrole: a\n', 'hosts/bld-003.yaml': 'name: bld-003\n' },
    { 'hosts/bld-002.yaml': null, 'profiles/p.yaml': 'name: p\n', 'configs/deep/x.cfg': 'x\n' },
    { 'configs/deep/x.cfg': null, 'site.yaml': null, 'site.yaml/inner': 'now a directory\n' },
    { 'site.yaml/inner': null, 'hosts/bld-001.yaml': null, 'hosts/bld-003.yaml': null },
    { 'site.yaml': 'name: lab again\n' },
  ];
  let n = 0;
  for (const files of steps) {
    const from = logLines.length;
    const sha = await commitFiles(server, repo, 'main', files, `step ${++n}`);
    const synced = await source.sync();
    assert.equal(synced.commit, sha);
    const checkedOut = logLines.slice(from).map((l) => JSON.parse(l) as { msg: string; files?: number }).find((l) => l.msg === 'checked out lab revision');
    assert.equal(checkedOut?.files, Object.keys(files).length, `step ${n} wrote only the changed files`);
    const whole = join(scratch, `incremental-whole-${n}`);
    await source.checkoutRevision(sha, whole);
    assert.deepEqual(await readAll(synced.tree), await readAll(whole), `step ${n}`);
    assert.deepEqual((await source.changedPaths(sha, sha)), []);
  }
  // A restarted source checks the whole commit out over the incrementally written tree.
  const sha = await commitFiles(server, repo, 'main', { 'hosts/bld-009.yaml': 'name: bld-009\n' }, 'after restart');
  const restarted = await new GitSource({ url: server.repoUrl(repo), dir, log }).sync();
  const whole = join(scratch, 'incremental-whole-restart');
  await source.checkoutRevision(sha, whole);
  assert.deepEqual(await readAll(restarted.tree), await readAll(whole));
});

test('a restarted source (state dir kept) reports changed and repairs the tree', async () => {
  const repo = await newRepo();
  const dir = join(scratch, 'state-restart');
  const a = await new GitSource({ url: server.repoUrl(repo), dir, log }).sync();
  await rm(join(a.tree, 'site.yaml'));
  const b = await new GitSource({ url: server.repoUrl(repo), dir, log }).sync();
  assert.equal(b.commit, a.commit);
  assert.equal(b.changed, true);
  assert.equal(await readFile(join(b.tree, 'site.yaml'), 'utf8'), 'name: lab\n');
});

test('a restarted source takes over the tree it left intact without writing it again, and moves it on file by file', async () => {
  const repo = await newRepo();
  const dir = join(scratch, 'state-adopt');
  const a = await new GitSource({ url: server.repoUrl(repo), dir, log }).sync();
  const before = await stat(join(a.tree, 'hosts', 'bld-001.yaml'));
  const b = await new GitSource({ url: server.repoUrl(repo), dir, log }).sync();
  assert.equal(b.commit, a.commit);
  assert.equal(b.changed, true, 'new to this instance');
  const after = await stat(join(b.tree, 'hosts', 'bld-001.yaml'));
  assert.deepEqual([after.ino, after.mtimeMs], [before.ino, before.mtimeMs], 'not written again');
  const next = await commitFiles(server, repo, 'main', { 'hosts/bld-002.yaml': 'name: bld-002\nrole: off\n' }, 'change');
  const c = await new GitSource({ url: server.repoUrl(repo), dir, log }).sync();
  assert.equal(c.commit, next);
  assert.equal(await readFile(join(c.tree, 'hosts', 'bld-002.yaml'), 'utf8'), 'name: bld-002\nrole: off\n');
  const kept = await stat(join(c.tree, 'hosts', 'bld-001.yaml'));
  assert.deepEqual([kept.ino, kept.mtimeMs], [before.ino, before.mtimeMs], 'only the changed file is written');
  // A record that names a commit the clone does not have, or a damaged one, means a whole checkout.
  await writeFile(join(dir, 'checked-out.json'), JSON.stringify({ commit: 'f'.repeat(40), stamps: [] }));
  await writeFile(join(c.tree, 'stray.txt'), 'x');
  const d = await new GitSource({ url: server.repoUrl(repo), dir, log }).sync();
  assert.deepEqual(await listTree(d.tree), ['hosts/bld-001.yaml', 'hosts/bld-002.yaml', 'site.yaml']);
  await writeFile(join(dir, 'checked-out.json'), '{damaged');
  await writeFile(join(c.tree, 'site.yaml'), 'edited\n');
  const e = await new GitSource({ url: server.repoUrl(repo), dir, log }).sync();
  assert.equal(await readFile(join(e.tree, 'site.yaml'), 'utf8'), 'name: lab\n');
});

test('a failed fetch raises SourceFetchError without credentials and keeps the last tree', async () => {
  const secured = await startGitServer({ auth: { username: 'agent', password: 'hunter2-secret' } });
  try {
    await createBareRepo(secured, 'lab');
    await commitFiles(secured, 'lab', 'main', { 'site.yaml': 'name: secured\n' }, 'init');
    const url = secured.repoUrl('lab').replace('http://', 'http://agent:hunter2-secret@');
    const source = new GitSource({ url, dir: join(scratch, 'state-fail'), auth: { username: 'agent', password: 'hunter2-secret' }, log });
    const good = await source.sync();
    assert.equal(await readFile(join(good.tree, 'site.yaml'), 'utf8'), 'name: secured\n');
    const port = Number(new URL(secured.url).port);
    await secured.close({ keepRoot: true });
    const err = await source.sync().then(
      () => assert.fail('sync should fail while the server is down'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SourceFetchError);
    assert.equal(err.url, secured.repoUrl('lab'));
    assert.doesNotMatch(err.message, /hunter2/);
    assert.equal(await readFile(join(good.tree, 'site.yaml'), 'utf8'), 'name: secured\n');
    // Wrong credentials: an auth failure, also a SourceFetchError.
    const back = await startGitServer({ root: secured.root, port, auth: { username: 'agent', password: 'hunter2-secret' } });
    try {
      const wrong = new GitSource({ url: secured.repoUrl('lab'), dir: join(scratch, 'state-fail'), auth: { username: 'agent', password: 'nope-nope' }, log });
      await assert.rejects(wrong.sync(), (e: unknown) => e instanceof SourceFetchError && /401/.test(e.message) && !/nope-nope/.test(e.message));
      const recovered = await source.sync();
      assert.equal(recovered.commit, good.commit);
    } finally {
      await back.close();
    }
    assert.ok(!logLines.join('').includes('hunter2'), 'credentials never reach the log');
  } finally {
    await rm(secured.root, { recursive: true, force: true });
  }
});

test('a missing branch or repository is a SourceFetchError', async () => {
  const repo = await newRepo();
  await assert.rejects(new GitSource({ url: server.repoUrl(repo), branch: 'nope', dir: join(scratch, 'state-nobranch'), log }).sync(), SourceFetchError);
  await assert.rejects(new GitSource({ url: server.repoUrl('missing'), dir: join(scratch, 'state-norepo'), log }).sync(), SourceFetchError);
});

test('a dangling remote HEAD is reported clearly by isomorphic-git, never as a missing branch; the git CLI fetches the branch', async () => {
  const name = `lab${++counter}`;
  await createBareRepo(server, name); // HEAD -> main, which never gets a commit
  await commitFiles(server, name, 'lab', { 'site.yaml': 'v1\n' }, 'v1');
  const source = new GitSource({ url: server.repoUrl(name), branch: 'lab', dir: join(scratch, 'state-dangling'), log, gitCli: false });
  await assert.rejects(source.sync(), (e: unknown) => e instanceof SourceFetchError && /remote HEAD points to a branch that does not exist/.test(e.message));
  const cli = await new GitSource({ url: server.repoUrl(name), branch: 'lab', dir: join(scratch, 'state-dangling-cli'), log }).sync();
  assert.equal(await readFile(join(cli.tree, 'site.yaml'), 'utf8'), 'v1\n');
});

test('the git CLI and isomorphic-git fetch and check out the same trees, commit after commit, and both repair a touched tree', async () => {
  const repo = await newRepo();
  const both = [true, false].map((gitCli) => new GitSource({ url: server.repoUrl(repo), dir: join(scratch, `state-same-${gitCli}`), log, gitCli }));
  const snapshot = async (tree: string): Promise<Array<[string, string, number]>> =>
    Promise.all((await listTree(tree)).map(async (p): Promise<[string, string, number]> => {
      const s = await lstat(join(tree, p));
      return [p, s.isSymbolicLink() ? `-> ${await readlink(join(tree, p))}` : await readFile(join(tree, p), 'utf8'), s.mode & 0o111];
    }));
  const compare = async (what: string): Promise<void> => {
    const [cli, iso] = await Promise.all(both.map((s) => s.sync()));
    assert.equal(cli?.commit, iso?.commit, what);
    assert.deepEqual(await snapshot(cli?.tree ?? ''), await snapshot(iso?.tree ?? ''), what);
  };
  await compare('first sync');
  await commitFiles(server, repo, 'main', { 'profiles/a/b/deep.yaml': 'deep\n', 'hosts/bld-001.yaml': null, '.gitignore': '*.yaml\n' }, 'nested, deleted, ignore');
  await compare('nested and deleted');
  await commitFiles(server, repo, 'main', { 'site.yaml': null, 'site.yaml/inner': 'x\n' }, 'file to dir');
  await compare('file to directory');
  // Touched behind the agent's back: a new process of each repairs its tree whole.
  for (const s of both) {
    const tree = s.treeDir;
    await writeFile(join(tree, 'hosts', 'bld-002.yaml'), 'edited\n');
    await writeFile(join(tree, 'stray.yaml'), 'stray\n');
  }
  both.splice(0, 2, ...[true, false].map((gitCli) => new GitSource({ url: server.repoUrl(repo), dir: join(scratch, `state-same-${gitCli}`), log, gitCli })));
  await compare('repaired');
  assert.equal(await readFile(join(both[0]?.treeDir ?? '', 'hosts', 'bld-002.yaml'), 'utf8'), 'name: bld-002\n');
});

test('changedPaths lists added, modified and deleted files between two commits', async () => {
  const repo = await newRepo();
  const source = new GitSource({ url: server.repoUrl(repo), dir: join(scratch, 'state-diff'), log });
  const a = await source.sync();
  await commitFiles(server, repo, 'main', { 'hosts/bld-002.yaml': null, 'hosts/bld-001.yaml': 'changed\n', 'profiles/talos.yaml': 'p\n' }, 'c1');
  const b = await source.sync();
  assert.deepEqual(await source.changedPaths(a.commit, b.commit), [
    { path: 'hosts/bld-001.yaml', kind: 'modified' },
    { path: 'hosts/bld-002.yaml', kind: 'deleted' },
    { path: 'profiles/talos.yaml', kind: 'added' },
  ]);
  assert.deepEqual(await source.changedPaths(b.commit, b.commit), []);
  assert.deepEqual(
    (await source.changedPaths(null, a.commit)).map((c) => c.path),
    ['hosts/bld-001.yaml', 'hosts/bld-002.yaml', 'site.yaml'],
  );
  // A file replaced by a directory of the same name.
  await commitFiles(server, repo, 'main', { 'site.yaml': null, 'site.yaml/inner': 'x\n' }, 'file to dir');
  const c = await source.sync();
  assert.deepEqual(await source.changedPaths(b.commit, c.commit), [
    { path: 'site.yaml', kind: 'deleted' },
    { path: 'site.yaml/inner', kind: 'added' },
  ]);
});

test('readCommitInfo and checkoutRevision', async () => {
  const repo = await newRepo();
  const source = new GitSource({ url: server.repoUrl(repo), dir: join(scratch, 'state-info'), log });
  const a = await source.sync();
  await commitFiles(server, repo, 'main', { 'hosts/bld-003.yaml': 'name: bld-003\n' }, 'Add bld-003\n\nbody');
  const b = await source.sync();
  const info = await source.readCommitInfo(b.commit);
  assert.equal(info.sha, b.commit);
  assert.equal(info.message, 'Add bld-003\n\nbody');
  assert.equal(info.author, 'Lab Tester <tester@lab.test>');
  assert.ok(!Number.isNaN(Date.parse(info.timestamp)));

  const base = join(scratch, 'plan-base');
  assert.equal(await source.checkoutRevision('main~1', base), a.commit);
  assert.deepEqual(await listTree(base), ['hosts/bld-001.yaml', 'hosts/bld-002.yaml', 'site.yaml']);
  const head = join(scratch, 'plan-head');
  assert.equal(await source.checkoutRevision(b.commit.slice(0, 8), head), b.commit);
  assert.deepEqual(await listTree(head), ['hosts/bld-001.yaml', 'hosts/bld-002.yaml', 'hosts/bld-003.yaml', 'site.yaml']);
  await assert.rejects(source.checkoutRevision('main', head), TargetNotEmptyError);
  await assert.rejects(source.checkoutRevision('no-such-rev', join(scratch, 'plan-x')), RevisionNotFoundError);
});

test('checkoutRevision works on a plain local working repository', async () => {
  const work = join(scratch, 'local-work');
  await gitCli(['init', '--quiet', '--initial-branch=main', work]);
  await mkdir(join(work, 'bin'));
  await writeFile(join(work, 'bin', 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
  await writeFile(join(work, 'site.yaml'), 'v1\n');
  await gitCli(['add', '-A'], work);
  await gitCli(['commit', '--quiet', '-m', 'v1'], work);
  await gitCli(['tag', '-a', 'v1', '-m', 'release v1'], work);
  await writeFile(join(work, 'site.yaml'), 'v2\n');
  await gitCli(['commit', '--quiet', '-am', 'v2'], work);
  await gitCli(['gc', '--quiet'], work); // objects in a packfile, as in real repos
  const out = join(scratch, 'local-v1');
  await checkoutRevision(work, 'v1', out);
  assert.equal(await readFile(join(out, 'site.yaml'), 'utf8'), 'v1\n');
  assert.equal((await stat(join(out, 'bin', 'run.sh'))).mode & 0o111, 0o111);
  const out2 = join(scratch, 'local-head');
  await checkoutRevision(join(work, '.git'), 'HEAD', out2);
  assert.equal(await readFile(join(out2, 'site.yaml'), 'utf8'), 'v2\n');
});

/** Pushes a commit made with the git CLI in a clone of `repo` (what commitFiles cannot express); returns its sha. */
async function pushFromClone(repo: string, work: (dir: string) => Promise<void>): Promise<string> {
  const dir = await mkdtemp(join(scratch, 'clone-'));
  await gitCli(['clone', '--quiet', join(server.root, `${repo}.git`), dir]);
  await work(dir);
  await gitCli(['push', '--quiet', 'origin', 'HEAD:refs/heads/main'], dir);
  return (await gitCli(['rev-parse', 'HEAD'], dir)).trim();
}

test('a file replaced by a submodule is removed from the tree, and the next commit still applies file by file', async () => {
  const repo = await newRepo();
  await commitFiles(server, repo, 'main', { 'vendor/lib': 'a file for now\n' }, 'add lib');
  const source = new GitSource({ url: server.repoUrl(repo), dir: join(scratch, 'state-submodule'), log });
  const first = await source.sync();
  assert.equal(await readFile(join(first.tree, 'vendor/lib'), 'utf8'), 'a file for now\n');
  const sha = await pushFromClone(repo, async (dir) => {
    await gitCli(['rm', '--quiet', 'vendor/lib'], dir);
    await gitCli(['update-index', '--add', '--cacheinfo', `160000,${first.commit},vendor/lib`], dir);
    await gitCli(['commit', '--quiet', '-m', 'lib becomes a submodule'], dir);
  });
  const from = logLines.length;
  const synced = await source.sync();
  assert.equal(synced.commit, sha);
  await assert.rejects(lstat(join(synced.tree, 'vendor/lib')), { code: 'ENOENT' });
  const whole = join(scratch, 'submodule-whole');
  await source.checkoutRevision(sha, whole);
  assert.deepEqual(await readAll(synced.tree), await readAll(whole));

  await commitFiles(server, repo, 'main', { 'hosts/bld-003.yaml': 'name: bld-003\n' }, 'after the submodule');
  const next = await source.sync();
  assert.deepEqual(await listTree(next.tree), ['hosts/bld-001.yaml', 'hosts/bld-002.yaml', 'hosts/bld-003.yaml', 'site.yaml']);
  const messages = logLines.slice(from).map((l) => JSON.parse(l) as { msg: string; files?: number });
  assert.deepEqual(messages.filter((l) => l.msg === 'checked out lab revision').map((l) => l.files), [1, 1], 'both commits applied file by file');
});

test('a tree path that leaves the working tree is refused before anything is written or removed', async () => {
  const base = await mkdtemp(join(scratch, 'unsafe-'));
  const gitdir = join(base, 'repo.git');
  await gitCli(['init', '--quiet', '--bare', gitdir]);
  await writeFile(join(base, 'blob'), 'payload\n');
  const oid = (await gitCli(['hash-object', '-w', join(base, 'blob')], gitdir)).trim();
  const tree = join(base, 'tree');
  await mkdir(join(tree, 'hosts'), { recursive: true });
  await writeFile(join(tree, 'hosts', 'bld-001.yaml'), 'name: bld-001\n');
  await writeFile(join(base, 'victim'), 'outside\n');
  const crafted = [`../escaped`, `hosts/../../escaped`, join(base, 'escaped'), '.', 'hosts/..'];
  for (const path of crafted) {
    const changes = [
      { path: 'hosts/bld-001.yaml', kind: 'deleted' as const },
      { path: '../victim', kind: 'deleted' as const },
      { path, kind: 'added' as const, oid, mode: '100644', type: 'blob' as const },
    ];
    await assert.rejects(applyChanges(tree, gitdir, changes, {}), (e: unknown) => e instanceof UnsafeTreePathError && e.path === '../victim' && e.message.includes('"../victim"'));
    await assert.rejects(applyChanges(tree, gitdir, changes.slice(2), {}), (e: unknown) => e instanceof UnsafeTreePathError && e.path === path, path);
  }
  assert.deepEqual((await readdir(base)).sort(), ['blob', 'repo.git', 'tree', 'victim']);
  assert.equal(await readFile(join(base, 'victim'), 'utf8'), 'outside\n');
  assert.deepEqual(await listTree(tree), ['hosts/bld-001.yaml'], 'nothing was removed either');
  // a name that merely starts with two dots stays inside
  await applyChanges(tree, gitdir, [{ path: 'hosts/..bld-002.yaml', kind: 'added', oid, mode: '100644', type: 'blob' }], {});
  assert.equal(await readFile(join(tree, 'hosts', '..bld-002.yaml'), 'utf8'), 'payload\n');
});

test('between commits, an edit of a file the commit writes or a file added anywhere makes a whole checkout; a restart looks at every file', async () => {
  const repo = await newRepo();
  const dir = join(scratch, 'state-touched');
  const source = new GitSource({ url: server.repoUrl(repo), dir, log });
  const a = await source.sync();
  const wholeAfter = async (files: Record<string, string | null>, touch: () => Promise<void>, what: string): Promise<void> => {
    await touch();
    const from = logLines.length;
    const sha = await commitFiles(server, repo, 'main', files, what);
    const synced = await source.sync();
    const lines = logLines.slice(from).map((l) => JSON.parse(l) as { msg: string; files?: number });
    assert.ok(lines.some((l) => l.msg === 'the working tree was changed outside forseti; checking the whole commit out'), what);
    const whole = join(scratch, `touched-whole-${what.replace(/\W/g, '-')}`);
    await source.checkoutRevision(sha, whole);
    assert.deepEqual(await readAll(synced.tree), await readAll(whole), what);
  };
  await wholeAfter({ 'hosts/bld-001.yaml': 'name: bld-001\nrole: a\n' }, () => writeFile(join(a.tree, 'hosts', 'bld-001.yaml'), 'edited\n'), 'edited where the commit writes');
  await wholeAfter({ 'site.yaml': 'name: lab 2\n' }, () => writeFile(join(a.tree, 'hosts', 'stray.yaml'), 'stray\n'), 'stray file in a subdirectory');
  await wholeAfter({ 'site.yaml': 'name: lab 3\n' }, () => rm(join(a.tree, 'hosts', 'bld-002.yaml')), 'file removed');
  await wholeAfter({ 'site.yaml': 'name: lab 4\n' }, async () => {
    await mkdir(join(a.tree, 'extra', 'deeper'), { recursive: true });
    await writeFile(join(a.tree, 'extra', 'deeper', 'x'), 'x\n');
  }, 'stray directory');
  // Untouched: file by file again.
  const from = logLines.length;
  await commitFiles(server, repo, 'main', { 'hosts/bld-003.yaml': 'name: bld-003\n' }, 'untouched');
  await source.sync();
  assert.equal(logLines.slice(from).map((l) => JSON.parse(l) as { msg: string; files?: number }).find((l) => l.msg === 'checked out lab revision')?.files, 1);
  // An edit in place of a file no commit writes is repaired by the next start.
  await writeFile(join(a.tree, 'hosts', 'bld-002.yaml'), 'edited\n');
  const restarted = await new GitSource({ url: server.repoUrl(repo), dir, log }).sync();
  assert.equal(await readFile(join(restarted.tree, 'hosts', 'bld-002.yaml'), 'utf8'), 'name: bld-002\n');
});

test('a first checkout with snapshotMaxBytes hands the commit over in memory and writes the tree when asked; later syncs check out as before, a restart takes the tree over', async () => {
  const repo = await newRepo();
  await commitFiles(server, repo, 'main', { 'profiles/p.yaml': 'name: p\n', 'configs/deep/x.txt': 'ü\n', 'hosts/copy.yaml': 'name: bld-001\n' }, 'more');
  const dir = join(scratch, 'state-snapshot');
  const source = new GitSource({ url: server.repoUrl(repo), dir, log, snapshotMaxBytes: 1 << 20 });
  const first = await source.sync();
  assert.ok(first.snapshot, 'a snapshot of the first checkout');
  assert.equal(first.snapshot.commit, first.commit);
  await source.written();
  const files = await listTree(first.tree);
  assert.deepEqual([...first.snapshot.files.keys()].sort(), files);
  for (const file of files) assert.deepEqual(first.snapshot.files.get(file), await readFile(join(first.tree, file)), file);
  assert.deepEqual([...first.snapshot.dirs].sort(), ['', 'configs', 'configs/deep', 'hosts', 'profiles']);
  assert.equal((await source.sync()).snapshot, undefined, 'the same head again');
  const next = await commitFiles(server, repo, 'main', { 'site.yaml': 'name: lab2\n' }, 'change');
  const second = await source.sync();
  assert.equal(second.commit, next);
  assert.equal(second.snapshot, undefined, 'moved on file by file');
  assert.equal(await readFile(join(second.tree, 'site.yaml'), 'utf8'), 'name: lab2\n');
  source.close();
  const before = await stat(join(second.tree, 'site.yaml'));
  const restarted = new GitSource({ url: server.repoUrl(repo), dir, log, snapshotMaxBytes: 1 << 20 });
  const adopted = await restarted.sync();
  assert.equal(adopted.snapshot?.files.get('site.yaml')?.toString(), 'name: lab2\n', 'the first sync of an instance reads the object store');
  const after = await stat(join(adopted.tree, 'site.yaml'));
  assert.deepEqual([after.ino, after.mtimeMs], [before.ino, before.mtimeMs], 'the tree written and recorded is taken over, not written again');
  assert.equal((await restarted.sync()).snapshot, undefined);
  restarted.close();
});

test('a sync before written() writes the deferred tree first; close() drops it, and the next start checks the commit out', async () => {
  const repo = await newRepo();
  const dir = join(scratch, 'state-snapshot-deferred');
  const source = new GitSource({ url: server.repoUrl(repo), dir, log, snapshotMaxBytes: 1 << 20 });
  const first = await source.sync();
  assert.ok(first.snapshot);
  const next = await commitFiles(server, repo, 'main', { 'hosts/bld-003.yaml': 'name: bld-003\n' }, 'add');
  const second = await source.sync();
  assert.equal(second.commit, next);
  assert.deepEqual(await listTree(second.tree), ['hosts/bld-001.yaml', 'hosts/bld-002.yaml', 'hosts/bld-003.yaml', 'site.yaml']);
  source.close();

  const other = join(scratch, 'state-snapshot-closed');
  const closing = new GitSource({ url: server.repoUrl(repo), dir: other, log, snapshotMaxBytes: 1 << 20 });
  const held = await closing.sync();
  assert.ok(held.snapshot);
  closing.close();
  await closing.written();
  await assert.rejects(stat(join(held.tree, 'site.yaml')), { code: 'ENOENT' });
  const restarted = new GitSource({ url: server.repoUrl(repo), dir: other, log });
  const whole = await restarted.sync();
  assert.deepEqual(await listTree(whole.tree), ['hosts/bld-001.yaml', 'hosts/bld-002.yaml', 'hosts/bld-003.yaml', 'site.yaml']);
  restarted.close();
});

test('no snapshot for a commit with a symbolic link or more bytes than snapshotMaxBytes: the tree is written before sync returns', async () => {
  const seed = join(scratch, 'seed-snapshot-link');
  await mkdir(join(seed, 'hosts'), { recursive: true });
  await writeFile(join(seed, 'site.yaml'), 'name: lab\n');
  await writeFile(join(seed, 'hosts', 'a.yaml'), 'name: a\n');
  await symlink('a.yaml', join(seed, 'hosts', 'b.yaml'));
  await createBareRepo(server, 'snapshot-link', seed);
  const linked = new GitSource({ url: server.repoUrl('snapshot-link'), dir: join(scratch, 'state-snapshot-link'), log, snapshotMaxBytes: 1 << 20 });
  const a = await linked.sync();
  assert.equal(a.snapshot, undefined);
  assert.ok((await lstat(join(a.tree, 'hosts', 'b.yaml'))).isSymbolicLink());
  linked.close();

  const repo = await newRepo();
  const small = new GitSource({ url: server.repoUrl(repo), dir: join(scratch, 'state-snapshot-small'), log, snapshotMaxBytes: 8 });
  const b = await small.sync();
  assert.equal(b.snapshot, undefined);
  assert.deepEqual(await listTree(b.tree), ['hosts/bld-001.yaml', 'hosts/bld-002.yaml', 'site.yaml']);
  small.close();
});

test('a snapshot holds the directories a checkout makes (no empty one); a commit with a name that is not UTF-8 is refused', async () => {
  await createBareRepo(server, 'snapshot-odd');
  const bare = join(server.root, 'snapshot-odd.git');
  const run = (args: string[], input: Buffer | string = ''): string => execFileSync('git', args, { cwd: bare, input, env: gitEnv }).toString().trim();
  const blob = (text: string): string => run(['hash-object', '-w', '--stdin'], text);
  const site = blob('name: lab\n');
  const host = blob('name: a\n');
  const hosts = run(['mktree'], `100644 blob ${host}\ta.yaml\n`);
  const empty = run(['mktree'], '');
  const first = run(['commit-tree', run(['mktree'], `040000 tree ${empty}\tempty\n040000 tree ${hosts}\thosts\n100644 blob ${site}\tsite.yaml\n`), '-m', 'an empty tree']);
  run(['update-ref', 'refs/heads/main', first]);
  const source = new GitSource({ url: server.repoUrl('snapshot-odd'), dir: join(scratch, 'state-snapshot-odd'), log, snapshotMaxBytes: 1 << 20 });
  try {
    const a = await source.sync();
    assert.deepEqual([...(a.snapshot?.dirs ?? [])].sort(), ['', 'hosts']);
    await source.written();
    assert.deepEqual((await readdir(a.tree)).sort(), ['hosts', 'site.yaml'], 'git writes no empty directory either');
  } finally {
    source.close();
  }
  const oddHosts = run(['mktree', '-z'], Buffer.concat([Buffer.from(`100644 blob ${host}\t`), Buffer.from([0xff]), Buffer.from('.yaml\0')]));
  const second = run(['commit-tree', run(['mktree'], `040000 tree ${oddHosts}\thosts\n100644 blob ${site}\tsite.yaml\n`), '-p', first, '-m', 'a name that is not UTF-8']);
  run(['update-ref', 'refs/heads/main', second]);
  const fresh = new GitSource({ url: server.repoUrl('snapshot-odd'), dir: join(scratch, 'state-snapshot-odd-2'), log, snapshotMaxBytes: 1 << 20 });
  try {
    await assert.rejects(fresh.sync(), (err: unknown) => err instanceof RefusedTreeError && err.commit === second && /not UTF-8/.test(err.reason));
  } finally {
    fresh.close();
  }
});
