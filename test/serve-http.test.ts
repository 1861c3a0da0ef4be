// The static file sender: ranges, preconditions, and what a misbehaving client cannot do to the
// server (leak a file descriptor by hanging up, or make it buffer a whole file by reading slowly).
import assert from 'node:assert/strict';
import { mkdir, readdir, truncate, utimes, writeFile } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listen } from '../src/serve/boot-http.ts';
import { parseRange } from '../src/serve/http/range.ts';
import { CHUNK_BYTES } from '../src/serve/http/send-file.ts';
import { createStaticServer, type HttpExchange } from '../src/serve/http/static-server.ts';
import { makeTempDir } from './fixtures/tftp/harness.ts';

const T = { timeout: 60_000 }; // safety net only
const BIG = 200 * 1024 * 1024;

describe('parseRange', () => {
  const cases: Array<[string | undefined, number, ReturnType<typeof parseRange>]> = [
    [undefined, 10, null],
    ['bytes=0-4', 10, { start: 0, end: 4 }],
    ['bytes=5-', 10, { start: 5, end: 9 }],
    ['bytes=-3', 10, { start: 7, end: 9 }],
    ['bytes=-30', 10, { start: 0, end: 9 }],
    ['bytes=8-100', 10, { start: 8, end: 9 }],
    ['bytes=10-', 10, 'unsatisfiable'],
    ['bytes=-0', 10, 'unsatisfiable'],
    ['bytes=0-', 0, 'unsatisfiable'],
    ['bytes=-5', 0, 'unsatisfiable'],
    ['bytes=5-2', 10, null],
    ['bytes=0-1,4-5', 10, null],
    ['items=0-1', 10, null],
    ['bytes=-', 10, null],
    ['bytes=x-1', 10, null],
  ];
  for (const [header, size, want] of cases) {
    it(`${String(header)} of ${size} bytes`, () => assert.deepEqual(parseRange(header, size), want));
  }
});

describe('static file server', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let server: Server;
  let port: number;
  const exchanges: HttpExchange[] = [];
  const waiters: Array<() => void> = [];
  let lastResponse: ServerResponse | undefined;
  const content = Buffer.from('0123456789abcdefghij');

  before(async () => {
    ({ dir, cleanup } = await makeTempDir('fhttp-'));
    await mkdir(path.join(dir, 'd'));
    await writeFile(path.join(dir, 'small'), content);
    await writeFile(path.join(dir, 'empty'), '');
    await utimes(path.join(dir, 'small'), new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'));
    await writeFile(path.join(dir, 'big'), '');
    await truncate(path.join(dir, 'big'), BIG); // sparse: 200 MB of zeros that take no disk
    server = createStaticServer({ root: dir, onExchange: (e) => { exchanges.push(e); waiters.splice(0).forEach((w) => w()); } });
    server.on('request', (_req: IncomingMessage, res: ServerResponse) => { lastResponse = res; });
    port = (await listen(server, '127.0.0.1', 0)).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await cleanup();
  });

  /** Resolves once `count` exchanges in total have been reported. */
  async function exchangesReach(count: number): Promise<void> {
    while (exchanges.length < count) await new Promise<void>((r) => waiters.push(r));
  }

  const url = (p: string): string => `http://127.0.0.1:${port}${p}`;

  it('sends Content-Length, ETag and Last-Modified; HEAD has the headers and no body', async () => {
    const get = await fetch(url('/small'));
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('content-length'), '20');
    assert.equal(get.headers.get('last-modified'), 'Fri, 02 Jan 2026 03:04:05 GMT');
    assert.match(get.headers.get('etag') ?? '', /^"[0-9a-f]+-14-[0-9a-f]+"$/);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), content);
    const head = await fetch(url('/small'), { method: 'HEAD' });
    assert.equal(head.headers.get('content-length'), '20');
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    const ranged = await fetch(url('/small'), { method: 'HEAD', headers: { range: 'bytes=2-5' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get('content-length'), '4');
  });

  it('serves single, open and suffix ranges; 416 names the size; a range list gets the whole file', async () => {
    const get = async (range: string): Promise<[number, string, string | null]> => {
      const r = await fetch(url('/small'), { headers: { range } });
      return [r.status, await r.text(), r.headers.get('content-range')];
    };
    assert.deepEqual(await get('bytes=2-5'), [206, '2345', 'bytes 2-5/20']);
    assert.deepEqual(await get('bytes=15-'), [206, 'fghij', 'bytes 15-19/20']);
    assert.deepEqual(await get('bytes=-3'), [206, 'hij', 'bytes 17-19/20']);
    assert.deepEqual(await get('bytes=20-'), [416, '', 'bytes */20']);
    assert.deepEqual(await get('bytes=0-1,5-6'), [200, content.toString(), null]);
    const empty = await fetch(url('/empty'));
    assert.equal(empty.status, 200);
    assert.equal(empty.headers.get('content-length'), '0');
    assert.equal((await fetch(url('/empty'), { headers: { range: 'bytes=0-' } })).status, 416);
  });

  it('If-None-Match and If-Modified-Since give 304; If-Range honours the Range only for the current file', async () => {
    const etag = (await fetch(url('/small'), { method: 'HEAD' })).headers.get('etag') ?? '';
    const status = async (headers: Record<string, string>): Promise<number> => {
      const r = await fetch(url('/small'), { headers });
      await r.arrayBuffer();
      return r.status;
    };
    assert.equal(await status({ 'if-none-match': etag }), 304);
    assert.equal(await status({ 'if-none-match': `"other", W/${etag}` }), 304);
    assert.equal(await status({ 'if-none-match': '*' }), 304);
    assert.equal(await status({ 'if-none-match': '"other"' }), 200);
    assert.equal(await status({ 'if-modified-since': 'Fri, 02 Jan 2026 03:04:05 GMT' }), 304);
    assert.equal(await status({ 'if-modified-since': 'Thu, 01 Jan 2026 00:00:00 GMT' }), 200);
    assert.equal(await status({ range: 'bytes=0-1', 'if-range': etag }), 206);
    assert.equal(await status({ range: 'bytes=0-1', 'if-range': '"stale"' }), 200);
    assert.equal(await status({ range: 'bytes=0-1', 'if-range': `W/${etag}` }), 200);
    assert.equal(await status({ range: 'bytes=0-1', 'if-range': 'Fri, 02 Jan 2026 03:04:05 GMT' }), 206);
    assert.equal(await status({ range: 'bytes=0-1', 'if-range': 'Fri, 02 Jan 2026 03:04:06 GMT' }), 200);
  });

  it('clients that hang up mid-download, or before the answer, leave no file descriptor open', T, async () => {
    const fds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
    await fetch(url('/small')).then((r) => r.arrayBuffer()); // warm up: lazily opened fds of the runtime
    const before = await fds();
    for (let i = 0; i < 20; i++) {
      const seen = exchanges.length;
      const socket = await rawGet('/big');
      if (i % 2 === 0) await readAtLeast(socket, 256 * 1024);
      socket.destroy();
      await exchangesReach(seen + 1);
      const e = exchanges.at(-1);
      assert.equal(e?.complete, false, 'the exchange is reported as cut short');
      assert.ok((e?.bytes ?? BIG) < BIG);
    }
    assert.equal(await fds(), before);
  });

  it('a client that reads slowly makes the server wait, not buffer the file', T, async () => {
    const seen = exchanges.length;
    const socket = await rawGet('/big');
    await readAtLeast(socket, 64 * 1024);
    socket.pause();
    const res = lastResponse;
    assert.ok(res);
    // While the client reads nothing, the server fills the kernel's socket buffers and stops.
    let maxQueued = 0;
    let previous = -1;
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      maxQueued = Math.max(maxQueued, res.writableLength);
      const written = res.socket?.bytesWritten ?? 0;
      if (written === previous) break;
      previous = written;
    }
    assert.ok(previous < 64 * 1024 * 1024, `server pushed ${previous} bytes to a client that is not reading`);
    // Then a slow reader: a little at a time, the queue in the process never grows past a chunk or two.
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      maxQueued = Math.max(maxQueued, res.writableLength);
      socket.pause();
      setTimeout(() => socket.resume(), 2);
    });
    socket.resume();
    while (received < 16 * 1024 * 1024) await new Promise((r) => setTimeout(r, 20));
    socket.destroy();
    await exchangesReach(seen + 1);
    assert.ok(maxQueued <= 2 * CHUNK_BYTES + 64 * 1024, `response queued ${maxQueued} bytes in the process`);
  });

  it('refuses directories and paths outside the root', async () => {
    // Sent raw: fetch would resolve the dot segments before they reach the server.
    for (const [p, want] of [['/d', 403], ['/d/', 403], ['/../etc/passwd', 403], ['/%2e%2e/etc/passwd', 403], ['/d/%2E%2E/%2E%2E/etc/passwd', 403], ['/a%00b', 403], ['/%zz', 400], ['/nope', 404]] as const) {
      const socket = await rawGet(p);
      const head = await new Promise<string>((resolve) => socket.once('data', (c: Buffer) => resolve(c.toString('latin1'))));
      socket.destroy();
      assert.match(head, new RegExp(`^HTTP/1\\.1 ${want} `), p);
    }
  });

  function rawGet(p: string): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`);
        resolve(socket);
      });
      socket.once('error', reject);
    });
  }
});

function readAtLeast(socket: Socket, bytes: number): Promise<void> {
  return new Promise((resolve) => {
    let got = 0;
    const on = (chunk: Buffer): void => {
      got += chunk.length;
      if (got >= bytes) {
        socket.off('data', on);
        resolve();
      }
    };
    socket.on('data', on);
  });
}
