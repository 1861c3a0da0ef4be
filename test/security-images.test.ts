// Issue 11, items 1 and 4, against the real agent (in process, real Git server) and the real CLI: no commit can
// publish a file through an image, and no image, FIFO or dead peer can wedge the agent.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants, existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Agent } from '../src/agent/agent.ts';
import { createLogger } from '../src/log.ts';
import type { StatusView } from '../src/status/status-view.ts';
import { commitFiles, createBareRepo, readBranchFiles, revertCommit, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { waitForStatus } from './e2e/status-branch.ts';
import { fetchStatus, loopbackAgentConfig, loopbackLabFiles, writeTree } from './fixtures/loopback-lab.ts';
import { freeTcpPort, imageFile, MiB, slowImageServer, type SlowImageServer } from './fixtures/security-images.ts';

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const SECRET = 'root:$6$rounds=5000$forseti$c2VjcmV0LW5ldmVyLXB1Ymxpc2hlZA:19000:0:99999:7:::\n';
const SECRET_SHA = sha(SECRET);

let dir = '';
let git: GitServer;
let agent: Agent;
let base = '';
let images: SlowImageServer;
let alerts: Server;
const alertBodies: string[] = [];
const logLines: string[] = [];
const ZEROS = '0'.repeat(64);

const host = (role: string): string =>
  `apiVersion: forseti/v1\nkind: Host\nname: hand\nmacs: ['02:00:00:00:0b:01']\nip: 127.0.0.71\nbmc: {type: manual}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: ${role}\n`;
const profile = (name: string, image: string): string => `apiVersion: forseti/v1\nkind: Profile\nname: ${name}\nboot: {image: ${image}, cmdline: "console=ttyS0"}\n`;

/** One commit that gives host `hand` the role `test`, booting image `name` from `url`. */
function roleWithImage(name: string, url: string, sha256: string, download = ''): Record<string, string> {
  return {
    [`images/${name}.yaml`]: imageFile(name, url, sha256, download),
    'profiles/test.yaml': profile('test', name),
    'hosts/hand.yaml': host('test'),
  };
}

async function commitAndPoll(files: Record<string, string | null>, message: string): Promise<string> {
  const commit = await commitFiles(git, 'lab', 'main', files, message);
  await agent.poll();
  return commit;
}

const status = (): Promise<StatusView> => fetchStatus(base);

/** Every place a semi-trusted reader could look: the status branch, the API, the alerts, and the log besides. */
async function everywhere(): Promise<string> {
  const branch = Object.values(await readBranchFiles(git, 'lab', 'forseti-status')).join('\n');
  return [branch, JSON.stringify(await status()), ...alertBodies, ...logLines].join('\n');
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forseti-sec-images-'));
  await mkdir(join(dir, 'etc'));
  await writeFile(join(dir, 'etc', 'shadow'), SECRET, { mode: 0o600 });
  images = await slowImageServer();
  alerts = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      alertBodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((r) => alerts.listen(0, '127.0.0.1', r));
  const httpPort = await freeTcpPort();
  base = `http://127.0.0.1:${httpPort}`;
  const lab = await loopbackLabFiles(dir, { http: httpPort, tftp: 1 });
  const site = `${lab['site.yaml'] ?? ''}alerts: {sinks: [{name: ops, type: webhook, url: 'http://127.0.0.1:${(alerts.address() as AddressInfo).port}/'}]}\n`;
  const seed = join(dir, 'seed');
  await writeTree(seed, { ...lab, 'site.yaml': site, 'hosts/hand.yaml': host('worker') });
  git = await startGitServer();
  await createBareRepo(git, 'lab', seed);
  const config = await loopbackAgentConfig(dir, git.repoUrl('lab'), { tftp: false });
  config.serve.ipxeDir = join(dir, 'ipxe');
  await mkdir(config.serve.ipxeDir);
  spawnSync('mkfifo', [join(config.serve.ipxeDir, 'ipxe.efi')]);
  await writeFile(join(config.serve.ipxeDir, 'snponly.efi'), 'snp');
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  agent = new Agent(config, createLogger({ level: 'debug', destination: sink }));
  await agent.start();
});

after(async () => {
  await agent?.stop();
  await images?.close();
  alerts?.closeAllConnections();
  alerts?.close();
  await git?.close();
  await rm(dir, { recursive: true, force: true });
});

test('file:// exfiltration over two commits: refused by path, never read, nothing served, its digest nowhere', { timeout: 180_000 }, async () => {
  const good = agent.current?.revision ?? '';
  assert.match(good, /^[0-9a-f]{40}$/);
  const shadow = pathToFileURL(join(dir, 'etc', 'shadow')).href;

  const probe = await commitAndPoll(roleWithImage('leak', shadow, ZEROS), 'an image from /etc/shadow with a made-up digest');
  let view = await status();
  assert.equal(view.site?.rejected?.revision, probe);
  assert.equal(view.revision, good, 'the last good commit keeps serving');
  assert.match(view.site?.rejected?.errors.join('\n') ?? '', /image leak: file:\/\/\S+\/etc\/shadow refused: outside the agent's image file roots \(images\.fileRoots\)/);

  // The second commit knows the right digest (from wherever): still refused by its path.
  const exact = await commitAndPoll(roleWithImage('leak', shadow, SECRET_SHA), 'the same with its real digest');
  view = await status();
  assert.equal(view.site?.rejected?.revision, exact);
  assert.match(view.site?.rejected?.errors.join('\n') ?? '', /refused: outside the agent's image file roots/);

  // A symlink in the operator's mirror that points out of it is refused too, by its real path.
  await symlink(join(dir, 'etc', 'shadow'), join(dir, 'mirror', 'escape'));
  const viaLink = await commitAndPoll(roleWithImage('leak', pathToFileURL(join(dir, 'mirror', 'escape')).href, SECRET_SHA), 'through a symlink in the mirror');
  view = await status();
  assert.equal(view.site?.rejected?.revision, viaLink);
  assert.match(view.site?.rejected?.errors.join('\n') ?? '', /resolves outside the agent's image file roots/);

  assert.equal((await fetch(`${base}/images/${SECRET_SHA}/vmlinuz`)).status, 404, 'nothing is served under the secret digest');
  assert.equal(existsSync(join(dir, 'state', 'images', SECRET_SHA)), false);
  await waitForStatus(git, 'lab', (s) => s.site?.rejected?.revision === viaLink, 60_000, 'the last rejection on the status branch');
  await waitUntil(() => alertBodies.filter((b) => b.includes('commit-rejected')).length >= 3, 'three commit-rejected alerts');
  const seen = await everywhere();
  assert.ok(seen.includes(probe.slice(0, 12)) && seen.includes('outside the agent'), 'the places searched do carry the rejections');
  assert.ok(!seen.includes(SECRET_SHA), 'the secret digest is nowhere');
  assert.ok(!seen.includes('c2VjcmV0LW5ldmVyLXB1Ymxpc2hlZA'), 'no byte of the file anywhere');

  const fixed = await commitAndPoll({ 'images/leak.yaml': null, 'profiles/test.yaml': null, 'hosts/hand.yaml': host('worker') }, 'back to worker');
  assert.equal((await status()).revision, fixed);
});

test('a FIFO image is refused without being opened; the revert after it applies while the FIFO has no writer', { timeout: 120_000 }, async () => {
  const fifo = join(dir, 'mirror', 'fifo-kernel');
  spawnSync('mkfifo', [fifo]);
  const bad = await commitAndPoll(roleWithImage('pipe', pathToFileURL(fifo).href, ZEROS), 'a kernel from a FIFO');
  const view = await status();
  assert.equal(view.site?.rejected?.revision, bad);
  assert.match(view.site?.rejected?.errors.join('\n') ?? '', /image pipe: cannot fetch file:\/\/\S+fifo-kernel: not a regular file/);
  const reverted = await revertCommit(git, 'lab', 'main', bad);
  await agent.poll();
  assert.equal((await status()).revision, reverted, 'the revert is applied');
  // Nobody holds the FIFO open for reading: a writer that will not wait is told there is no reader.
  assert.throws(() => openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK), /ENXIO/);
});

test('an image that hangs is abandoned for the revert that follows it; /healthz stays ok within its bound', { timeout: 120_000 }, async () => {
  const hung = await commitFiles(git, 'lab', 'main', roleWithImage('hung', `${images.url}/stalled`, ZEROS, 'download: {idleTimeoutSeconds: 600, totalTimeoutSeconds: 3600}\n'), 'an image server that never answers');
  const first = agent.poll();
  await images.waitFor('/stalled');
  const health = await fetch(`${base}/healthz`);
  assert.equal(health.status, 200, await health.text());
  const reverted = await revertCommit(git, 'lab', 'main', hung);
  await agent.poll();
  await first;
  const view = await status();
  assert.equal(view.revision, reverted, 'the revert took effect while the image still hung');
  assert.equal(view.site?.reconciles?.find((r) => r.revision === hung)?.result, 'interrupted');
  await images.waitForClose('/stalled');
});

test('a trickling, a stalled and an endless image are rejected with their reasons; the next commit applies', { timeout: 120_000 }, async () => {
  const cases: Array<[string, string, RegExp]> = [
    ['/trickle', 'download: {totalTimeoutSeconds: 2}\n', /image slow: cannot fetch \S+\/trickle: not complete within 2 s \(download\.totalTimeoutSeconds\)/],
    ['/stalled', 'download: {idleTimeoutSeconds: 1}\n', /image slow: cannot fetch \S+\/stalled: no data for 1 s \(download\.idleTimeoutSeconds\)/],
    ['/endless', 'download: {maxMiB: 1}\n', /image slow: cannot fetch \S+\/endless: larger than the cap of 1 MiB \(download\.maxMiB\)/],
  ];
  for (const [path, download, reason] of cases) {
    const commit = await commitAndPoll(roleWithImage('slow', `${images.url}${path}`, ZEROS, download), `image from ${path}`);
    const view = await status();
    assert.equal(view.site?.rejected?.revision, commit, path);
    assert.match(view.site?.rejected?.errors.join('\n') ?? '', reason);
  }
  assert.ok(images.bytesSent('/endless') >= MiB, 'the endless body was read up to the cap');
  const fixed = await commitAndPoll({ 'images/slow.yaml': null, 'profiles/test.yaml': null, 'hosts/hand.yaml': host('worker') }, 'back to worker');
  assert.equal((await status()).revision, fixed);
});

test('an image asking for more than the agent allows is refused by name', { timeout: 60_000 }, async () => {
  const greedy = await commitAndPoll(roleWithImage('greedy', `${images.url}/endless`, ZEROS, 'download: {maxMiB: 1000000}\n'), 'a terabyte image');
  const view = await status();
  assert.equal(view.site?.rejected?.revision, greedy);
  assert.match(view.site?.rejected?.errors.join('\n') ?? '', /image greedy: download\.maxMiB 1000000 is above the agent's ceiling of 16384 \(images\.ceiling\.maxMiB in the agent config\)/);
  assert.equal(images.requests('/endless'), 1, 'the refused image was not fetched at all');
  await commitAndPoll({ 'images/greedy.yaml': null, 'profiles/test.yaml': null, 'hosts/hand.yaml': host('worker') }, 'back to worker');
});

test('an image on a guarded address (another loopback, link-local, an open or a closed port) is "not allowed" on the status branch, nothing more', { timeout: 120_000 }, async () => {
  // The agent config allows 127.0.0.1 (the image server); 127.0.0.2 and 169.254.169.254 are guarded by default.
  const urls = ['http://127.0.0.2:1/admin', `http://127.0.0.2:${new URL(images.url).port}/unused`, 'http://169.254.169.254/latest/meta-data/'];
  for (const url of urls) {
    const probe = await commitAndPoll(roleWithImage('probe', url, ZEROS), `probe ${url}`);
    const view = await status();
    assert.equal(view.site?.rejected?.revision, probe);
    assert.deepEqual(view.site?.rejected?.errors, [`image probe: ${url} refused: not allowed (images.httpAllow of the agent config)`]);
  }
  const branch = await waitForStatus(git, 'lab', (s) => s.site?.rejected?.errors.join('') === `image probe: ${urls.at(-1)} refused: not allowed (images.httpAllow of the agent config)`, 60_000, 'the last probe on the status branch');
  assert.ok(branch);
  assert.ok(!(await everywhere()).match(/ECONNREFUSED|HTTP 4\d\d.*127\.0\.0\.2/), 'no network error code or status of a guarded address anywhere');
  await commitAndPoll({ 'images/probe.yaml': null, 'profiles/test.yaml': null, 'hosts/hand.yaml': host('worker') }, 'back to worker');
});

test('a FIFO in serve.ipxeDir or in the image cache, asked for again and again, blocks nothing', { timeout: 60_000 }, async () => {
  const unused = sha('never downloaded');
  await commitAndPoll({ 'images/unused.yaml': imageFile('unused', `${images.url}/unused`, unused) }, 'an image no host uses');
  spawnSync('mkfifo', [join(dir, 'state', 'images', unused)]);
  for (let i = 0; i < 24; i++) {
    assert.equal((await fetch(`${base}/ipxe.efi`, { signal: AbortSignal.timeout(20_000) })).status, 404);
    assert.equal((await fetch(`${base}/images/${unused}/vmlinuz`, { signal: AbortSignal.timeout(20_000) })).status, 404);
  }
  const snp = await fetch(`${base}/snponly.efi`, { signal: AbortSignal.timeout(20_000) });
  assert.equal(snp.status, 200);
  assert.equal(await snp.text(), 'snp');
  const kernel = await fetch(`${base}/images/${sha('kernel')}/vmlinuz`, { signal: AbortSignal.timeout(20_000) });
  assert.equal(await kernel.text(), 'kernel');
});

async function waitUntil(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 600 && !done(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(done(), `never: ${what}`);
}
