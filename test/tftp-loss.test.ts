// TFTP under packet loss: inside a network namespace nftables drops 20 % of all UDP datagrams at
// random, and curl and atftp (lock-step and windowsize 16) download from `forseti serve tftp` at
// once. Each transfer either completes with the right sha256 or ends with an error, on its own:
// the clients get no deadline from the test, whose timeout is only a safety net. Once per pump
// (`--pump native`, `--pump js`): each server's log lines say which one moved the data.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, sha256, writeRandomFile } from './fixtures/tftp/harness.ts';
import { canUseNetns, createNetns, dropUdp, hasNft, stopDropping, type Netns } from './fixtures/tftp/netns.ts';
import { startServe, type ServeProcess } from './fixtures/tftp/serve-process.ts';

const SIZE = 30_000;
const LOSS_PERCENT = 20;

const skip = !canUseNetns() ? 'needs root and ip netns' : !hasNft() ? 'nftables (nft) is not installed' : undefined;

interface Outcome { name: string; code: number | null; output: string; file: string }

for (const pump of ['native', 'js'] as const) describe(`tftp with 20 % of UDP datagrams dropped (${pump} pump)`, { ...(skip ? { skip } : {}) }, () => {
  let ns: Netns;
  let dir: string;
  let cleanup: () => Promise<void>;
  let srv: ServeProcess;
  let data: Buffer;
  const children = new Set<ChildProcess>();

  before(async () => {
    ({ dir, cleanup } = await makeTempDir('htftp-loss-'));
    data = await writeRandomFile(path.join(dir, 'boot.bin'), SIZE);
    ns = createNetns(`loss-${pump}`, 'htftp');
    // The server waits 200 ms for an ACK and gives up after 10 tries: longer than the clients' own
    // 1 s retransmission timers, so a client that is still there always gets a chance to re-ACK.
    srv = await startServe(['tftp', '--root', dir, '--listen', '127.0.0.1:0', '--timeout-ms', '200', '--retries', '10', '--pump', pump], ns.name);
    dropUdp(ns, LOSS_PERCENT);
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await srv?.stop('SIGKILL');
    ns?.destroy();
    await cleanup?.();
  });

  function client(name: string, cmd: string, args: (out: string) => string[]): Promise<Outcome> {
    const file = path.join(dir, `out-${name}`);
    return new Promise((resolve) => {
      const child = spawn('ip', ['netns', 'exec', ns.name, cmd, ...args(file)]);
      children.add(child);
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr.on('data', (c: Buffer) => (output += c.toString()));
      child.on('exit', (code) => {
        children.delete(child);
        resolve({ name, code, output, file });
      });
    });
  }

  it('every transfer completes with the right sha256 or ends with an error by itself', { timeout: 120_000 }, async (t) => {
    const url = `tftp://127.0.0.1:${srv.port}/boot.bin`;
    // curl's --connect-timeout also sets its TFTP timers: it asks for a 1 s timeout and gives up after 3 silent ones.
    const curl = (n: string): Promise<Outcome> => client(n, 'curl', (out) => ['-sS', '--connect-timeout', '2', '--tftp-blksize', '1468', url, '-o', out]);
    const atftp = (n: string, ...opts: string[]): Promise<Outcome> =>
      client(n, 'atftp', (out) => ['--tftp-timeout', '1', '--option', 'blksize 1428', ...opts.flatMap((o) => ['--option', o]), '-g', '-r', 'boot.bin', '-l', out, '127.0.0.1', String(srv.port)]);
    const outcomes = await Promise.all([
      curl('curl-1'), curl('curl-2'), curl('curl-3'),
      atftp('atftp-1'), atftp('atftp-2'),
      atftp('atftp-w16-1', 'windowsize 16'), atftp('atftp-w16-2', 'windowsize 16'), atftp('atftp-w16-3', 'windowsize 16'),
    ]);
    const want = sha256(data);
    let completed = 0;
    for (const o of outcomes) {
      if (o.code === 0) {
        assert.equal(sha256(await readFile(o.file)), want, `${o.name} exited 0 with the wrong content:\n${o.output}`);
        completed++;
      } else {
        assert.ok(o.code !== null, `${o.name} was killed`);
        assert.ok(o.output.trim().length > 0, `${o.name} failed (exit ${o.code}) without saying why`);
      }
    }
    t.diagnostic(`${completed} of ${outcomes.length} transfers completed at ${LOSS_PERCENT} % loss; the others ended with an error`);
    // Every server-side transfer is reported as exactly one line: done, or failed with its reason.
    const transfers = srv.lines.filter((l) => l.file === 'boot.bin');
    for (const l of transfers) assert.ok(l.ok === true ? l.bytes === SIZE : typeof l.error === 'string' && l.error.length > 0, l.msg);
    // Every transfer that got as far as its data phase names the pump that moved it (the test after
    // this one checks a transfer without loss, which always does).
    for (const l of transfers.filter((t) => t.blksize !== undefined)) assert.equal(l.pump, pump, l.msg);
  });

  it('once the loss stops, the same server process serves the file intact', { timeout: 60_000 }, async () => {
    stopDropping(ns);
    const linesBefore = srv.lines.length;
    const o = await client('after', 'curl', (out) => ['-sS', '--tftp-blksize', '1468', `tftp://127.0.0.1:${srv.port}/boot.bin`, '-o', out]);
    assert.equal(o.code, 0, o.output);
    assert.equal(sha256(await readFile(o.file)), sha256(data));
    const done = await srv.waitFor((l) => l.file === 'boot.bin' && l.ok === true && l.client !== undefined && srv.lines.indexOf(l) >= linesBefore, 'the line of the transfer after the loss');
    assert.equal(done.pump, pump);
    assert.equal(await srv.stop('SIGTERM'), 0);
  });
});
