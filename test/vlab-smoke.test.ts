// Boots one virtual machine end to end through the vlab: real ipmi_sim BMC + ipmitool, real iPXE NIC ROM,
// Debian kernel + busybox initramfs that phones home. A throwaway DHCP/HTTP responder stands in for the agent.
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureGuestAssets, startVlab, type Vlab } from './vlab/index.ts';

const skipReason =
  process.getuid?.() !== 0 ? 'needs root (network namespaces, taps)' : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun' : false;

const NODE = 'smoke1';
const MAC = '52:54:00:77:00:01';
const ROLE = 'smoke-role';
const TOKEN = 'smoke-token-0123456789';

interface ResponderEvent {
  event: string;
  [key: string]: unknown;
}

function collectEvents(child: ChildProcess): { events: ResponderEvent[]; ready: Promise<void> } {
  const events: ResponderEvent[] = [];
  let buffered = '';
  let stderr = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'ready') resolve();
        else if (line.startsWith('{')) events.push(JSON.parse(line) as ResponderEvent);
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`smoke responder exited with ${code}: ${stderr}`)));
  });
  return { events, ready };
}

/** PIDs whose command line mentions `needle` (the run's work dir is in every QEMU and ipmi_sim command line). */
function processesMentioning(needle: string): number[] {
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle);
    } catch {
      return false;
    }
  }).map(Number);
}

test('vlab boots one guest through BMC, iPXE and phone-home', { skip: skipReason, timeout: 600_000 }, async (t) => {
  const assets = await ensureGuestAssets();
  const vlab: Vlab = await startVlab({ nodes: [{ name: NODE, mac: MAC }] });
  t.after(() => vlab.stop());
  const [node] = vlab.nodes;
  assert.ok(node);
  const workDir = node.dir.replace(/\/nodes\/[^/]+$/, '');

  const responder = vlab.spawn('node', ['--import', 'tsx', 'test/vlab/smoke-responder.ts', JSON.stringify({
    serverAddress: vlab.agentAddress, broadcastAddress: '10.77.0.255', httpPort: 8088,
    kernel: assets.kernel, initrd: assets.initrd, role: ROLE, token: TOKEN,
  })], { stdio: ['ignore', 'pipe', 'pipe'] });
  const { events, ready } = collectEvents(responder);
  await ready;

  assert.match(await vlab.ipmitool(NODE, 'chassis', 'bootdev', 'pxe'), /Set Boot Device to pxe/);
  assert.match(await vlab.ipmitool(NODE, 'chassis', 'bootparam', 'get', '5'), /Force PXE/);
  const poweredOnAt = Date.now();
  await vlab.ipmitool(NODE, 'power', 'on');
  assert.match(await vlab.ipmitool(NODE, 'power', 'status'), /Chassis Power is on/);

  await vlab.waitForSerial(NODE, new RegExp(`VLAB-MARKER: BOOTED role=${ROLE}`), 240_000);
  const bootedAt = Date.now();
  const [marker] = await vlab.waitForSerial(NODE, /VLAB-MARKER: PHONE-HOME-(OK|FAILED)[^\n]*/, 120_000);
  t.diagnostic(`power on -> kernel init ${((bootedAt - poweredOnAt) / 1000).toFixed(1)} s, -> phone-home ${((Date.now() - poweredOnAt) / 1000).toFixed(1)} s`);
  assert.match(marker, new RegExp(`PHONE-HOME-OK role=${ROLE} mac=${MAC} ip=10\\.77\\.0\\.\\d+`));

  const phoneHomes = events.filter((event) => event.event === 'phone-home');
  assert.equal(phoneHomes.length, 1);
  assert.deepEqual(phoneHomes[0], {
    event: 'phone-home', authorization: `Bearer ${TOKEN}`, accepted: true,
    body: { role: ROLE, mac: MAC, ip: (/ip=(\S+)/.exec(marker) ?? [])[1] },
  });
  const dhcp = events.filter((event) => event.event === 'dhcp' && event.type === 'request');
  assert.ok(dhcp.some((event) => event.ipxe === true), 'iPXE asked for an address (user class iPXE)');
  assert.ok(dhcp.some((event) => event.ipxe === false && !String(event.vendorClass).startsWith('PXEClient')), 'the guest OS asked like an OS');

  await vlab.ipmitool(NODE, 'power', 'off');
  assert.match(await vlab.ipmitool(NODE, 'power', 'status'), /Chassis Power is off/);
  const powerLog = vlab.powerLog(NODE).join('\n');
  assert.match(powerLog, /bootdev=pxe\n.*power-on bootdev=pxe\n.*power-off/);

  await vlab.stop();
  assert.deepEqual(processesMentioning(workDir), [], 'no QEMU or ipmi_sim of this run is left');
  assert.equal(responder.exitCode !== null || responder.signalCode !== null, true, 'the responder was stopped');
  assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), new RegExp(`^${vlab.netns}\\b`, 'm'));
});

test('vlab forwards a root-namespace Unix socket into the namespace', { skip: skipReason, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-forward-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'git.sock');
  const server = createServer((socket) => socket.end('hello from the root namespace\n'));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.after(() => server.close());
  const vlab = await startVlab({ nodes: [] });
  t.after(() => vlab.stop());

  await vlab.forwardUnixSocket('127.0.0.1:9418', socketPath);
  const client = `require('node:net').connect(9418, '127.0.0.1').on('data', (d) => process.stdout.write(d))`;
  const result = await vlab.exec(process.execPath, ['-e', client]);
  assert.equal(result.stdout, 'hello from the root namespace\n', result.stderr);
  await vlab.stop();
  assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), new RegExp(`^${vlab.netns}\\b`, 'm'));
});
