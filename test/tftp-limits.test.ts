// Caps on concurrent TFTP transfers (over all clients, per client address) and what the server
// refuses in its root. A request past a cap is dropped unanswered (src/serve/tftp/limits.ts says
// why), the drop is logged once per interval, and a client that asks again once a transfer ended is
// served. A burst of unacknowledged requests against `forseti serve tftp` leaves its threads, file
// descriptors and transfers bounded by the caps. A FIFO in the root is refused at once, however often
// it is asked for, and the files next to it are still served.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadAgentConfig } from '../src/agent/config.ts';
import { TftpErrorCode } from '../src/serve/tftp/errors.ts';
import type { TftpLogger } from '../src/serve/tftp/logger.ts';
import { Opcode, encodeError, encodeRequest } from '../src/serve/tftp/packet.ts';
import { RawClient, download, expectError, makeTempDir, sha256, startServer, waitForEvents, type Received, type RunningServer } from './fixtures/tftp/harness.ts';
import { REPO_ROOT, startServe } from './fixtures/tftp/serve-process.ts';

const T = { timeout: 60_000 }; // safety net only
const NO_RETRANSMIT_MS = 600_000;

let root: string;
let cleanup: () => Promise<void>;
const small = randomBytes(1300);

before(async () => {
  ({ dir: root, cleanup } = await makeTempDir('ftftp-limits-'));
  await writeFile(path.join(root, 'small.bin'), small);
  await writeFile(path.join(root, 'medium.bin'), randomBytes(200_000));
  execFileSync('mkfifo', [path.join(root, 'fifo')]);
});
after(() => cleanup());

/** The server's warnings, and a way to wait for them. */
function warnings(): { log: TftpLogger; lines: Array<{ fields: Record<string, unknown>; msg: string }> } {
  const lines: Array<{ fields: Record<string, unknown>; msg: string }> = [];
  return { lines, log: { info() {}, debug() {}, warn: (fields, msg) => lines.push({ fields: fields as Record<string, unknown>, msg }) } };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** Sends a read request from each client; resolves once the server has taken or dropped all of them. */
async function requestAll(srv: RunningServer, clients: RawClient[], name = 'medium.bin'): Promise<void> {
  const before = srv.server.stats();
  for (const c of clients) await c.send(encodeRequest(Opcode.RRQ, name, 'octet'), srv.port);
  // Each request is taken (a transfer starts) or dropped as the server reads it.
  await until(() => {
    const now = srv.server.stats();
    return now.dropped - before.dropped + (now.transfers - before.transfers) >= clients.length;
  });
}

/** The first reply of each client that got one, by the client's index; there must be `expected` of them. */
async function firstReplies(clients: RawClient[], expected: number): Promise<Map<number, Received>> {
  const replies = new Map<number, Received>();
  await Promise.all(clients.map(async (c, i) => {
    if (c.pending === 0) return;
    replies.set(i, await c.recv());
  }));
  assert.equal(replies.size, expected);
  return replies;
}

for (const pump of ['native', 'js'] as const) {
  describe(`tftp caps (${pump} pump)`, () => {
    it('drops requests past the global cap unanswered, logs it once, and serves a client that asks again once a transfer ended', T, async () => {
      const watch = warnings();
      const srv = await startServer({ pump, root, log: watch.log, timeoutMs: NO_RETRANSMIT_MS, limits: { maxTransfers: 4, maxTransfersPerClient: 10 } });
      const clients = await Promise.all(Array.from({ length: 10 }, (_, i) => RawClient.open(`127.0.2.${i + 1}`)));
      try {
        await requestAll(srv, clients);
        assert.deepEqual(srv.server.stats(), { transfers: 4, dropped: 6 });
        await until(() => clients.filter((c) => c.pending > 0).length === 4);
        const replies = await firstReplies(clients, 4);
        for (const r of replies.values()) assert.equal(r.packet.opcode, Opcode.DATA);
        const silent = clients.filter((_, i) => !replies.has(i));
        assert.equal(silent.length, 6);

        const capLines = watch.lines.filter((l) => l.fields['cap'] === 'global');
        assert.equal(capLines.length, 1, 'one line for six drops');
        assert.match(capLines[0]?.msg ?? '', /4 transfers are running, the most allowed at once; requests past it are dropped unanswered/);
        assert.deepEqual([capLines[0]?.fields['limit'], capLines[0]?.fields['dropped']], [4, 1]);

        // One client gives up on its transfer: a dropped client that asks again is served.
        const [firstIndex, first] = [...replies.entries()][0] ?? [];
        assert.ok(first && firstIndex !== undefined);
        await clients[firstIndex]?.send(encodeError(TftpErrorCode.NotDefined, 'giving up'), first.rinfo.port);
        await waitForEvents(srv, 1);
        const retry = silent[0];
        assert.ok(retry);
        await retry.send(encodeRequest(Opcode.RRQ, 'medium.bin', 'octet'), srv.port);
        const served = await retry.recv();
        assert.equal(served.packet.opcode, Opcode.DATA);
        assert.equal(srv.server.stats().transfers, 4);
        // Everything above took round trips after the drops: an answer to one would be here by now.
        assert.ok(silent.slice(1).every((c) => c.pending === 0), 'a dropped request was answered');
      } finally {
        await srv.stop();
        await Promise.all(clients.map((c) => c.close()));
      }
      assert.equal(srv.server.stats().transfers, 0);
    });

    it('drops requests past the per-client cap, counting every port of one address; other addresses are served', T, async () => {
      const watch = warnings();
      const srv = await startServer({ pump, root, log: watch.log, timeoutMs: NO_RETRANSMIT_MS, limits: { maxTransfers: 100, maxTransfersPerClient: 3 } });
      const greedy = await Promise.all(Array.from({ length: 5 }, () => RawClient.open('127.0.3.1')));
      const other = await RawClient.open('127.0.3.2');
      try {
        await requestAll(srv, greedy);
        assert.deepEqual(srv.server.stats(), { transfers: 3, dropped: 2 });
        const d = await download(srv.port, 'small.bin'); // from 127.0.0.1
        assert.equal(sha256(d.data), sha256(small));
        await waitForEvents(srv, 1);
        await requestAll(srv, [other]);
        assert.equal((await other.recv()).packet.opcode, Opcode.DATA);
        await until(() => greedy.filter((c) => c.pending > 0).length === 3);
        const replies = await firstReplies(greedy, 3);
        assert.equal(greedy.filter((_, i) => !replies.has(i) && greedy[i]?.pending === 0).length, 2);
        const capLines = watch.lines.filter((l) => l.fields['cap'] === 'per-client');
        assert.equal(capLines.length, 1);
        assert.match(capLines[0]?.msg ?? '', /client 127\.0\.3\.1 has 3 transfers running, the most allowed for one address/);
        assert.equal(watch.lines.filter((l) => l.fields['cap'] === 'global').length, 0);
      } finally {
        await srv.stop();
        await Promise.all([...greedy, other].map((c) => c.close()));
      }
    });

    it('a repeated request held for the running transfer is not a new one: it is not dropped at the cap', T, async () => {
      const watch = warnings();
      const srv = await startServer({ pump, root, log: watch.log, timeoutMs: NO_RETRANSMIT_MS, limits: { maxTransfers: 1, maxTransfersPerClient: 1 } });
      const client = await RawClient.open('127.0.4.1');
      try {
        const rrq = encodeRequest(Opcode.RRQ, 'medium.bin', 'octet', [['blksize', '1024']]);
        await client.send(rrq, srv.port);
        const oack = await client.recv();
        assert.equal(oack.packet.opcode, Opcode.OACK);
        await client.send(rrq, srv.port); // a ROM that repeats its request: held, not dropped
        await client.send(encodeError(TftpErrorCode.OptionNegotiation, 'tsize probe'), oack.rinfo.port);
        const again = await client.recv();
        assert.equal(again.packet.opcode, Opcode.OACK);
        assert.notEqual(again.rinfo.port, oack.rinfo.port);
        assert.equal(srv.server.stats().dropped, 0);
        assert.equal(watch.lines.length, 0);
      } finally {
        await srv.stop();
        await client.close();
      }
    });

    it('refuses a FIFO in the root at once, many times over, and keeps serving the files next to it', T, async () => {
      const srv = await startServer({ pump, root, timeoutMs: NO_RETRANSMIT_MS });
      try {
        // Far more than libuv's four file-system threads: each blocking open used to take one for good.
        for (let i = 0; i < 20; i++) {
          const client = await RawClient.open();
          await client.send(encodeRequest(Opcode.RRQ, 'fifo', 'octet'), srv.port);
          assert.match(expectError(await client.recv(), TftpErrorCode.AccessViolation), /not a regular file/);
          await client.close();
        }
        const d = await download(srv.port, 'small.bin');
        assert.equal(sha256(d.data), sha256(small));
      } finally {
        await srv.stop();
      }
    });
  });
}

/** The process's open file descriptors and threads, from /proc. */
function resources(pid: number): { fds: number; threads: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { fds: readdirSync(`/proc/${pid}/fd`).length, threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1]) };
}

describe('forseti serve tftp under a burst of unacknowledged requests', () => {
  for (const pump of ['native', 'js'] as const) {
    it(`keeps transfers, file descriptors and threads within the caps (--pump ${pump})`, T, async () => {
      const srv = await startServe(['tftp', '--root', root, '--listen', '127.0.0.1:0', '--pump', pump, '--timeout-ms', '60000',
        '--max-transfers', '20', '--max-transfers-per-client', '4']);
      const pid = srv.child.pid ?? 0;
      const clients: RawClient[] = [];
      try {
        const listening = await srv.waitFor((l) => / serving /.test(l.msg), 'the server\'s listening line');
        assert.deepEqual([listening['maxTransfers'], listening['maxTransfersPerClient']], [20, 4]);
        // Warm-up: the first file opened starts libuv's file-system threads.
        for (let i = 0; i < 2; i++) assert.equal(sha256((await download(srv.port, 'small.bin')).data), sha256(small));
        await until(() => srv.lines.filter((l) => l.file === 'small.bin').length === 2);
        const baseline = resources(pid);

        // 300 requests, 5 from each of 60 addresses, none ever acknowledged.
        for (let a = 0; a < 60; a++) for (let p = 0; p < 5; p++) clients.push(await RawClient.open(`127.0.5.${a + 1}`));
        for (const c of clients) await c.send(encodeRequest(Opcode.RRQ, 'medium.bin', 'octet'), srv.port);
        await until(() => clients.filter((c) => c.pending > 0).length === 20);
        await srv.waitFor((l) => l['cap'] === 'global', 'the global cap line');
        const peak = resources(pid);
        // Each transfer holds its socket and its file; nothing else grows.
        assert.ok(peak.fds <= baseline.fds + 2 * 20, `fds: ${baseline.fds} before, ${peak.fds} during the burst`);
        assert.ok(peak.threads <= baseline.threads, `threads: ${baseline.threads} before, ${peak.threads} during the burst`);
        const capLines = srv.lines.filter((l) => l['cap'] !== undefined);
        assert.deepEqual(capLines.map((l) => l['cap']).sort(), ['global', 'per-client'], 'one line per cap, not one per request');

        // The 20 running transfers end: everything they held is released.
        const accepted = clients.filter((c) => c.pending > 0);
        for (const c of accepted) await c.send(encodeError(TftpErrorCode.NotDefined, 'gone'), (await c.recv()).rinfo.port);
        await until(() => srv.lines.filter((l) => l.file === 'medium.bin').length === 20);
        await until(() => resources(pid).fds <= baseline.fds);
        assert.ok(clients.every((c) => c.pending === 0), 'a dropped request was answered');
      } finally {
        await Promise.all(clients.map((c) => c.close()));
        await srv.stop();
      }
    });
  }
});

describe('forseti serve tftp cap flags', () => {
  it('refuses a cap that is not a whole number of at least 1, naming the flag', () => {
    for (const [flag, value] of [['--max-transfers', '0'], ['--max-transfers-per-client', 'many']] as const) {
      const r = spawnSync(process.execPath, ['bin/forseti.js', 'serve', 'tftp', '--root', root, '--listen', '127.0.0.1:0', flag, value], { cwd: REPO_ROOT, encoding: 'utf8' });
      assert.equal(r.status, 2);
      assert.match(r.stderr, new RegExp(`${flag} must be an integer from 1 to 1000000`));
    }
  });
});

describe('agent config serve.tftp', () => {
  let dir: string;
  let done: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup: done } = await makeTempDir('ftftp-config-'));
    await mkdir(path.join(dir, 'state'));
  });
  after(() => done());

  const load = async (tftp: string) => {
    const file = path.join(dir, `agent-${randomBytes(4).toString('hex')}.yaml`);
    await writeFile(file, `lab: {url: http://127.0.0.1:1/lab.git}\nstateDir: ./state\nserve: {tftp: ${tftp}}\n`);
    return loadAgentConfig(file);
  };

  it('takes true, false, or a mapping of caps (which serves TFTP)', async () => {
    assert.deepEqual([(await load('true')).serve.tftp, (await load('true')).serve.tftpLimits], [true, undefined]);
    assert.equal((await load('false')).serve.tftp, false);
    const capped = await load('{maxTransfers: 200, maxTransfersPerClient: 2}');
    assert.deepEqual([capped.serve.tftp, capped.serve.tftpLimits], [true, { maxTransfers: 200, maxTransfersPerClient: 2 }]);
  });

  it('refuses caps that are not whole numbers of at least 1, and unknown settings', async () => {
    await assert.rejects(load('{maxTransfers: 0}'), /serve\.tftp\.maxTransfers must be a whole number of at least 1/);
    await assert.rejects(load('{maxTransfersPerClient: 2.5}'), /serve\.tftp\.maxTransfersPerClient must be a whole number/);
    await assert.rejects(load('{maxTransfer: 5}'), /serve\.tftp\.maxTransfer is not a setting/);
    await assert.rejects(load('yes please'), /serve\.tftp must be true, false or a mapping/);
  });
});
