// What the agent's TFTP server generates per host from the current generation: autoexec.ipxe (which ipxe.efi
// fetches from the TFTP server it came from before anything else) is the asking host's own script, found by
// its reserved address; boot.ipxe is the entry script; every other name comes from the TFTP root.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentBootBackend } from '../src/serve/boot-backend.ts';
import { generatedTftpFiles } from '../src/serve/boot-services.ts';
import { HostTracker } from '../src/observe/host-tracker.ts';
import { createLogger } from '../src/log.ts';
import { loadLab } from '../src/model/load.ts';
import type { Lab } from '../src/model/types.ts';
import { Journal } from '../src/observe/journal.ts';
import { writeGeneration, type Generation } from '../src/render/generation.ts';
import { ImageCache } from '../src/render/image-cache.ts';
import { fillTokenSlot, TOKEN_SLOT } from '../src/render/token.ts';
import { AgentUrls } from '../src/render/urls.ts';
import { encodeError, encodeRequest, Opcode } from '../src/serve/tftp/packet.ts';
import { withHostsAt } from './fixtures/as-host.ts';
import { download, RawClient, startServer, type RunningServer } from './fixtures/tftp/harness.ts';
import './fixtures/api-contract.ts';

const log = createLogger({ level: 'silent' });
const key = Buffer.alloc(32, 7);
const PRELUDE = '#!ipxe\nisset ${ip} || dhcp || goto forseti_no_address\n';

let state = '';
let lab: Lab;
let gen: Generation;
let tracker: HostTracker;
let backend: AgentBootBackend;

const generation = (l: Lab, dir: string): Promise<Generation> =>
  writeGeneration(join(state, dir), { lab: l, urls: new AgentUrls(l.site), revision: 'd'.repeat(40), token: () => TOKEN_SLOT });

before(async () => {
  state = await mkdtemp(join(tmpdir(), 'forseti-tftp-files-'));
  const loaded = await loadLab('lab-repo-template');
  assert.ok(loaded.lab);
  lab = loaded.lab;
  gen = await generation(lab, 'a');
  tracker = new HostTracker(new Journal(join(state, 'journal.json')), log);
  backend = new AgentBootBackend(() => gen, tracker, new ImageCache(join(state, 'images'), log), key, log);
});
after(() => rm(state, { recursive: true, force: true }));

/** The script an autoexec.ipxe runs once it has an address. */
function body(autoexec: string | undefined): string {
  assert.ok(autoexec?.startsWith(PRELUDE), autoexec);
  if (autoexec === undefined) return assert.fail();
  return autoexec.slice(autoexec.indexOf(':forseti_script\n') + ':forseti_script\n'.length);
}

describe('AgentBootBackend.tftpFile', () => {
  it('autoexec.ipxe for a host\'s address takes an address by DHCP if it has none, then runs that host\'s install script', () => {
    const host = lab.hosts.get('bld-003');
    assert.ok(host);
    const file = backend.tftpFile('autoexec.ipxe', host.ip);
    assert.equal(file?.host, 'bld-003');
    assert.equal(body(file?.content), fillTokenSlot(gen.hosts.get('bld-003')?.script ?? '', '').replace(/^#!ipxe\n/, ''));
    assert.match(file?.content ?? '', /:forseti_no_address\necho forseti: DHCP gave no address; retrying in 10 s\nsleep 10\nreboot\n/);
  });

  it('answers as the HTTP script does: an installed host is sent to its disk', async () => {
    const host = lab.hosts.get('bld-006');
    const desired = gen.hosts.get('bld-006')?.desired;
    assert.ok(host && desired);
    await tracker.record('bld-006', { kind: 'provision-started', role: desired.role, digest: desired.digest, revision: desired.revision, nonce: 'n6' });
    await tracker.record('bld-006', { kind: 'phone-home', role: desired.role });
    assert.match(body(backend.tftpFile('autoexec.ipxe', host.ip)?.content), /is installed with role .*; booting from local disk\n/);
  });

  it('an address no host has gets the entry script, which finds the host by MAC; boot.ipxe is the entry script; other names are the root\'s', () => {
    const unknown = backend.tftpFile('autoexec.ipxe', '10.77.0.230');
    assert.equal(unknown?.host, undefined);
    assert.equal(body(unknown?.content), backend.entryScript().replace(/^#!ipxe\n/, ''));
    assert.deepEqual(backend.tftpFile('boot.ipxe', '10.77.0.230'), { content: backend.entryScript() });
    for (const name of ['ipxe.efi', 'undionly.kpxe', 'AUTOEXEC.IPXE', 'x/autoexec.ipxe']) assert.equal(backend.tftpFile(name, lab.hosts.get('bld-003')?.ip ?? ''), null, name);
  });
});

describe('the agent\'s TFTP server', () => {
  let root = '';
  let srv: RunningServer;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'forseti-tftp-root-'));
    await writeFile(join(root, 'ipxe.efi'), 'MZ pretend this is ipxe.efi');
    await writeFile(join(root, 'autoexec.ipxe'), '#!ipxe\necho a stale file in the root is never served\n');
    srv = await startServer({ root, resolve: generatedTftpFiles(backend).resolve });
  });
  after(async () => {
    await srv.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('serves generated names from the generation current at each request, and files from the root', async () => {
    const autoexec = (await download(srv.port, 'autoexec.ipxe')).data.toString();
    assert.equal(body(autoexec), backend.entryScript().replace(/^#!ipxe\n/, ''));
    assert.match(autoexec, /chain http:\/\/10\.77\.0\.5:8080\/v1\/boot\/\$\{mac:hexhyp\}/);
    assert.equal((await download(srv.port, 'ipxe.efi', [['tsize', '0']])).data.toString(), 'MZ pretend this is ipxe.efi');

    // A commit moves the agent: the next request gets the new generation's script.
    const previous = gen;
    gen = await generation({ ...lab, site: { ...lab.site, agent: { ...lab.site.agent, address: '10.77.0.6' } } }, 'b');
    try {
      assert.match((await download(srv.port, 'boot.ipxe')).data.toString(), /chain http:\/\/10\.77\.0\.6:8080\/v1\/boot\//);
      assert.match((await download(srv.port, '/autoexec.ipxe', [['blksize', '1428']])).data.toString(), /chain http:\/\/10\.77\.0\.6:8080\/v1\/boot\//);
    } finally {
      gen = previous;
    }
  });
});

// Red-team finding 18: a TFTP request's source address can be forged, so the request alone must not move a host's
// steps. The DATA goes to the forged address; only the real client's ACKs complete the transfer.
describe('autoexec.ipxe counts as the script step only once its transfer completed', () => {
  const at = '127.0.0.44';
  let root = '';
  let srv: RunningServer;
  let hostTracker: HostTracker;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'forseti-tftp-step-'));
    const moved = await generation(withHostsAt(lab, { 'bld-003': at }), 'c');
    hostTracker = new HostTracker(new Journal(join(state, 'journal-step.json')), log);
    const stepBackend = new AgentBootBackend(() => moved, hostTracker, new ImageCache(join(state, 'images'), log), key, log);
    const files = generatedTftpFiles(stepBackend);
    srv = await startServer({ root, resolve: files.resolve, onTransfer: files.transferEnded });
    const desired = moved.hosts.get('bld-003')?.desired;
    assert.ok(desired);
    await hostTracker.record('bld-003', { kind: 'provision-started', role: desired.role, digest: desired.digest, revision: desired.revision, nonce: 'n3' });
  });
  after(async () => {
    await srv.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('a request "from" the host whose DATA the real host refuses (unknown transfer ID) moves nothing', async () => {
    const forged = await RawClient.open(at);
    try {
      await forged.send(encodeRequest(Opcode.RRQ, 'autoexec.ipxe', 'octet'), srv.port);
      const first = await forged.recv();
      assert.equal(first.packet.opcode, Opcode.DATA, 'the host\'s script went to its address');
      // What the real host's stack answers a DATA packet of a transfer it never asked for (RFC 1350, section 4).
      await new Promise<void>((resolve) => forged.socket.send(encodeError(5, 'Unknown transfer ID'), first.rinfo.port, '127.0.0.1', () => resolve()));
    } finally {
      await forged.close();
    }
    const event = await srv.nextEvent();
    assert.equal(event.ok, false);
    assert.equal(hostTracker.get('bld-003').step, 'requested');
  });

  it('the host\'s own download, acknowledged to the end, is its script step', async () => {
    const got = await download(srv.port, 'autoexec.ipxe', [], 'octet', at);
    assert.match(got.data.toString(), /forseti\.token=[0-9a-f]{32}/);
    assert.equal((await srv.nextEvent()).ok, true);
    for (let i = 0; i < 100 && hostTracker.get('bld-003').step !== 'script'; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(hostTracker.get('bld-003').step, 'script');
  });
});
