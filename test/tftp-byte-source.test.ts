// fileSource carries exactly the size the client was told (tsize), as the native pump does.
import assert from 'node:assert/strict';
import { mkdtemp, open, rm, truncate, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileSource } from '../src/serve/tftp/byte-source.ts';
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
