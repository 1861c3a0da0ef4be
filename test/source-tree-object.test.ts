// forseti's own tree parser (src/source/tree-object.ts) and the long-running object reader through the git command
// line (src/source/git-object-reader.ts): entries as isomorphic-git reads them, the names git refuses refused in every
// spelling, malformed trees refused, and the reader's answers, refusals and restarts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import isogit from 'isomorphic-git';
import { GitCli } from '../src/source/git-cli.ts';
import { MalformedTreeError, parseTree, RefusedTreeNameError } from '../src/source/tree-object.ts';
import { git } from './fixtures/git/git-cli.ts';

let work = '';
let gitdir = '';
let commit = '';
before(async () => {
  work = mkdtempSync(join(tmpdir(), 'forseti-tree-object-'));
  const dir = join(work, 'repo');
  mkdirSync(join(dir, 'hosts'), { recursive: true });
  writeFileSync(join(dir, 'site.yaml'), 'name: lab\n');
  writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
  for (const name of ['a.yaml', 'gpu-1.yaml', 'Gamma.yaml', '.gitignore', 'git~10', 'grüße.yaml']) writeFileSync(join(dir, 'hosts', name), `${name}\n`);
  symlinkSync('site.yaml', join(dir, 'link'));
  await git(['init', '-q', '-b', 'main', dir]);
  await git(['add', '-A'], dir);
  await git(['update-index', '--add', '--cacheinfo', `160000,${'a'.repeat(40)},vendor`], dir);
  await git(['commit', '-q', '-m', 'tree'], dir);
  commit = (await git(['rev-parse', 'HEAD'], dir)).trim();
  gitdir = join(dir, '.git');
});
after(() => rmSync(work, { recursive: true, force: true }));

/** A tree object's content from entries given as [mode, name, oid]. */
function treeOf(entries: Array<[string, string, string]>): Buffer {
  return Buffer.concat(entries.map(([mode, name, oid]) => Buffer.concat([Buffer.from(`${mode} ${name}\0`, 'utf8'), Buffer.from(oid, 'hex')])));
}
const OID = '0123456789abcdef0123456789abcdef01234567';

test('parseTree reads what isomorphic-git reads: modes, names (UTF-8 too), ids, types, in the object\'s order', async () => {
  const reader = new GitCli().objectReader(gitdir);
  try {
    const root = (await isogit.readCommit({ fs, gitdir, oid: commit })).commit.tree;
    const hosts = (await isogit.readTree({ fs, gitdir, oid: root })).tree.find((e) => e.path === 'hosts')?.oid ?? '';
    const objects = await reader.read([root, hosts], 'tree', 1 << 20);
    for (const oid of [root, hosts]) {
      assert.deepEqual(parseTree(oid, objects.get(oid) ?? Buffer.alloc(0)), (await isogit.readTree({ fs, gitdir, oid })).tree);
    }
    assert.deepEqual(parseTree(root, objects.get(root) ?? Buffer.alloc(0)).map((e) => `${e.mode} ${e.type} ${e.path}`), [
      '040000 tree hosts',
      '120000 blob link',
      '100755 blob run.sh',
      '100644 blob site.yaml',
      '160000 commit vendor',
    ]);
  } finally {
    reader.close();
  }
});

test('parseTree refuses every spelling of a name git refuses, and takes the names that only look alike', () => {
  const refused = ['.', '..', '.git', '.GIT', '.Git.', '.git ', '.git. . ', 'git~1', 'GIT~9', '.git~1', '.git::$INDEX_ALLOCATION', '.git:stream', '\u200c.git', '.g\u200dit', '\ufeff..', 'a/b', 'a\\b', ''];
  for (const name of refused) {
    assert.throws(() => parseTree(OID, treeOf([['100644', 'ok.yaml', OID], ['100644', name, OID]])), (err: unknown) => err instanceof RefusedTreeNameError && err.entryName === name && err.treeOid === OID, JSON.stringify(name));
  }
  const taken = ['.gitignore', '.gitattributes', 'git~10', 'git~0', 'git', '.gi', 'gpu.yaml', 'GPU.yaml', '...', '.hidden', 'x.git', 'g', '.'.repeat(3) + 'git'];
  const entries = parseTree(OID, treeOf(taken.map((name) => ['100644', name, OID])));
  assert.deepEqual(entries.map((e) => e.path), taken);
});

test('parseTree refuses a malformed tree: an unknown mode, a short id, an entry without its NUL', () => {
  const malformed = [
    treeOf([['100664', 'old-mode.yaml', OID]]),
    treeOf([['644', 'short.yaml', OID]]),
    Buffer.concat([treeOf([['100644', 'a.yaml', OID]]), Buffer.from('100644 b.yaml\0'), Buffer.alloc(10)]),
    Buffer.from('100644 no-nul.yaml'),
    Buffer.from('no-space'),
  ];
  for (const content of malformed) assert.throws(() => parseTree(OID, content), MalformedTreeError);
  assert.deepEqual(parseTree(OID, Buffer.alloc(0)), [], 'an empty tree has no entries');
  assert.equal(parseTree(OID, treeOf([['40000', 'dir', OID]]))[0]?.mode, '040000', 'the mode git writes as 40000 reads as isomorphic-git spells it');
});

test('the object reader answers many reads from one git process, refuses what it was not asked for, and starts again after a failure', async () => {
  const reader = new GitCli().objectReader(gitdir);
  try {
    const root = (await isogit.readCommit({ fs, gitdir, oid: commit })).commit.tree;
    const blob = (await isogit.readTree({ fs, gitdir, oid: root })).tree.find((e) => e.path === 'site.yaml')?.oid ?? '';
    assert.equal((await reader.read([blob], 'blob', 1024)).get(blob)?.toString('utf8'), 'name: lab\n');
    const many = await Promise.all([reader.read([root, root], 'tree', 1 << 20), reader.read([blob], 'blob', 1024)]);
    assert.equal(many[0].get(root)?.length, ((await isogit.readObject({ fs, gitdir, oid: root, format: 'content' })).object as Uint8Array).length);
    await assert.rejects(reader.read([blob], 'tree', 1024), /expected a tree/);
    await assert.rejects(reader.read(['f'.repeat(40)], 'blob', 1024), /missing/);
    await assert.rejects(reader.read(['HEAD'], 'blob', 1024), /not an object id/);
    await assert.rejects(reader.read([`${blob}\n${root}`], 'blob', 1024), /not an object id/);
    await assert.rejects(reader.read([root], 'tree', 10), /more than 10 bytes/);
    assert.equal((await reader.read([blob], 'blob', 1024)).get(blob)?.toString('utf8'), 'name: lab\n', 'a new process after each failure');
    assert.deepEqual([...(await reader.read([], 'blob', 1)).keys()], []);
    reader.close();
    await assert.rejects(reader.read([blob], 'blob', 1024), /closed/);
    assert.equal(reader.open, false);
  } finally {
    reader.close();
  }
});

test('the object reader\'s git process ends a few seconds after the last read, and the next read starts another', async () => {
  const catFiles = (): string[] => {
    const children = fs.readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return children.filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('cat-file');
      } catch {
        return false;
      }
    });
  };
  const reader = new GitCli().objectReader(gitdir);
  try {
    const root = (await isogit.readCommit({ fs, gitdir, oid: commit })).commit.tree;
    await reader.read([root], 'tree', 1 << 20);
    assert.equal(catFiles().length, 1, 'kept between reads');
    for (const deadline = Date.now() + 10_000; catFiles().length > 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 200));
    assert.equal(catFiles().length, 0, 'gone once idle');
    assert.ok((await reader.read([root], 'tree', 1 << 20)).has(root));
  } finally {
    reader.close();
  }
});

test('a reader warmed ahead of a fetch finds the objects that arrive after its process started, loose and packed', async () => {
  const reader = new GitCli().objectReader(gitdir);
  const dir = join(work, 'later');
  try {
    reader.warm(); // as GitSource.sync does before its fetch
    reader.warm(); // a second call keeps the one process
    await git(['clone', '-q', join(gitdir, '..'), dir]);
    writeFileSync(join(dir, 'loose.yaml'), 'loose\n');
    await git(['add', '-A'], dir);
    await git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'loose'], dir);
    await git(['push', '-q', gitdir, 'HEAD:refs/heads/later'], dir);
    const loose = (await git(['rev-parse', 'HEAD:loose.yaml'], dir)).trim();
    assert.equal((await reader.read([loose], 'blob', 1024)).get(loose)?.toString('utf8'), 'loose\n');
    writeFileSync(join(dir, 'packed.yaml'), 'packed\n');
    await git(['add', '-A'], dir);
    await git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'packed'], dir);
    await git(['push', '-q', '--receive-pack=git -c receive.unpackLimit=1 receive-pack', gitdir, 'HEAD:refs/heads/later'], dir);
    assert.ok(fs.readdirSync(join(gitdir, 'objects', 'pack')).some((f) => f.endsWith('.pack')), 'the push kept a pack');
    const packed = (await git(['rev-parse', 'HEAD:packed.yaml'], dir)).trim();
    assert.equal((await reader.read([packed], 'blob', 1024)).get(packed)?.toString('utf8'), 'packed\n', 'a pack written after the process started');
  } finally {
    reader.close();
  }
});

test('a reader with a process per read answers reads in turn, each from its own buffered git process, and fails past its bound', async () => {
  const reader = new GitCli().objectReader(gitdir, { processPerRead: true });
  try {
    const root = (await isogit.readCommit({ fs, gitdir, oid: commit })).commit.tree;
    const blob = (await isogit.readTree({ fs, gitdir, oid: root })).tree.find((e) => e.path === 'site.yaml')?.oid ?? '';
    const [a, b, c] = await Promise.all([reader.read([blob, blob], 'blob', 1024), reader.read([root], 'tree', 1 << 20), reader.read([blob], 'blob', 1024)]);
    assert.equal(a.get(blob)?.toString('utf8'), 'name: lab\n');
    assert.ok(b.has(root));
    assert.equal(c.get(blob)?.toString('utf8'), 'name: lab\n');
    await assert.rejects(reader.read([root], 'tree', 10), /more than 10 bytes/);
    await assert.rejects(reader.read(['f'.repeat(40)], 'blob', 1024), /missing/);
    assert.equal((await reader.read([blob], 'blob', 1024)).get(blob)?.toString('utf8'), 'name: lab\n', 'the next read after a failure');
    const pending = reader.read([root], 'tree', 1 << 20);
    reader.close();
    await assert.rejects(pending, /closed/);
  } finally {
    reader.close();
  }
});
