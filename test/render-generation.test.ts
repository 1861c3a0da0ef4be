import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import fsp, { mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { loadLab } from '../src/model/load.ts';
import type { Lab } from '../src/model/types.ts';
import { GENERATION_FILE, GenerationWriter } from '../src/render/generation.ts';

const token = (h: string): string => `tok-${h}`;

async function templateLab(): Promise<Lab> {
  const { lab, problems } = await loadLab('lab-repo-template');
  assert.deepEqual(problems, []);
  assert.ok(lab);
  return lab;
}

async function withState(run: (state: string) => Promise<void>): Promise<void> {
  const state = await mkdtemp(join(tmpdir(), 'forseti-generation-'));
  try {
    await run(state);
  } finally {
    mock.restoreAll();
    syncBuiltinESMExports();
    await rm(state, { recursive: true, force: true });
  }
}

/** Replaces one function of node:fs/promises for the code under test, which imports it by name. */
function replaceFsPromise<K extends 'rm' | 'writeFile'>(name: K, impl: (...args: Parameters<(typeof fsp)[K]>) => Promise<void>): void {
  mock.method(fsp, name, impl);
  syncBuiltinESMExports();
}

async function leftovers(state: string): Promise<string[]> {
  const inRoot = (await readdir(join(state, 'generations'))).filter((n) => n.startsWith('.'));
  const links = (await readdir(state)).filter((n) => n.startsWith('.current-'));
  return [...inRoot, ...links].sort();
}

async function plantLeftovers(state: string, tag: string): Promise<void> {
  await mkdir(join(state, 'generations', `.tmp-${tag}`), { recursive: true });
  await writeFile(join(state, 'generations', `.tmp-${tag}`, 'hosts-00.json'), '{"half":');
  await symlink(join('generations', tag), join(state, `.current-${tag}`));
}

test('generation writer: leftovers of failed writes are removed when it starts and when it prunes', async () => {
  const lab = await templateLab();
  await withState(async (state) => {
    await plantLeftovers(state, 'dead-1');
    assert.deepEqual(await leftovers(state), ['.current-dead-1', '.tmp-dead-1']);
    const writer = new GenerationWriter(state, token);
    await writer.write(lab, '1'.repeat(40));
    assert.deepEqual(await leftovers(state), [], 'removed when the writer starts');
    await plantLeftovers(state, 'dead-2');
    const second = await writer.write(lab, '2'.repeat(40));
    assert.deepEqual(await leftovers(state), [], 'removed when it prunes');
    assert.equal(join(state, await readlink(join(state, 'current'))), second.dir);
  });
});

test('generation writer: a write that fails (a full disk) leaves no partial generation and keeps current', async () => {
  const lab = await templateLab();
  await withState(async (state) => {
    const writer = new GenerationWriter(state, token);
    const first = await writer.write(lab, '1'.repeat(40));
    const realWriteFile = fsp.writeFile;
    let full = true;
    replaceFsPromise('writeFile', async (...args) => {
      if (full && String(args[0]).endsWith(GENERATION_FILE)) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      return realWriteFile(...args);
    });
    for (const n of ['2', '3', '4']) await assert.rejects(writer.write(lab, n.repeat(40)), { code: 'ENOSPC' });
    assert.deepEqual(await leftovers(state), []);
    assert.deepEqual(await readdir(join(state, 'generations')), [first.id]);
    assert.equal(join(state, await readlink(join(state, 'current'))), first.dir);
    full = false;
    const next = await writer.write(lab, '5'.repeat(40));
    assert.equal(join(state, await readlink(join(state, 'current'))), next.dir);
  });
});

test('generation writer: a failure to prune old generations is reported, and the write still succeeds', async () => {
  const lab = await templateLab();
  await withState(async (state) => {
    const reported: unknown[] = [];
    const writer = new GenerationWriter(state, token, { onPruneError: (err) => reported.push(err) });
    for (let i = 1; i <= 5; i++) await writer.write(lab, String(i).repeat(40));
    const generations = join(state, 'generations');
    const realRm = fsp.rm;
    replaceFsPromise('rm', async (...args) => {
      const path = String(args[0]);
      if (dirname(path) === generations && !basename(path).startsWith('.')) throw Object.assign(new Error(`EBUSY: resource busy or locked, rm '${path}'`), { code: 'EBUSY' });
      return realRm(...args);
    });
    const sixth = await writer.write(lab, '6'.repeat(40));
    assert.equal(join(state, await readlink(join(state, 'current'))), sixth.dir);
    assert.equal(reported.length, 1);
    assert.match(String(reported[0]), /EBUSY/);
    mock.restoreAll();
    syncBuiltinESMExports();
    await writer.write(lab, '7'.repeat(40));
    assert.equal((await readdir(generations)).length, 5, 'the next write prunes what was left');
  });
});
