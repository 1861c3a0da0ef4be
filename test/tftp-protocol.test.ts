// The server driven packet by packet from a raw dgram socket on 127.0.0.1.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { TftpErrorCode } from '../src/serve/tftp/errors.ts';
import type { TftpTransferEvent } from '../src/serve/tftp/index.ts';
import { Opcode, encodeAck, encodeError, encodeRequest } from '../src/serve/tftp/packet.ts';
import {
  RawClient, download, expectData, expectError, fdTargets, makeTempDir, sha256, startServer, type Received, type RunningServer, udpPortOpen, waitForEvent,
} from './fixtures/tftp/harness.ts';

const T = { timeout: 30_000 }; // safety net only
/** Every suite runs once per pump; generated content and netascii take the JS pump in both. */
const PUMPS = ['native', 'js'] as const;

let base: string;
let root: string;
let cleanup: () => Promise<void>;
const files = new Map<string, Buffer>();

before(async () => {
  ({ dir: base, cleanup } = await makeTempDir());
  root = path.join(base, 'root');
  await mkdir(path.join(root, 'boot', 'grub'), { recursive: true });
  const put = async (name: string, data: Buffer): Promise<void> => {
    files.set(name, data);
    await writeFile(path.join(root, name), data);
  };
  await put('small.bin', randomBytes(1300));
  await put('exact.bin', randomBytes(512 * 4)); // needs a trailing empty block
  await put('empty.bin', Buffer.alloc(0));
  await put('medium.bin', randomBytes(200_000));
  await put('boot/grub/grub.cfg', Buffer.from('set timeout=1\n'));
  await put('text.txt', Buffer.from('one\ntwo\rthree\r\n'));
  await writeFile(path.join(base, 'secret'), 'not for clients');
  await symlink(path.join(base, 'secret'), path.join(root, 'escape'));
  await symlink('small.bin', path.join(root, 'alias.bin'));
});
after(() => cleanup());

/** A transfer that completed, its data moved by `pump`. */
function assertCompleted(e: TftpTransferEvent, pump: 'native' | 'js'): void {
  assert.equal(e.ok, true, e.error);
  assert.equal(e.pump, pump, 'moved by the wrong pump');
}

function* chunked(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

for (const pump of PUMPS) {
  describe(`tftp protocol (${pump} pump)`, () => {
    let srv: RunningServer;
    before(async () => {
      srv = await startServer({ pump, root: () => root, timeoutMs: 10_000 });
    });
    after(() => srv.stop());

    it('serves lock-step RFC 1350 transfers without an OACK when no options are sent', T, async () => {
      for (const name of ['small.bin', 'exact.bin', 'empty.bin', 'medium.bin']) {
        const d = await download(srv.port, name);
        assert.equal(d.oack, undefined);
        assert.notEqual(d.tid, srv.port, 'data must come from a fresh TID');
        assert.equal(sha256(d.data), sha256(files.get(name) ?? Buffer.alloc(1)), name);
        assert.equal(d.packets, Math.floor((files.get(name)?.length ?? 0) / 512) + 1, name);
      }
    });

    it(`moves files under the root with the ${pump} pump, netascii with the JS one`, T, async () => {
      const seen = srv.events.length;
      await download(srv.port, 'exact.bin', [['blksize', '1024'], ['windowsize', '2']]);
      assertCompleted(await waitForEvent(srv, seen, 'exact.bin'), pump);
      await download(srv.port, 'text.txt', [], 'netascii');
      assertCompleted(await waitForEvent(srv, seen, 'text.txt'), 'js');
    });

    it('negotiates blksize, tsize, timeout and windowsize in an OACK', T, async () => {
      const d = await download(srv.port, 'medium.bin', [['blksize', '1428'], ['tsize', '0'], ['timeout', '7'], ['windowsize', '8'], ['x-unknown', '1']]);
      assert.deepEqual([...(d.oack ?? [])], [['blksize', '1428'], ['tsize', '200000'], ['timeout', '7'], ['windowsize', '8']]);
      assert.equal(sha256(d.data), sha256(files.get('medium.bin') ?? Buffer.alloc(1)));
    });

    it('clamps an oversized blksize to 65464 and still delivers', T, async () => {
      const d = await download(srv.port, 'medium.bin', [['blksize', '100000']]);
      assert.equal(d.oack?.get('blksize'), '65464');
      assert.equal(sha256(d.data), sha256(files.get('medium.bin') ?? Buffer.alloc(1)));
    });

    it('serves names with a leading slash, backslashes and in-root symlinks', T, async () => {
      assert.equal(sha256((await download(srv.port, '/small.bin')).data), sha256(files.get('small.bin') ?? Buffer.alloc(1)));
      assert.equal((await download(srv.port, 'boot\\grub\\grub.cfg')).data.toString(), 'set timeout=1\n');
      assert.equal(sha256((await download(srv.port, 'alias.bin')).data), sha256(files.get('small.bin') ?? Buffer.alloc(1)));
    });

    it('converts to netascii and offers no tsize in that mode', T, async () => {
      const d = await download(srv.port, 'text.txt', [['tsize', '0']], 'netascii');
      assert.equal(d.oack, undefined);
      assert.equal(d.data.toString('latin1'), 'one\r\ntwo\r\0three\r\0\r\n');
    });

    async function requestError(packet: Buffer): Promise<{ code: number; message: string; from: number }> {
      const client = await RawClient.open();
      try {
        await client.send(packet, srv.port);
        const r = await client.recv();
        assert.equal(r.packet.opcode, Opcode.ERROR);
        return r.packet.opcode === Opcode.ERROR ? { code: r.packet.code, message: r.packet.message, from: r.rinfo.port } : { code: -1, message: '', from: 0 };
      } finally {
        await client.close();
      }
    }

    it('answers a missing file with error 1 from a fresh TID', T, async () => {
      const e = await requestError(encodeRequest(Opcode.RRQ, 'nope.bin', 'octet'));
      assert.equal(e.code, TftpErrorCode.FileNotFound);
      assert.notEqual(e.from, srv.port);
    });

    it('refuses writes with error 2', T, async () => {
      assert.equal((await requestError(encodeRequest(Opcode.WRQ, 'new.bin', 'octet'))).code, TftpErrorCode.AccessViolation);
    });

    it('refuses traversal, double-slash absolute paths and symlink escapes with error 2', T, async () => {
      for (const name of ['../secret', 'boot/../../secret', '..\\secret', '//etc/passwd', 'escape', '/../secret']) {
        const e = await requestError(encodeRequest(Opcode.RRQ, name, 'octet'));
        assert.equal(e.code, TftpErrorCode.AccessViolation, name);
      }
      // One leading slash is stripped, so /etc/passwd means <root>/etc/passwd, which does not exist.
      assert.equal((await requestError(encodeRequest(Opcode.RRQ, '/etc/passwd', 'octet'))).code, TftpErrorCode.FileNotFound);
    });

    it('refuses directories with error 2 and mail mode with error 4', T, async () => {
      assert.equal((await requestError(encodeRequest(Opcode.RRQ, 'boot', 'octet'))).code, TftpErrorCode.AccessViolation);
      assert.equal((await requestError(encodeRequest(Opcode.RRQ, 'small.bin', 'mail'))).code, TftpErrorCode.IllegalOperation);
    });

    it('answers garbage on the listening port with error 4 and keeps serving', T, async () => {
      assert.equal((await requestError(Buffer.from([0, 1, 0x41]))).code, TftpErrorCode.IllegalOperation);
      assert.equal((await requestError(encodeAck(3))).code, TftpErrorCode.IllegalOperation);
      assert.equal((await download(srv.port, 'small.bin')).data.length, 1300);
    });

    it('sends error 5 to a stranger on a transfer socket and carries on with the real client', T, async () => {
      const client = await RawClient.open();
      const stranger = await RawClient.open();
      await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet'), srv.port);
      const first = await client.recv();
      const tid = first.rinfo.port;
      const chunks = [expectData(first, 1)];
      await stranger.send(encodeAck(1), tid);
      expectError(await stranger.recv(), TftpErrorCode.UnknownTransferId);
      await client.send(encodeAck(1), tid);
      chunks.push(expectData(await client.recv(), 2));
      await client.send(encodeAck(2), tid);
      chunks.push(expectData(await client.recv(), 3));
      await client.send(encodeAck(3), tid);
      assert.equal(sha256(Buffer.concat(chunks)), sha256(files.get('small.bin') ?? Buffer.alloc(1)));
      await client.close();
      await stranger.close();
    });

    it('ends the transfer quietly when the client rejects the OACK with error 8', T, async () => {
      const client = await RawClient.open();
      await client.send(encodeRequest(Opcode.RRQ, 'medium.bin', 'octet', [['blksize', '1024']]), srv.port);
      const oack = await client.recv();
      assert.equal(oack.packet.opcode, Opcode.OACK);
      const seen = srv.events.length;
      await client.send(encodeError(TftpErrorCode.OptionNegotiation, 'no thanks'), oack.rinfo.port);
      const event = await waitForEvent(srv, seen, 'medium.bin');
      assert.equal(event.ok, false);
      assert.match(event.error ?? '', /client sent error 8/);
      assert.equal(client.pending, 0, 'no reply to an error');
      await client.close();
    });

    it('serves many transfers at once', T, async () => {
      const names = ['small.bin', 'exact.bin', 'medium.bin', 'empty.bin'];
      const jobs = Array.from({ length: 60 }, (_, i) => {
        const name = names[i % names.length] ?? 'small.bin';
        const options: Array<[string, string]> = i % 2 ? [['blksize', String(512 + i * 16)], ['windowsize', String(1 + (i % 5))]] : [];
        return download(srv.port, name, options).then((d) => assert.equal(sha256(d.data), sha256(files.get(name) ?? Buffer.alloc(1)), name));
      });
      await Promise.all(jobs);
    });
  });

  describe(`tftp retransmission and the Sorcerer's Apprentice (${pump} pump)`, () => {
    it('ignores duplicate and old ACKs: every DATA block is sent exactly once', T, async () => {
      const srv = await startServer({ pump, root, timeoutMs: 60_000 }); // no timer-driven resends in this test
      try {
        const client = await RawClient.open();
        const content = files.get('medium.bin') ?? Buffer.alloc(1);
        const blocks = Math.floor(content.length / 512) + 1;
        await client.send(encodeRequest(Opcode.RRQ, 'medium.bin', 'octet'), srv.port);
        const chunks: Buffer[] = [];
        let r = await client.recv();
        const tid = r.rinfo.port;
        for (let block = 1; block <= blocks; block++) {
          // In-order delivery on loopback: a second copy of block N would arrive before block N+1.
          chunks.push(expectData(r, block));
          await client.send(encodeAck(block), tid);
          await client.send(encodeAck(block), tid); // duplicate
          if (block > 1) await client.send(encodeAck(block - 1), tid); // old
          if (block < blocks) r = await client.recv();
        }
        const event = await srv.nextEvent();
        assertCompleted(event, pump);
        assert.equal(client.pending, 0, 'a duplicate ACK produced a duplicate DATA packet');
        assert.equal(sha256(Buffer.concat(chunks)), sha256(content));
        await client.close();
      } finally {
        await srv.stop();
      }
    });

    it('retransmits an unacknowledged block after the timeout, then carries on', T, async () => {
      const srv = await startServer({ pump, root, timeoutMs: 20, retries: 50 });
      try {
        const client = await RawClient.open();
        await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet'), srv.port);
        const first = await client.recv();
        const tid = first.rinfo.port;
        const block1 = expectData(first, 1);
        // Drop the ACK: the same block must come again, byte for byte.
        assert.deepEqual(expectData(await client.recv(), 1), block1);
        await client.send(encodeAck(1), tid);
        let r = await client.recv();
        while (r.packet.opcode === Opcode.DATA && r.packet.block === 1) r = await client.recv(); // late resends of 1
        const block2 = expectData(r, 2);
        assert.deepEqual(expectData(await client.recv(), 2), block2); // dropped again
        await client.send(encodeAck(2), tid);
        for (;;) {
          r = await client.recv();
          if (r.packet.opcode === Opcode.DATA && r.packet.block === 3) break;
          expectData(r, 2);
        }
        const block3 = expectData(r, 3);
        await client.send(encodeAck(3), tid);
        assert.equal(sha256(Buffer.concat([block1, block2, block3])), sha256(files.get('small.bin') ?? Buffer.alloc(1)));
        assertCompleted(await srv.nextEvent(), pump);
        await client.close();
      } finally {
        await srv.stop();
      }
    });

    it('retransmits the OACK until it is acknowledged', T, async () => {
      const srv = await startServer({ pump, root, timeoutMs: 20, retries: 50 });
      try {
        const client = await RawClient.open();
        await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet', [['blksize', '1300']]), srv.port);
        const a = await client.recv();
        const b = await client.recv();
        assert.equal(a.packet.opcode, Opcode.OACK);
        assert.deepEqual(b.packet, a.packet);
        await client.send(encodeAck(0), a.rinfo.port);
        let r = await client.recv();
        while (r.packet.opcode === Opcode.OACK) r = await client.recv();
        const data = expectData(r, 1);
        await client.send(encodeAck(1), a.rinfo.port);
        for (;;) {
          r = await client.recv();
          if (r.packet.opcode === Opcode.DATA && r.packet.block === 2) break;
        }
        assert.equal(expectData(r, 2).length, 0); // 1300 bytes at blksize 1300: empty final block
        await client.send(encodeAck(2), a.rinfo.port);
        assert.equal(sha256(data), sha256(files.get('small.bin') ?? Buffer.alloc(1)));
        assertCompleted(await srv.nextEvent(), pump);
        await client.close();
      } finally {
        await srv.stop();
      }
    });

    it('with a window: resends from the block after a mid-window ACK, and the whole window on timeout', T, async () => {
      const srv = await startServer({ pump, root, timeoutMs: 60_000 });
      try {
        const client = await RawClient.open();
        const content = files.get('medium.bin') ?? Buffer.alloc(1);
        await client.send(encodeRequest(Opcode.RRQ, 'medium.bin', 'octet', [['windowsize', '4'], ['blksize', '1000']]), srv.port);
        const oack = await client.recv();
        const tid = oack.rinfo.port;
        await client.send(encodeAck(0), tid);
        const got = new Map<number, Buffer>();
        const take = async (expected: number[]): Promise<void> => {
          for (const block of expected) got.set(block, expectData(await client.recv(), block));
        };
        await take([1, 2, 3, 4]);
        await client.send(encodeAck(2), tid); // "lost" 3 and 4
        await take([3, 4, 5, 6]);
        await client.send(encodeAck(6), tid);
        await client.send(encodeAck(6), tid); // duplicate: must not trigger a second window
        await take([7, 8, 9, 10]);
        await client.send(encodeAck(10), tid);
        await take([11, 12, 13, 14]);
        assert.equal(client.pending, 0);
        let block = 14;
        while (block < 201) {
          await client.send(encodeAck(block), tid);
          const upto = Math.min(block + 4, 201);
          await take(Array.from({ length: upto - block }, (_, i) => block + 1 + i));
          block = upto;
        }
        await client.send(encodeAck(201), tid);
        assertCompleted(await srv.nextEvent(), pump);
        assert.equal(client.pending, 0);
        assert.equal(sha256(Buffer.concat([...got.entries()].sort((a, b) => a[0] - b[0]).map(([, d]) => d))), sha256(content));
        await client.close();
      } finally {
        await srv.stop();
      }
    });

    it('resends the whole unacknowledged window after a timeout', T, async () => {
      const srv = await startServer({ pump, root, timeoutMs: 20, retries: 50 });
      try {
        const client = await RawClient.open();
        await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet', [['windowsize', '3'], ['blksize', '400']]), srv.port);
        const oack = await client.recv();
        await client.send(encodeAck(0), oack.rinfo.port);
        const blocks = (rs: Received[]): number[] => rs.map((r) => (r.packet.opcode === Opcode.DATA ? r.packet.block : -1));
        const first = [await client.recv(), await client.recv(), await client.recv()];
        assert.deepEqual(blocks(first), [1, 2, 3]);
        const again = [await client.recv(), await client.recv(), await client.recv()];
        assert.deepEqual(blocks(again), [1, 2, 3]);
        assert.deepEqual(again.map((r) => r.packet), first.map((r) => r.packet));
        await client.send(encodeAck(3), oack.rinfo.port);
        let r: Received;
        do r = await client.recv();
        while (r.packet.opcode === Opcode.DATA && r.packet.block !== 4);
        assert.equal(expectData(r, 4).length, 100);
        await client.send(encodeAck(4), oack.rinfo.port);
        assertCompleted(await srv.nextEvent(), pump);
        await client.close();
      } finally {
        await srv.stop();
      }
    });
  });

  describe(`tftp block number rollover (${pump} pump)`, () => {
    it('wraps block numbers past 65535 to 0, through a window, from a streamed source', T, async () => {
      const blksize = 8;
      const content = randomBytes(blksize * 65_600 + 3); // 65,601 blocks
      const streams: Readable[] = [];
      const srv = await startServer({
        pump,
        root,
        resolve: async (name) => name === 'generated/big' ? { size: content.length, open: () => {
        const stream = Readable.from(chunked(content, 1000));
        streams.push(stream);
        return stream;
      } } : null,
      });
      try {
        const client = await RawClient.open();
        await client.send(encodeRequest(Opcode.RRQ, 'generated/big', 'octet', [['blksize', String(blksize)], ['windowsize', '16'], ['tsize', '0']]), srv.port);
        const oack = await client.recv();
        assert.equal(oack.packet.opcode === Opcode.OACK && oack.packet.options.get('tsize'), String(content.length));
        const tid = oack.rinfo.port;
        await client.send(encodeAck(0), tid);
        const chunks: Buffer[] = [];
        const wireNumbers = new Set<number>();
        for (let block = 1; ; block++) {
          const r = await client.recv();
          const data = expectData(r, block);
          if (r.packet.opcode === Opcode.DATA) wireNumbers.add(r.packet.block);
          chunks.push(data);
          const last = data.length < blksize;
          if (last || block % 16 === 0) await client.send(encodeAck(block & 0xffff), tid);
          if (last) break;
        }
        assertCompleted(await srv.nextEvent(), 'js'); // generated content: always the JS pump
        assert.ok(wireNumbers.has(0) && wireNumbers.has(65535), 'block numbers wrapped through 0');
        assert.equal(chunks.length, 65_601);
        assert.equal(sha256(Buffer.concat(chunks)), sha256(content));
        assert.equal(streams[0]?.destroyed, true);
        await client.close();
      } finally {
        await srv.stop();
      }
    });
  });

  describe(`tftp resources and lifecycle (${pump} pump)`, () => {
    it('gives up on a client that vanishes, closing its socket and file', T, async () => {
      const srv = await startServer({ pump, root, timeoutMs: 10, retries: 3 });
      try {
        const client = await RawClient.open();
        await client.send(encodeRequest(Opcode.RRQ, 'medium.bin', 'octet'), srv.port);
        const first = await client.recv();
        expectData(first, 1);
        assert.ok(udpPortOpen(first.rinfo.port));
        assert.ok(fdTargets().some((t) => t.endsWith('medium.bin')), 'file is open during the transfer');
        await client.close(); // gone without a word
        const event = await srv.nextEvent();
        assert.equal(event.ok, false);
        assert.equal(event.file, 'medium.bin');
        assert.equal(event.bytes, 0);
        assert.equal(event.pump, pump);
        assert.match(event.error ?? '', /no ACK after 3 retransmissions/);
        assert.ok(!udpPortOpen(first.rinfo.port), 'transfer socket was closed');
        assert.ok(!fdTargets().some((t) => t.endsWith('medium.bin')), 'file was closed');
      } finally {
        await srv.stop();
      }
    });

    it('destroys a resolve-hook stream when its client vanishes', T, async () => {
      const streams: Readable[] = [];
      const srv = await startServer({
        pump,
        root,
        timeoutMs: 10,
        retries: 2,
        resolve: async () => ({
          size: 10_000_000,
          open: () => {
            const stream = Readable.from(chunked(Buffer.alloc(10_000_000, 7), 4096));
            streams.push(stream);
            return stream;
          },
        }),
      });
      try {
        const client = await RawClient.open();
        await client.send(encodeRequest(Opcode.RRQ, 'anything', 'octet'), srv.port);
        expectData(await client.recv(), 1);
        await client.close();
        assert.equal((await srv.nextEvent()).ok, false);
        assert.equal(streams.length, 1);
        assert.equal(streams[0]?.destroyed, true);
      } finally {
        await srv.stop();
      }
    });

    it('uses the resolve hook first, falls back to the root on null, and reports hook failures as error 0', T, async () => {
      const seen: Array<{ name: string; port: number }> = [];
      const srv = await startServer({
        pump,
        root,
        resolve: async (name, client) => {
          seen.push({ name, port: client.port });
          if (name === 'pxelinux.cfg/default') return { data: Buffer.from('DEFAULT local\n') };
          if (name === 'broken') throw new Error('template exploded');
          return null;
        },
      });
      try {
        assert.equal((await download(srv.port, '/pxelinux.cfg/default')).data.toString(), 'DEFAULT local\n');
        assert.equal((await download(srv.port, 'small.bin')).data.length, 1300);
        const client = await RawClient.open();
        await client.send(encodeRequest(Opcode.RRQ, 'broken', 'octet'), srv.port);
        assert.match(expectError(await client.recv(), TftpErrorCode.NotDefined), /template exploded/);
        await client.send(encodeRequest(Opcode.RRQ, '../x', 'octet'), srv.port);
        expectError(await client.recv(), TftpErrorCode.AccessViolation);
        await client.close();
        assert.deepEqual(seen.map((s) => s.name), ['pxelinux.cfg/default', 'small.bin', 'broken'], 'the hook never sees unconfined names');
        assertCompleted(await waitForEvent(srv, 0, '/pxelinux.cfg/default'), 'js');
        assertCompleted(await waitForEvent(srv, 0, 'small.bin'), pump);
      } finally {
        await srv.stop();
      }
    });

    it('reads the root function per request, so the root can switch between transfers', T, async () => {
      const genA = path.join(base, `gen-a-${pump}`);
      const genB = path.join(base, `gen-b-${pump}`);
      await mkdir(genA);
      await mkdir(genB);
      await writeFile(path.join(genA, 'cfg'), 'A');
      await writeFile(path.join(genB, 'cfg'), 'B');
      let current = genA;
      const srv = await startServer({ pump, root: () => current });
      try {
        assert.equal((await download(srv.port, 'cfg')).data.toString(), 'A');
        current = genB;
        assert.equal((await download(srv.port, 'cfg')).data.toString(), 'B');
      } finally {
        await srv.stop();
      }
    });

    it('ignores a repeated request from the same client port while the first is unanswered', T, async () => {
      const srv = await startServer({ pump, root, timeoutMs: 60_000 });
      const client = await RawClient.open();
      await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet'), srv.port);
      await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet'), srv.port);
      const r = await client.recv();
      expectData(r, 1);
      for (let block = 1; block <= 3; block++) {
        await client.send(encodeAck(block), r.rinfo.port);
        if (block < 3) expectData(await client.recv(), block + 1);
      }
      assertCompleted(await srv.nextEvent(), pump);
      await srv.stop(); // would abort (and report) a second transfer, had one been started
      assert.equal(srv.events.length, 1);
      assert.equal(client.pending, 0);
      await client.close();
    });

    it('stop() aborts running transfers and closes every socket and file', T, async () => {
      const srv = await startServer({ pump, root, timeoutMs: 60_000 });
      const clients = await Promise.all([RawClient.open(), RawClient.open(), RawClient.open()]);
      const tids: number[] = [];
      for (const c of clients) {
        await c.send(encodeRequest(Opcode.RRQ, 'medium.bin', 'octet'), srv.port);
        const r = await c.recv();
        expectData(r, 1);
        tids.push(r.rinfo.port);
      }
      await srv.stop();
      assert.equal(srv.events.length, 3);
      assert.ok(srv.events.every((e) => !e.ok && /shutting down/.test(e.error ?? '') && e.pump === pump));
      for (const c of clients) expectError(await c.recv(), TftpErrorCode.NotDefined);
      await Promise.all(clients.map((c) => c.close()));
      for (const port of [srv.port, ...tids]) assert.ok(!udpPortOpen(port), `port ${port} still open`);
      assert.ok(!fdTargets().some((t) => t.endsWith('medium.bin')));
    });
  });
}
