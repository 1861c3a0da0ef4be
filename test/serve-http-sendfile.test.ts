// Response bodies by sendfile(2) (src/serve/http/native-sendfile.ts): the bytes, ranges, HEAD, keep-alive
// and pipelined requests on one connection, a client that hangs up (no descriptor left open), a file
// that shrinks under a response (the connection is cut, never a short body taken for the whole), and
// the read-and-write path where sendfile cannot go (TLS, or when it is turned off).

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { fstatSync, openSync } from 'node:fs';
import { readdir, truncate, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sendfileUnavailable } from '../src/serve/http/native-sendfile.ts';
import { sendOpenFile, type SendOptions, type SendOutcome } from '../src/serve/http/send-file.ts';
import { makeTempDir } from './fixtures/tftp/harness.ts';
import { selfSignedCert } from './fixtures/redfish/certs.ts';

const T = { timeout: 60_000 }; // safety net only
const MIB = 1024 * 1024;

let dir: string;
let cleanup: () => Promise<void>;
const data = randomBytes(5 * MIB + 123);

before(async () => {
  ({ dir, cleanup } = await makeTempDir('fhttp-sendfile-'));
  await writeFile(path.join(dir, 'file.bin'), data);
  await writeFile(path.join(dir, 'big.bin'), '');
  await truncate(path.join(dir, 'big.bin'), 200 * MIB); // sparse
});
after(() => cleanup());

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

interface Served {
  server: Server;
  port: number;
  outcomes: SendOutcome[];
  /** Resolves once `n` responses in all have been sent or cut. */
  reach(n: number): Promise<void>;
  close(): Promise<void>;
}

/** A server that answers every GET or HEAD with `/name` from `dir` through sendOpenFile, and records each outcome. */
async function serve(options: SendOptions = {}, tls = false): Promise<Served> {
  const outcomes: SendOutcome[] = [];
  const waiters: Array<() => void> = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      const fd = openSync(path.join(dir, (req.url ?? '/').slice(1)), 'r');
      const outcome = await sendOpenFile(req, res, { fd, info: fstatSync(fd) }, 'application/octet-stream', options);
      outcomes.push(outcome);
      waiters.splice(0).forEach((w) => w());
    })();
  };
  const server = tls ? createHttpsServer({ ...selfSignedCert('IP:127.0.0.1') }, handler) : createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    server,
    port,
    outcomes,
    async reach(n) {
      while (outcomes.length < n) await new Promise<void>((r) => waiters.push(r));
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** A raw HTTP/1.1 exchange: sends `requests` as written, returns everything received until the server closes or `until` holds. */
function raw(port: number, requests: string, until: (received: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.write(requests));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (until(Buffer.concat(chunks))) {
        socket.destroy();
        resolve(Buffer.concat(chunks));
      }
    });
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
}

/** Splits a byte stream into responses, by their Content-Length; `bodies[i]` false for a response to HEAD. */
function responses(stream: Buffer, bodies: boolean[]): Array<{ head: string; body: Buffer }> {
  const out: Array<{ head: string; body: Buffer }> = [];
  let at = 0;
  for (const hasBody of bodies) {
    const end = stream.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const head = stream.toString('latin1', at, end);
    const length = hasBody ? Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0) : 0;
    out.push({ head, body: stream.subarray(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
  return out;
}

describe('HTTP bodies by sendfile', () => {
  it('the addon was built by npm ci and loads', () => {
    assert.equal(sendfileUnavailable(), undefined, `sendfile is unavailable: ${sendfileUnavailable()}`);
  });

  it('sends the file byte for byte, and ranges of it, by sendfile', T, async () => {
    const s = await serve();
    try {
      const whole = await fetch(`http://127.0.0.1:${s.port}/file.bin`);
      assert.equal(whole.status, 200);
      assert.equal(sha256(Buffer.from(await whole.arrayBuffer())), sha256(data));
      for (const [range, start, end] of [['bytes=100-200', 100, 200], ['bytes=-1000', data.length - 1000, data.length - 1], ['bytes=3000000-', 3_000_000, data.length - 1]] as const) {
        const r = await fetch(`http://127.0.0.1:${s.port}/file.bin`, { headers: { range } });
        assert.equal(r.status, 206, range);
        assert.equal(r.headers.get('content-range'), `bytes ${start}-${end}/${data.length}`);
        assert.deepEqual(Buffer.from(await r.arrayBuffer()), data.subarray(start, end + 1), range);
      }
      await s.reach(4);
      assert.deepEqual(s.outcomes.map((o) => [o.sendfile, o.complete]), [[true, true], [true, true], [true, true], [true, true]]);
      assert.deepEqual(s.outcomes.map((o) => o.bytes), [data.length, 101, 1000, data.length - 3_000_000]);
    } finally {
      await s.close();
    }
  });

  it('keeps a connection alive across responses, and answers pipelined requests in order', T, async () => {
    const s = await serve();
    try {
      const get = (range: string): string => `GET /file.bin HTTP/1.1\r\nHost: x\r\nRange: ${range}\r\n\r\n`;
      const head = 'HEAD /file.bin HTTP/1.1\r\nHost: x\r\n\r\n';
      // Four requests written at once: a range, HEAD (headers only), the whole file, and a range again.
      const bodies = [true, false, true, true];
      const stream = await raw(s.port, get('bytes=0-9') + head + 'GET /file.bin HTTP/1.1\r\nHost: x\r\n\r\n' + get('bytes=10-19'), (b) => {
        const parts = responses(b, bodies);
        return parts.length === 4 && parts[3]?.body.length === 10;
      });
      const parts = responses(stream, bodies);
      assert.deepEqual(parts.map((p) => p.head.split('\r\n')[0]), ['HTTP/1.1 206 Partial Content', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 206 Partial Content']);
      assert.deepEqual(parts[0]?.body, data.subarray(0, 10));
      assert.equal(sha256(parts[2]?.body ?? Buffer.alloc(0)), sha256(data));
      assert.deepEqual(parts[3]?.body, data.subarray(10, 20));
      await s.reach(4);
      assert.ok(s.outcomes.every((o) => o.complete));
    } finally {
      await s.close();
    }
  });

  it('clients that hang up mid-download leave no descriptor open, theirs or the duplicate sendfile writes to', T, async () => {
    const s = await serve();
    try {
      const fds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;
      // Warm-up on a connection the server closes, so no kept-alive socket is counted in `before` and gone after.
      await raw(s.port, 'GET /file.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', () => false);
      await s.reach(1);
      const before = await fds();
      for (let i = 0; i < 20; i++) {
        await raw(s.port, 'GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n', (b) => b.length >= (i % 2 ? 1 : 4 * MIB));
        await s.reach(i + 2);
        const outcome = s.outcomes.at(-1);
        assert.deepEqual([outcome?.sendfile, outcome?.complete], [true, false]);
        assert.ok((outcome?.bytes ?? Infinity) < 200 * MIB);
      }
      assert.equal(await fds(), before);
    } finally {
      await s.close();
    }
  });

  it('a file that shrinks under its response cuts the connection: the client never takes a short body for the whole', T, async () => {
    const file = path.join(dir, 'shrinks.bin');
    await writeFile(file, '');
    await truncate(file, 64 * MIB);
    const s = await serve();
    try {
      const socket = await new Promise<Socket>((resolve) => {
        const c = connect(s.port, '127.0.0.1', () => {
          c.write('GET /shrinks.bin HTTP/1.1\r\nHost: x\r\n\r\n');
          resolve(c);
        });
      });
      let received = 0;
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      await new Promise<void>((resolve) => socket.once('data', (c: Buffer) => {
        received += c.length;
        resolve();
      }));
      socket.pause(); // the server fills the socket's buffers, then waits
      await truncate(file, MIB);
      socket.on('data', (c: Buffer) => (received += c.length));
      socket.resume();
      await closed;
      await s.reach(1);
      assert.deepEqual([s.outcomes[0]?.sendfile, s.outcomes[0]?.complete], [true, false]);
      assert.ok(received < 64 * MIB, `received ${received} bytes`);
    } finally {
      await s.close();
    }
  });

  it('takes the read-and-write path over TLS, and when sendfile is turned off', T, async () => {
    for (const [options, tls] of [[{}, true], [{ sendfile: false }, false]] as const) {
      const s = await serve(options, tls);
      try {
        const body = await new Promise<Buffer>((resolve, reject) => {
          const url = `${tls ? 'https' : 'http'}://127.0.0.1:${s.port}/file.bin`;
          // fetch cannot be told to trust one self-signed certificate: a raw TLS-capable request instead.
          import(tls ? 'node:https' : 'node:http').then(({ get }) => {
            get(url, { rejectUnauthorized: false }, (res: IncomingMessage) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => resolve(Buffer.concat(chunks)));
            }).on('error', reject);
          }, reject);
        });
        assert.equal(sha256(body), sha256(data));
        await s.reach(1);
        assert.deepEqual([s.outcomes[0]?.sendfile, s.outcomes[0]?.complete], [false, true]);
      } finally {
        await s.close();
      }
    }
  });
});
