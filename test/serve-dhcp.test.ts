// `forseti serve dhcp` as a real process in a network namespace, answering the reservations of the
// template lab on the interface it is given; a DHCP client in a second namespace asks.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { LoadConfig, LoadResult } from '../bench/lib/dhcp-load.ts';
import { canUseNetns, createNetns, type Netns } from './fixtures/tftp/netns.ts';
import { REPO_ROOT, startServe, type ServeProcess } from './fixtures/tftp/serve-process.ts';

const skip = canUseNetns() ? undefined : 'needs root and ip netns';
const BLD_003 = '9c:8e:99:4a:10:03'; // 10.77.0.103 in lab-repo-template

describe('forseti serve dhcp', { ...(skip ? { skip } : {}), timeout: 60_000 }, () => {
  let server: Netns;
  let client: Netns;
  let srv: ServeProcess;

  before(async () => {
    server = createNetns('dhcp-s');
    client = createNetns('dhcp-c');
    const ip = (...args: string[]): void => void execFileSync('ip', args);
    ip('-n', server.name, 'link', 'add', 'srv0', 'type', 'veth', 'peer', 'name', 'cli0', 'netns', client.name);
    ip('-n', server.name, 'addr', 'add', '10.77.0.5/24', 'dev', 'srv0');
    ip('-n', server.name, 'link', 'set', 'srv0', 'up');
    // The client's plain UDP socket needs an address to receive the directed-broadcast reply and a
    // route for its 255.255.255.255 DISCOVERs; real clients use raw sockets instead.
    ip('-n', client.name, 'addr', 'add', '10.77.0.250/24', 'dev', 'cli0');
    ip('-n', client.name, 'link', 'set', 'cli0', 'up');
    ip('-n', client.name, 'route', 'add', '255.255.255.255', 'dev', 'cli0');
    srv = await startServe(['dhcp', '--lab', 'lab-repo-template', '--interface', 'srv0'], server.name);
  });
  after(async () => {
    await srv?.stop('SIGKILL');
    server?.destroy();
    client?.destroy();
  });

  function load(config: LoadConfig): Promise<LoadResult> {
    return new Promise((resolve, reject) => {
      execFile('ip', ['netns', 'exec', client.name, process.execPath, '--import', 'tsx', 'bench/lib/dhcp-load.ts', JSON.stringify(config)], { cwd: REPO_ROOT }, (err, stdout) =>
        err ? reject(err) : resolve(JSON.parse(stdout) as LoadResult));
    });
  }

  it('offers a reserved host its address, and firmware its iPXE binary; unknown MACs get nothing', async () => {
    const os = await load({ count: 1, concurrency: 1, macs: 1, macList: [BLD_003] });
    assert.deepEqual(os.offered[BLD_003], { ip: '10.77.0.103', file: '' });
    const pxe = await load({ count: 1, concurrency: 1, macs: 1, macList: [BLD_003], pxe: true });
    assert.deepEqual(pxe.offered[BLD_003], { ip: '10.77.0.103', file: 'undionly.kpxe' });
    const unknown = await load({ count: 2, concurrency: 2, macs: 2, timeoutMs: 300 });
    assert.equal(unknown.offers, 0);
    const line = await srv.waitFor((l) => l.bootFile === 'undionly.kpxe', 'the firmware offer line');
    assert.equal(line.msg, `dhcp ${BLD_003} (bld-003) discover from firmware: offer 10.77.0.103 boot undionly.kpxe`);
  });

  it('SIGTERM stops it; the process exits 0', async () => {
    assert.equal(await srv.stop('SIGTERM'), 0);
  });
});
