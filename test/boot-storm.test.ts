// A boot storm against forseti's own DHCP, TFTP and HTTP (`forseti serve dhcp|tftp|http`, real
// processes in a network namespace): 50 simulated PXE machines start together, each taking a lease,
// its boot file over TFTP, its script, kernel and initrd over HTTP (bench/lib/boot-storm-client.ts).
// Every machine must get its reserved address, no address may go to two machines, and every byte
// must be right. Correctness only: how fast is bench/boot-storm.bench.ts's business.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MachineResult, StormPlan } from '../bench/lib/boot-storm-client.ts';
import { BOOT_FILE, createStormNet, forsetiCommands, HTTP_PORT, SCRIPT_PATH, summarize, writeStormFiles, type StormFiles, type StormNet } from '../bench/lib/boot-storm-setup.ts';
import { canUseNetns } from './fixtures/tftp/netns.ts';
import { makeTempDir } from './fixtures/tftp/harness.ts';
import { spawnInNs, type NsProcess } from './fixtures/dhcp/netns.ts';
import { startServe, type ServeProcess } from './fixtures/tftp/serve-process.ts';

const MACHINES = 50;
const T = { timeout: 300_000 }; // safety net only

describe('boot storm: 50 PXE machines at once against forseti serve dhcp, tftp and http', { skip: !canUseNetns() && 'needs root and ip netns' }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let net: StormNet;
  let files: StormFiles;
  const services: ServeProcess[] = [];

  before(async () => {
    ({ dir, cleanup } = await makeTempDir('fstorm-'));
    net = createStormNet();
    // Small files: what is tested is that each machine gets the right ones, not how fast.
    files = await writeStormFiles(dir, MACHINES, { bootFile: 300_000, kernel: 1_000_000, initrd: 3_000_000 });
    const commands = forsetiCommands(files, net.serverIf, MACHINES);
    for (const service of ['dhcp', 'tftp', 'http'] as const) services.push(await startServe((commands[service]).slice(3), net.server));
  });

  after(async () => {
    for (const s of services) await s.stop();
    net?.destroy();
    await cleanup?.();
  });

  it('every machine gets its reserved address, no address twice, and the right bytes at every step', T, async () => {
    const plan: StormPlan = {
      machines: MACHINES, spreadMs: 1000, httpPort: HTTP_PORT, blksize: 1428, scriptPath: SCRIPT_PATH, expect: files.expect, digestEvery: 1,
    };
    const generator: NsProcess = spawnInNs(net.client, [process.execPath, '--import', 'tsx', 'bench/lib/boot-storm-client.ts', JSON.stringify(plan)]);
    const line = await generator.waitForLine((l) => l.startsWith('['), 'the storm\'s results', 240_000);
    const results = JSON.parse(line) as MachineResult[];
    const summary = summarize(results);
    assert.equal(summary.machines, MACHINES);
    assert.deepEqual(summary.errors, [], 'every machine boots');
    assert.equal(summary.failed, 0);
    assert.equal(summary.wrongAddress, 0, 'each machine has its reservation');
    assert.equal(summary.duplicateAddresses, 0);
    assert.ok(results.every((r) => ['dhcp', 'tftp', 'script', 'kernel', 'initrd'].every((s) => r.steps[s] !== undefined)));
    // The services saw it the same way: one TFTP transfer of the boot file per machine (its size probe aside).
    const tftp = services[1];
    assert.ok(tftp);
    const served = (): typeof tftp.lines => tftp.lines.filter((l) => l['file'] === BOOT_FILE && l['ok'] === true);
    await tftp.waitFor(() => served().length >= MACHINES, 'a log line per boot file transfer');
    assert.equal(served().length, MACHINES);
    assert.ok(served().every((l) => l['pump'] === 'native'));
  });
});
