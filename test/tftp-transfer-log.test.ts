// The agent's line per TFTP transfer: info when it completed, warn with the reason when it failed, except the
// failures that are part of a normal boot (a PXE ROM's size probe) or of the agent's own shutdown.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { logTftpTransfer } from '../src/serve/boot-services.ts';
import type { TftpTransferEvent } from '../src/serve/tftp/index.ts';
import { encodeAck, encodeError, encodeRequest, Opcode } from '../src/serve/tftp/packet.ts';
import { makeTempDir, RawClient, startServer, writeRandomFile, type RunningServer } from './fixtures/tftp/harness.ts';
import path from 'node:path';

function levelOf(e: TftpTransferEvent): { level: string; msg: string } {
  const lines: Array<{ level: string; msg: string }> = [];
  logTftpTransfer({ info: (_o, msg) => lines.push({ level: 'info', msg }), warn: (_o, msg) => lines.push({ level: 'warn', msg }) }, e);
  assert.equal(lines.length, 1);
  return lines[0] as { level: string; msg: string };
}

describe('agent log line per TFTP transfer, from real transfer events', () => {
  let srv: RunningServer;
  let cleanup: () => Promise<void>;
  before(async () => {
    const tmp = await makeTempDir('forseti-tftp-log-');
    cleanup = tmp.cleanup;
    await writeRandomFile(path.join(tmp.dir, 'ipxe.efi'), 3000);
    srv = await startServer({ root: tmp.dir, retries: 0, timeoutMs: 200 });
  });
  after(async () => {
    await srv.stop();
    await cleanup();
  });

  it('a completed transfer is info', async () => {
    const client = await RawClient.open();
    await client.send(encodeRequest(Opcode.RRQ, 'ipxe.efi', 'octet'), srv.port);
    for (let block = 1; ; block++) {
      const { packet, rinfo } = await client.recv();
      assert.equal(packet.opcode, Opcode.DATA);
      await client.send(encodeAck(block), rinfo.port);
      if (packet.opcode === Opcode.DATA && packet.data.length < 512) break;
    }
    await client.close();
    const e = await srv.nextEvent();
    assert.equal(e.ok, true);
    assert.deepEqual(levelOf(e), { level: 'info', msg: 'tftp transfer' });
  });

  it('a missing file is a warning that names the reason', async () => {
    const client = await RawClient.open();
    await client.send(encodeRequest(Opcode.RRQ, 'undionly.kpxe', 'octet'), srv.port);
    await client.recv();
    await client.close();
    const e = await srv.nextEvent();
    assert.equal(e.failure, 'not-found');
    const line = levelOf(e);
    assert.equal(line.level, 'warn');
    assert.match(line.msg, /tftp transfer failed: "undionly.kpxe" not found/);
  });

  it('a size probe (tsize, then the client aborts after the OACK) is info; a client that stops answering is a warning', async () => {
    const probe = await RawClient.open();
    await probe.send(encodeRequest(Opcode.RRQ, 'ipxe.efi', 'octet', [['tsize', '0']]), srv.port);
    const oack = await probe.recv();
    assert.equal(oack.packet.opcode, Opcode.OACK);
    await probe.send(encodeError(8, 'size probe done'), oack.rinfo.port);
    await probe.close();
    const aborted = await srv.nextEvent();
    assert.equal(aborted.failure, 'client-abort');
    assert.equal(levelOf(aborted).level, 'info');

    const silent = await RawClient.open();
    await silent.send(encodeRequest(Opcode.RRQ, 'ipxe.efi', 'octet'), srv.port);
    await silent.recv(); // block 1, never acknowledged
    const timedOut = await srv.nextEvent();
    await silent.close();
    assert.equal(timedOut.failure, 'timeout');
    const line = levelOf(timedOut);
    assert.equal(line.level, 'warn');
    assert.match(line.msg, /no ACK after 0 retransmissions/);
  });
});
