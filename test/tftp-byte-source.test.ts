// fileSource carries exactly the size the client was told (tsize), as the native engine does; BlockReader
// reads ahead only once the client is there.
import assert from 'node:assert/strict';
import { mkdtemp, open, rm, truncate, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BlockReader } from '../src/serve/tftp/block-reader.ts';
import { fileSource, type ByteSource } from '../src/serve/tftp/byte-source.ts';
import { TftpSourceError } from '../src/serve/tftp/errors.ts';

async function drain(read: () => Promise<Buffer | undefined>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let chunk = await read(); chunk; chunk = await read()) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

test('fileSource: a file that grows after it was opened is cut at its size; one that shrinks is a source error', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'fsrv-bytesrc-'));
  try {
    const file = path.join(dir, 'f.bin');
    const data = Buffer.alloc(300_000, 7);
    await writeFile(file, data);

    const grown = fileSource(await open(file), data.length);
    await appendFile(file, Buffer.alloc(1000, 9));
    assert.deepEqual(await drain(() => grown.read()), data);
    await grown.close();

    await writeFile(file, data);
    const shrunk = fileSource(await open(file), data.length);
    await truncate(file, 1000);
    await assert.rejects(drain(() => shrunk.read()), (err: unknown) => err instanceof TftpSourceError && /shorter/.test(err.message));
    await shrunk.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('BlockReader reads the first window only until widen(), then whole chunks, never a block at a time', async () => {
  const asked: Array<number | undefined> = [];
  let left = 1_000_000;
  const source: ByteSource = {
    size: left,
    async read(max) {
      asked.push(max);
      if (left === 0) return undefined;
      const n = Math.min(left, max ?? 128 * 1024);
      left -= n;
      return Buffer.alloc(n);
    },
    close: async () => undefined,
  };
  const reader = new BlockReader(source, 1428, 1428 * 4);
  const first = await Promise.all(Array.from({ length: 4 }, () => reader.next()));
  assert.deepEqual(first.map((p) => p.length), [1432, 1432, 1432, 1432]);
  // Taking the first window tops it up with the next one: a client that never acknowledges costs two windows.
  const before = asked.length;
  assert.ok(asked.every((max) => max !== undefined) && asked.reduce<number>((n, max) => n + (max ?? 0), 0) <= 2 * 1428 * 4, JSON.stringify(asked));
  reader.widen();
  let packets = 4;
  for (let p = await reader.next(); p.length === 1432; p = await reader.next()) packets++;
  assert.equal(packets, Math.floor(1_000_000 / 1428), "every full block, then the short last one");
  assert.ok(asked.slice(before).every((max) => max === undefined), `reads after widen() ask for whole chunks: ${JSON.stringify(asked.slice(before, before + 5))}`);
  assert.ok(asked.length < 15, `${asked.length} reads for 1 MB`);
  await reader.close();
});
