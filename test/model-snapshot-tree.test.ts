// SnapshotTree (a commit's files in memory) answers as LabTree answers for the same files on disk: reads, refusals,
// limits, listings; and a whole load or an update through either gives the same lab and the same problems.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabLoader } from '../src/model/incremental.ts';
import { LabTooLargeError, LabTree, type LabFiles } from '../src/model/lab-tree.ts';
import { DEFAULT_LAB_LIMITS } from '../src/model/lab-limits.ts';
import { SnapshotTree } from '../src/model/snapshot-tree.ts';
import type { CommitSnapshot } from '../src/source/commit-snapshot.ts';

const TEMPLATE = new URL('../lab-repo-template/', import.meta.url).pathname;

/** The regular files and directories below `dir`, as a checkout of them would give them to the source. */
function snapshotOf(dir: string): CommitSnapshot {
  const files = new Map<string, Buffer>();
  const dirs = new Set<string>(['']);
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        dirs.add(path);
        walk(path);
      } else files.set(path, readFileSync(join(dir, path)));
    }
  };
  walk('');
  return { commit: 'c'.repeat(40), files, dirs };
}

function answers(tree: LabFiles, paths: string[]): unknown[] {
  return paths.map((path) => {
    let read: unknown;
    try {
      read = tree.read(path);
    } catch (err) {
      read = err instanceof LabTooLargeError ? `too large at ${err.file}` : err;
    }
    return { path, read, list: tree.listDir(path), kind: tree.entryKind(path) };
  });
}

test('a snapshot answers every read, listing and kind as the working tree holding the same files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-snapshot-tree-'));
  try {
    mkdirSync(join(dir, 'hosts', 'sub.yaml'), { recursive: true });
    mkdirSync(join(dir, 'configs', 'deep'), { recursive: true });
    writeFileSync(join(dir, 'site.yaml'), 'name: lab\n');
    writeFileSync(join(dir, 'hosts', 'a.yaml'), 'name: a\n');
    writeFileSync(join(dir, 'hosts', 'B.yaml'), 'name: B\n');
    writeFileSync(join(dir, 'hosts', 'big.yaml'), 'x'.repeat(300));
    writeFileSync(join(dir, 'configs', 'deep', 'ü.txt'), 'grüß\n');
    writeFileSync(join(dir, 'configs', 'two.txt'), 'y'.repeat(200));
    const limits = { ...DEFAULT_LAB_LIMITS, maxFileBytes: 256, maxLabBytes: 600 };
    const paths = ['site.yaml', 'hosts', 'hosts/', 'hosts/a.yaml', 'hosts/./a.yaml', 'hosts//B.yaml', './site.yaml', '.', 'hosts/big.yaml', 'hosts/sub.yaml',
      'hosts/missing.yaml', 'site.yaml/x', 'missing/a.yaml', 'configs/deep/ü.txt', 'configs/two.txt', 'configs/two.txt', 'configs/two.txt', '../x', '/etc/passwd',
      '.git/config', 'hosts/.GIT/x', 'a\nb', ''];
    const disk = answers(new LabTree(dir, { limits }), paths);
    const memory = answers(new SnapshotTree(dir, snapshotOf(dir), { limits }), paths);
    assert.deepEqual(memory, disk);
    assert.ok(disk.some((a) => typeof (a as { read: unknown }).read === 'string'), 'the lab limit was reached');
    assert.deepEqual(new SnapshotTree(dir, snapshotOf(dir)).pathsWithControlChars(), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a snapshot names the paths with control characters as the working tree does', () => {
  const snapshot: CommitSnapshot = {
    commit: 'c'.repeat(40),
    files: new Map([['ok.yaml', Buffer.from('')], ['bad\tdir/x.yaml', Buffer.from('')], ['bad\tdir/y.yaml', Buffer.from('')], ['hosts/a\u2028.yaml', Buffer.from('')]]),
    dirs: new Set(['', 'bad\tdir', 'hosts']),
  };
  assert.deepEqual(new SnapshotTree('/nowhere', snapshot).pathsWithControlChars(), ['bad\\tdir', 'hosts/a\\u2028.yaml']);
});

test('the template lab loads from a snapshot as from its working tree, valid or not, whole and updated', () => {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-snapshot-load-'));
  try {
    cpSync(TEMPLATE, dir, { recursive: true });
    const whole = (snapshot?: CommitSnapshot) => new LabLoader().load(dir, 'r1', snapshot);
    const fromDisk = whole();
    assert.ok(fromDisk.lab, JSON.stringify(fromDisk.problems));
    assert.deepEqual(whole(snapshotOf(dir)), fromDisk);

    const host = readdirSync(join(dir, 'hosts'))[0] ?? '';
    writeFileSync(join(dir, 'hosts', host), 'name: [broken\n');
    const invalid = whole();
    assert.equal(invalid.lab, null);
    assert.deepEqual(whole(snapshotOf(dir)), invalid);

    // An update read from a snapshot: the same as from the tree.
    const viaDisk = new LabLoader();
    const viaSnapshot = new LabLoader();
    writeFileSync(join(dir, 'hosts', host), readFileSync(join(TEMPLATE, 'hosts', host)));
    viaDisk.load(dir, 'r1');
    viaSnapshot.load(dir, 'r1', snapshotOf(dir));
    writeFileSync(join(dir, 'site.yaml'), `${readFileSync(join(dir, 'site.yaml'), 'utf8')}# changed\n`);
    const changed = [{ path: 'site.yaml' }, { path: `hosts/${host}` }];
    assert.deepEqual(viaSnapshot.update(dir, changed, 'r2', snapshotOf(dir)), viaDisk.update(dir, changed, 'r2'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
