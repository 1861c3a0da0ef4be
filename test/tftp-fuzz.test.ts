// Fuzzing: the packet parser and option negotiation on a large run of random and mutated packets,
// then a live server's listening socket and one transfer's socket sprayed with the same, after
// which the server still serves a real client byte for byte (once per pump). The generator is
// seeded, so a failure names the seed that reproduces it (FUZZ_SEED=... to replay).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TftpParseError } from '../src/serve/tftp/errors.ts';
import { encodeOack, Opcode, encodeAck, encodeData, encodeError, encodeRequest, parsePacket } from '../src/serve/tftp/packet.ts';
import { negotiate } from '../src/serve/tftp/options.ts';
import { LOOPBACK, makeTempDir, RawClient, sha256, startServer, udpPortOpen, writeRandomFile, type RunningServer } from './fixtures/tftp/harness.ts';
import { mulberry32 as prng } from './fixtures/prng.ts';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);


const SEEDS: Buffer[] = [
  encodeRequest(Opcode.RRQ, 'small.bin', 'octet', [['blksize', '1468'], ['tsize', '0'], ['windowsize', '16'], ['timeout', '1']]),
  encodeRequest(Opcode.RRQ, 'small.bin', 'netascii'),
  encodeRequest(Opcode.RRQ, 'dir/../small.bin', 'octet', [['blksize', '65464']]),
  encodeRequest(Opcode.WRQ, 'upload', 'octet', [['tsize', '100']]),
  encodeRequest(Opcode.RRQ, 'small.bin', 'mail'),
  encodeData(1, Buffer.alloc(512, 7)),
  encodeAck(0),
  encodeAck(65535),
  encodeError(8, 'option refused'),
  encodeOack([['blksize', '512'], ['tsize', '99']]),
];

function mutate(rand: () => number): Buffer {
  const int = (n: number): number => Math.floor(rand() * n);
  if (rand() < 0.2) {
    const buf = Buffer.alloc(int(700));
    for (let i = 0; i < buf.length; i++) buf[i] = int(256);
    if (buf.length >= 2 && rand() < 0.7) buf.writeUInt16BE(int(8), 0);
    return buf;
  }
  let buf = Buffer.from(SEEDS[int(SEEDS.length)] ?? SEEDS[0] ?? Buffer.alloc(0));
  for (let m = 1 + int(4); m > 0; m--) {
    switch (int(7)) {
      case 0: if (buf.length) { const at = int(buf.length); buf[at] = (buf[at] ?? 0) ^ (1 << int(8)); } break; // bit flip
      case 1: if (buf.length) buf[int(buf.length)] = int(256); break; // byte set
      case 2: buf = buf.subarray(0, int(buf.length + 1)); break; // truncate
      case 3: { const at = int(buf.length + 1); buf = Buffer.concat([buf.subarray(0, at), Buffer.from([[0, 0x2f, 0x2e, 0xff][int(4)] ?? 0]), buf.subarray(at)]); break; } // insert a NUL, slash, dot or 0xff
      case 4: buf = Buffer.concat([buf, Buffer.from(`opt${int(9)}\0${['', '0', '-1', '99999999999999999', 'x', '1e3'][int(6)]}\0`)]); break; // extra option
      case 5: if (buf.length >= 4) buf.writeUInt16BE(int(65536), 2); break; // block number / code
      default: if (buf.length >= 2) buf.writeUInt16BE(int(8), 0); break; // opcode
    }
  }
  return Buffer.from(buf);
}

describe(`tftp fuzz (seed ${SEED})`, () => {
  it('parsePacket and negotiate take 300,000 random and mutated packets: parse errors only', () => {
    const rand = prng(SEED);
    let parsed = 0;
    for (let i = 0; i < 300_000; i++) {
      const buf = mutate(rand);
      let packet;
      try {
        packet = parsePacket(buf);
      } catch (err) {
        assert.ok(err instanceof TftpParseError, `seed ${SEED} packet ${i} (${buf.toString('hex')}) threw ${String(err)}`);
        continue;
      }
      parsed++;
      if (packet.opcode === Opcode.RRQ || packet.opcode === Opcode.WRQ) {
        const n = negotiate(packet.options, Math.floor(rand() * 1e9));
        assert.ok(n.blksize >= 8 && n.blksize <= 65464 && n.windowsize >= 1 && n.windowsize <= 64, `seed ${SEED} packet ${i}`);
        encodeOack(n.accepted);
      }
    }
    assert.ok(parsed > 10_000, 'the mutations reach past the parser\'s first checks');
  });

  for (const pump of ['native', 'js'] as const) describe(`a live server (${pump} pump)`, () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    let srv: RunningServer;
    let data: Buffer;

    before(async () => {
      ({ dir, cleanup } = await makeTempDir('ftftp-fuzz-'));
      data = await writeRandomFile(path.join(dir, 'small.bin'), 300_000);
      // Short timers: the transfers mutated requests start end quickly instead of outliving the test.
      srv = await startServer({ pump, root: dir, timeoutMs: 50, retries: 1 });
    });
    after(async () => {
      await srv.stop();
      await cleanup();
    });

    it('takes 30,000 mutated packets on its listening port and on a transfer\'s port and keeps serving', { timeout: 120_000 }, async () => {
      const rand = prng(SEED ^ 0x5a5a5a5a);
      // Several source ports, so requests that parse run as concurrent transfers instead of superseding each other.
      const fuzzers = Array.from({ length: 8 }, () => createSocket('udp4'));
      for (const f of fuzzers) {
        f.on('message', () => undefined); // errors, OACKs and DATA for the requests that parsed
        await new Promise<void>((r) => f.bind(0, LOOPBACK, r));
      }
      // A transfer in progress: its TID is sprayed too, from the client's own port and from others.
      const client = await RawClient.open();
      await client.send(encodeRequest(Opcode.RRQ, 'small.bin', 'octet', [['blksize', '1024']]), srv.port);
      const oack = await client.recv();
      const tid = oack.rinfo.port;
      const send = (sock: { send: (b: Buffer, p: number, a: string, cb: () => void) => void }, buf: Buffer, port: number): Promise<void> =>
        new Promise((resolve) => sock.send(buf, port, LOOPBACK, () => resolve()));
      // In small batches, with a turn of the event loop in between: the sends complete without one, so
      // the server (same process) would never get to read and the kernel would drop nearly everything.
      for (let i = 0; i < 30_000; i += 30) {
        await new Promise((r) => setImmediate(r));
        await Promise.all(Array.from({ length: 30 }, (_, j) => {
          const buf = mutate(rand);
          const k = (i + j) % 10;
          const fuzzer = fuzzers[(i + j) % fuzzers.length] ?? client.socket;
          return k < 7 ? send(fuzzer, buf, srv.port) : k < 9 ? send(fuzzer, buf, tid) : send(client.socket, buf, tid);
        }));
      }
      await client.close();
      await Promise.all(fuzzers.map((f) => new Promise<void>((r) => f.close(() => r()))));
      // Still serving: a real client gets the file byte for byte.
      const out = path.join(dir, 'out.bin');
      const code = await new Promise<number>((resolve) => execFile('curl', ['-sS', '--tftp-blksize', '1468', `tftp://${LOOPBACK}:${srv.port}/small.bin`, '-o', out], (err) => resolve(err ? -1 : 0)));
      assert.equal(code, 0);
      assert.equal(sha256(await readFile(out)), sha256(data));
      // Every transfer the fuzz started ends by itself: stop() resolves and no socket stays open.
      await srv.stop();
      assert.equal(udpPortOpen(srv.port), false);
      assert.equal(udpPortOpen(tid), false);
      assert.ok(srv.events.length > 100, `mutated requests reached the transfer code (${srv.events.length} requests ended)`);
      assert.ok(srv.events.some((e) => e.pump === pump), `transfers ran on the ${pump} pump`);
    });
  });
});
