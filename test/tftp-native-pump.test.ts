// The native data pump (src/serve/tftp/native/pump.c): that `npm ci` built it and it loads, the
// edges of its data phase (a final empty block, an empty file, block numbers wrapping inside a
// window), an abort while its thread waits for the client, and how requests that arrive from the
// same client port while a transfer runs are routed (for both pumps: that logic is the server's).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TftpErrorCode } from '../src/serve/tftp/errors.ts';
import type { TftpLogger } from '../src/serve/tftp/logger.ts';
import { nativeEngineUnavailable } from '../src/serve/tftp/native-engine.ts';
import { Opcode, encodeAck, encodeError, encodeRequest } from '../src/serve/tftp/packet.ts';
import {
  RawClient, download, expectData, expectError, fdTargets, makeTempDir, sha256, startServer, udpPortOpen, waitForEvent, waitForEvents, type Received,
} from './fixtures/tftp/harness.ts';
import { REPO_ROOT } from './fixtures/tftp/serve-process.ts';

const T = { timeout: 60_000 }; // safety net only
/** Long enough that no test here ever sees a retransmission: whatever ends a transfer is what the test did. */
const NO_RETRANSMIT_MS = 600_000;

let root: string;
let cleanup: () => Promise<void>;
const files = new Map<string, Buffer>();

before(async () => {
  ({ dir: root, cleanup } = await makeTempDir('htftp-native-'));
  const put = async (name: string, data: Buffer): Promise<void> => {
    files.set(name, data);
    await writeFile(path.join(root, name), data);
  };
  await put('exact-512.bin', randomBytes(512 * 6));
  await put('exact-1024.bin', randomBytes(1024 * 64));
  await put('empty.bin', Buffer.alloc(0));
  await put('small.bin', randomBytes(1300)); // 3 blocks at 512
  await put('medium.bin', randomBytes(200_000));
  // 65,601 blocks at blksize 8: the block numbers wrap (65,536 goes out as 0) inside a window of 7.
  await put('rollover.bin', randomBytes(8 * 65_600 + 3));
});
after(() => cleanup());

function content(name: string): Buffer {
  const data = files.get(name);
  assert.ok(data, name);
  return data;
}

describe('native TFTP pump: build', () => {
  it('was built by npm ci and loads', () => {
    const unavailable = nativeEngineUnavailable();
    assert.equal(unavailable, undefined, `the native TFTP pump is unavailable: ${unavailable}`);
  });
});

describe('forseti serve tftp --pump', () => {
  it('refuses a pump it does not know, naming the choices', () => {
    const r = spawnSync(process.execPath, ['bin/forseti.js', 'serve', 'tftp', '--root', root, '--listen', '127.0.0.1:0', '--pump', 'fast'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--pump must be auto, native or js, not fast/);
  });
});

describe('native TFTP pump: data phase edges', () => {
  it('serves a file of exactly N × blksize (ends with an empty block), lock-step and windowed', T, async () => {
    const srv = await startServer({ pump: 'native', root, timeoutMs: NO_RETRANSMIT_MS });
    try {
      const lockStep = await download(srv.port, 'exact-512.bin');
      assert.equal(lockStep.packets, 7);
      assert.equal(sha256(lockStep.data), sha256(content('exact-512.bin')));
      // 65 blocks in windows of 3: the empty one is the second of the last, partial window.
      const windowed = await download(srv.port, 'exact-1024.bin', [['blksize', '1024'], ['windowsize', '3']]);
      assert.equal(windowed.packets, 65);
      assert.equal(sha256(windowed.data), sha256(content('exact-1024.bin')));
      for (const name of ['exact-512.bin', 'exact-1024.bin']) {
        const event = await waitForEvent(srv, 0, name);
        assert.equal(event.ok, true, event.error);
        assert.equal(event.pump, 'native');
        assert.equal(event.bytes, content(name).length);
      }
    } finally {
      await srv.stop();
    }
  });

  it('serves a 0-byte file as one empty block, with and without an OACK', T, async () => {
    const srv = await startServer({ pump: 'native', root, timeoutMs: NO_RETRANSMIT_MS });
    try {
      const plain = await download(srv.port, 'empty.bin');
      assert.equal(plain.oack, undefined);
      assert.deepEqual([plain.packets, plain.data.length], [1, 0]);
      const negotiated = await download(srv.port, 'empty.bin', [['tsize', '0'], ['blksize', '1428'], ['windowsize', '8']]);
      assert.equal(negotiated.oack?.get('tsize'), '0');
      assert.deepEqual([negotiated.packets, negotiated.data.length], [1, 0]);
      await waitForEvents(srv, 2);
      assert.deepEqual(srv.events.map((e) => [e.ok, e.pump, e.bytes]), [[true, 'native', 0], [true, 'native', 0]]);
    } finally {
      await srv.stop();
    }
  });

  it('wraps block numbers past 65535 to 0 inside a window of 7 at blksize 8, and takes an ACK across the wrap', T, async () => {
    const srv = await startServer({ pump: 'native', root, timeoutMs: NO_RETRANSMIT_MS });
    const client = await RawClient.open();
    try {
      await client.send(encodeRequest(Opcode.RRQ, 'rollover.bin', 'octet', [['blksize', '8'], ['windowsize', '7'], ['tsize', '0']]), srv.port);
      const oack = await client.recv();
      assert.equal(oack.packet.opcode === Opcode.OACK && oack.packet.options.get('windowsize'), '7');
      const tid = oack.rinfo.port;
      await client.send(encodeAck(0), tid);
      // Windows start at 1, 8, 15, ...: blocks 65,535 to 65,541 are one window, with the wrap inside.
      // Its ACK names 65,536 (0 on the wire) instead of 65,541, as if the client had lost the rest:
      // the pump must send 65,537 to 65,541 again, then carry on from there.
      const WRAP_WINDOW = 65_541;
      const chunks: Buffer[] = [];
      const wireNumbers: number[] = [];
      let shortAcked = false;
      for (let block = 1, windowEnd = 7; ; block++) {
        const r = await client.recv();
        assert.equal(r.rinfo.port, tid);
        const data = expectData(r, block);
        if (r.packet.opcode === Opcode.DATA && block >= 65_535 && block <= WRAP_WINDOW && !shortAcked) wireNumbers.push(r.packet.block);
        const earlier = chunks[block - 1];
        if (earlier) assert.deepEqual(data, earlier, `block ${block} sent again differs`);
        chunks[block - 1] = data;
        const last = data.length < 8;
        if (block === WRAP_WINDOW && !shortAcked) {
          shortAcked = true;
          await client.send(encodeAck(65_536 & 0xffff), tid);
          block = 65_536; // the next DATA is 65,537 again
          windowEnd = 65_536 + 7;
          continue;
        }
        if (last || block === windowEnd) {
          await client.send(encodeAck(block & 0xffff), tid);
          windowEnd = block + 7;
        }
        if (last) break;
      }
      assert.deepEqual(wireNumbers, [65_535, 0, 1, 2, 3, 4, 5]);
      assert.equal(chunks.length, 65_601);
      assert.equal(sha256(Buffer.concat(chunks)), sha256(content('rollover.bin')));
      const event = await waitForEvent(srv, 0, 'rollover.bin');
      assert.deepEqual([event.ok, event.pump, event.bytes], [true, 'native', content('rollover.bin').length]);
      assert.equal(client.pending, 0, 'nothing else was sent');
    } finally {
      await client.close();
      await srv.stop();
    }
  });
});

describe('native TFTP engine: a file that changes under a transfer', () => {
  /** Downloads `name` with ACKs, calling `change` once block 2 has arrived; the DATA bytes and the ERROR, if one came. */
  async function downloadChanging(port: number, name: string, windowsize: number, change: () => Promise<void>): Promise<{ data: Buffer; error?: string; tsize?: string }> {
    const client = await RawClient.open();
    try {
      await client.send(encodeRequest(Opcode.RRQ, name, 'octet', [['blksize', '1024'], ['windowsize', String(windowsize)], ['tsize', '0']]), port);
      const oack = await client.recv();
      const tsize = oack.packet.opcode === Opcode.OACK ? oack.packet.options.get('tsize') : undefined;
      const tid = oack.rinfo.port;
      await client.send(encodeAck(0), tid);
      const chunks: Buffer[] = [];
      for (let block = 1; ; block++) {
        const r = await client.recv();
        if (r.packet.opcode === Opcode.ERROR) return { data: Buffer.concat(chunks), error: r.packet.message, ...(tsize ? { tsize } : {}) };
        const data = expectData(r, block);
        chunks.push(data);
        if (block === 2) await change();
        const last = data.length < 1024;
        if (last || block % windowsize === 0) await client.send(encodeAck(block), tid);
        if (last) return { data: Buffer.concat(chunks), ...(tsize ? { tsize } : {}) };
      }
    } finally {
      await client.close();
    }
  }

  for (const windowsize of [1, 8]) {
    it(`sends exactly the tsize it announced when the file grows, and an ERROR when it shrinks (windowsize ${windowsize})`, T, async () => {
      const srv = await startServer({ pump: 'native', root, timeoutMs: NO_RETRANSMIT_MS });
      try {
        const original = randomBytes(300_000);
        const grows = `grows-${windowsize}.bin`;
        await writeFile(path.join(root, grows), original);
        const grown = await downloadChanging(srv.port, grows, windowsize, () => appendFile(path.join(root, grows), randomBytes(50_000)));
        assert.equal(grown.tsize, String(original.length));
        assert.equal(grown.error, undefined);
        assert.equal(sha256(grown.data), sha256(original));

        const shrinks = `shrinks-${windowsize}.bin`;
        await writeFile(path.join(root, shrinks), original);
        const shrunk = await downloadChanging(srv.port, shrinks, windowsize, () => truncate(path.join(root, shrinks), 100_000));
        assert.match(shrunk.error ?? '', /shorter than when the transfer started/);
        assert.ok(shrunk.data.length < original.length);
        assert.deepEqual(shrunk.data, original.subarray(0, shrunk.data.length), 'what was sent is the file as it was');
        const events = await Promise.all([waitForEvent(srv, 0, grows), waitForEvent(srv, 0, shrinks)]);
        assert.deepEqual(events.map((e) => [e.ok, e.failure, e.pump]), [[true, undefined, 'native'], [false, 'source', 'native']]);
      } finally {
        await srv.stop();
      }
    });
  }
});

describe('native TFTP pump: abort while its thread waits', () => {
  it('stop() wakes the waiting threads at once: each client gets an ERROR, sockets and files are closed', T, async () => {
    // No retransmission would ever end these transfers: only the abort can.
    const srv = await startServer({ pump: 'native', root, timeoutMs: NO_RETRANSMIT_MS });
    const inData = await RawClient.open();
    const inOack = await RawClient.open();
    await inData.send(encodeRequest(Opcode.RRQ, 'medium.bin', 'octet'), srv.port);
    const block1 = await inData.recv();
    expectData(block1, 1); // never acknowledged
    await inOack.send(encodeRequest(Opcode.RRQ, 'medium.bin', 'octet', [['blksize', '1024']]), srv.port);
    const oack = await inOack.recv();
    assert.equal(oack.packet.opcode, Opcode.OACK); // never acknowledged
    const tids = [block1.rinfo.port, oack.rinfo.port];
    assert.ok(tids.every(udpPortOpen));
    assert.ok(fdTargets().some((t) => t.endsWith('medium.bin')), 'the file is open during the transfers');

    await srv.stop();

    assert.equal(srv.events.length, 2);
    for (const e of srv.events) assert.deepEqual([e.ok, e.failure, e.pump, e.error], [false, 'shutdown', 'native', 'Server shutting down']);
    for (const [client, tid] of [[inData, tids[0]], [inOack, tids[1]]] as const) {
      const r = await client.recv();
      assert.equal(r.rinfo.port, tid, 'the ERROR comes from the transfer\'s own TID');
      assert.match(expectError(r, TftpErrorCode.NotDefined), /shutting down/);
      await client.close();
    }
    for (const port of [srv.port, ...tids]) assert.ok(!udpPortOpen(port), `port ${port} still open`);
    assert.ok(!fdTargets().some((t) => t.endsWith('medium.bin')), 'the file was closed');
  });
});

for (const pump of ['native', 'js'] as const) {
  describe(`requests from a client port with a transfer running (${pump} pump)`, () => {
    it('the same request again after an ACK gets a transfer of its own on a new TID; the first carries on untouched', T, async () => {
      const srv = await startServer({ pump, root, timeoutMs: NO_RETRANSMIT_MS });
      try {
        const client = await RawClient.open();
        const rrq = encodeRequest(Opcode.RRQ, 'small.bin', 'octet');
        await client.send(rrq, srv.port);
        const first = await client.recv();
        const tidA = first.rinfo.port;
        const a = [expectData(first, 1)];
        await client.send(encodeAck(1), tidA);
        const second = await client.recv();
        assert.equal(second.rinfo.port, tidA);
        a.push(expectData(second, 2));

        await client.send(rrq, srv.port); // a late copy, or a client that restarted on the same port
        const restart = await client.recv();
        const tidB = restart.rinfo.port;
        assert.notEqual(tidB, tidA, 'a new TID');
        const b = [expectData(restart, 1)];

        // Each transfer waits for its own ACK: the first finishes, then the second.
        await client.send(encodeAck(2), tidA);
        const last = await client.recv();
        assert.equal(last.rinfo.port, tidA);
        a.push(expectData(last, 3));
        await client.send(encodeAck(3), tidA);
        for (let block = 1; block <= 2; block++) {
          await client.send(encodeAck(block), tidB);
          const r = await client.recv();
          assert.equal(r.rinfo.port, tidB);
          b.push(expectData(r, block + 1));
        }
        await client.send(encodeAck(3), tidB);

        assert.equal(sha256(Buffer.concat(a)), sha256(content('small.bin')));
        assert.equal(sha256(Buffer.concat(b)), sha256(content('small.bin')));
        await waitForEvents(srv, 2);
        assert.deepEqual(srv.events.map((e) => [e.ok, e.pump, e.bytes]), [[true, pump, 1300], [true, pump, 1300]]);
        assert.equal(client.pending, 0);
        await client.close();
      } finally {
        await srv.stop();
      }
    });

    it('a request for another file supersedes the running transfer: its client gets an ERROR from the old TID', T, async () => {
      const srv = await startServer({ pump, root, timeoutMs: NO_RETRANSMIT_MS });
      try {
        const client = await RawClient.open();
        await client.send(encodeRequest(Opcode.RRQ, 'medium.bin', 'octet'), srv.port);
        const first = await client.recv();
        const tidA = first.rinfo.port;
        expectData(first, 1);
        await client.send(encodeAck(1), tidA);
        expectData(await client.recv(), 2);

        await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet'), srv.port);
        // The old TID's ERROR and the new TID's first block, in whichever order they come.
        const replies = [await client.recv(), await client.recv()];
        const fromA = replies.find((r) => r.rinfo.port === tidA);
        const fromB = replies.find((r) => r.rinfo.port !== tidA);
        assert.ok(fromA && fromB, `one reply from each TID: ${JSON.stringify(replies.map((r) => [r.rinfo.port, r.packet.opcode]))}`);
        assert.match(expectError(fromA, TftpErrorCode.NotDefined), /new request/);
        const tidB = fromB.rinfo.port;
        const chunks = [expectData(fromB, 1)];
        for (let block = 1; block <= 2; block++) {
          await client.send(encodeAck(block), tidB);
          chunks.push(expectData(await client.recv(), block + 1));
        }
        await client.send(encodeAck(3), tidB);
        assert.equal(sha256(Buffer.concat(chunks)), sha256(content('small.bin')));

        const superseded = await waitForEvent(srv, 0, 'medium.bin');
        assert.deepEqual([superseded.ok, superseded.failure, superseded.pump, superseded.bytes], [false, 'superseded', pump, 512]);
        assert.ok(!udpPortOpen(tidA), 'the superseded transfer\'s socket was closed');
        const served = await waitForEvent(srv, 0, 'small.bin');
        assert.deepEqual([served.ok, served.pump], [true, pump]);
        assert.equal(client.pending, 0);
        await client.close();
      } finally {
        await srv.stop();
      }
    });

    it('a request right after the client aborted a size probe from the same port is served at once', T, async (t) => {
      // A PXE ROM asks for tsize, refuses the OACK with ERROR 8 and asks again from the same port.
      // The new request can reach the server before the ERROR is read on the probe's own socket
      // (by the pump's thread, with the native pump): it is held until then, and must not be
      // dropped as a repeat, or the ROM would wait for its own retransmission timer. The server's
      // debug line says when it drops one, and that fails the test at once.
      let round = 0;
      const watch = watchRepeats(() => `round ${round}`);
      const srv = await startServer({ pump, root, log: watch.log, timeoutMs: NO_RETRANSMIT_MS });
      try {
        // Repeated: the ERROR and the new request race to the server, on two sockets.
        for (let i = 0; i < 30; i++) {
          round = i;
          const client = await RawClient.open();
          try {
            await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet', [['tsize', '0']]), srv.port);
            const probe = await client.recv();
            assert.equal(probe.packet.opcode === Opcode.OACK && probe.packet.options.get('tsize'), '1300');
            await client.send(encodeError(TftpErrorCode.OptionNegotiation, 'tsize probe'), probe.rinfo.port);
            await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet', [['blksize', '1024'], ['tsize', '0']]), srv.port);
            const oack: Received = await Promise.race([client.recv(), watch.dropped]);
            assert.equal(oack.packet.opcode === Opcode.OACK && oack.packet.options.get('blksize'), '1024', `round ${i}`);
            assert.notEqual(oack.rinfo.port, probe.rinfo.port);
            await client.send(encodeAck(0), oack.rinfo.port);
            const chunks = [expectData(await client.recv(), 1)];
            await client.send(encodeAck(1), oack.rinfo.port);
            chunks.push(expectData(await client.recv(), 2));
            await client.send(encodeAck(2), oack.rinfo.port);
            assert.equal(sha256(Buffer.concat(chunks)), sha256(content('small.bin')), `round ${i}`);
          } finally {
            await client.close();
          }
        }
        await waitForEvents(srv, 60);
        const probes = srv.events.filter((e) => !e.ok);
        assert.equal(probes.length, 30);
        assert.ok(probes.every((e) => e.failure === 'client-abort' && e.bytes === 0 && e.pump === pump));
        assert.ok(srv.events.filter((e) => e.ok).every((e) => e.bytes === 1300 && e.pump === pump));
        t.diagnostic(`${watch.held()} of the requests arrived before the probe's ERROR was read, and were held until it was`);
      } finally {
        await srv.stop();
      }
    });

    it('a request held as a repeat is served when the client then aborts the first transfer', T, async () => {
      const watch = watchRepeats(() => 'held request');
      const srv = await startServer({ pump, root, log: watch.log, timeoutMs: NO_RETRANSMIT_MS });
      const client = await RawClient.open();
      try {
        await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet', [['tsize', '0']]), srv.port);
        const probe = await client.recv();
        assert.equal(probe.packet.opcode, Opcode.OACK);
        // The order the two may arrive in over a network: the new request first (the server says it
        // holds it), then the abort.
        const held = watch.nextHeld();
        await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet', [['blksize', '1024']]), srv.port);
        await held;
        await client.send(encodeError(TftpErrorCode.OptionNegotiation, 'tsize probe'), probe.rinfo.port);
        const oack: Received = await Promise.race([client.recv(), watch.dropped]);
        assert.equal(oack.packet.opcode === Opcode.OACK && oack.packet.options.get('blksize'), '1024');
        assert.notEqual(oack.rinfo.port, probe.rinfo.port);
        await client.send(encodeAck(0), oack.rinfo.port);
        const chunks = [expectData(await client.recv(), 1)];
        await client.send(encodeAck(1), oack.rinfo.port);
        chunks.push(expectData(await client.recv(), 2));
        await client.send(encodeAck(2), oack.rinfo.port);
        assert.equal(sha256(Buffer.concat(chunks)), sha256(content('small.bin')));
        await waitForEvents(srv, 2);
        assert.deepEqual(srv.events.map((e) => [e.ok, e.failure, e.pump]).sort(), [[false, 'client-abort', pump], [true, undefined, pump]]);
        assert.equal(client.pending, 0);
      } finally {
        await client.close();
        await srv.stop();
      }
    });
  });
}

/**
 * The server's debug lines about repeated requests: `dropped` rejects as soon as it drops one (the
 * first transfer answered it, it says), which fails a test that waits for that request's answer at once.
 */
function watchRepeats(what: () => string): { log: TftpLogger; dropped: Promise<never>; held(): number; nextHeld(): Promise<void> } {
  let held = 0;
  const heldWaiters: Array<() => void> = [];
  let reject: (reason: Error) => void = () => undefined;
  const dropped = new Promise<never>((_, r) => (reject = r));
  dropped.catch(() => undefined); // rejected only while a test races it
  const log: TftpLogger = {
    info() {},
    warn() {},
    debug: (_o, msg) => {
      if (/holding repeated request/.test(msg)) {
        held++;
        for (const wake of heldWaiters.splice(0)) wake();
      }
      if (/ignoring repeated request/.test(msg)) reject(new Error(`${what()}: the server dropped the request that followed the aborted size probe`));
    },
  };
  return { log, dropped, held: () => held, nextHeld: () => new Promise((resolve) => heldWaiters.push(resolve)) };
}
