// `forseti image add` against a local HTTP server and a local stand-in for the Talos Image Factory: the real
// sha256 of what was served, each URL fetched once, bounded downloads, a progress bar only on a terminal.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { forseti, runCommand, SOURCE_CLI } from './fixtures/cli-run.ts';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const kernel = randomBytes(300_000);
const initrd = randomBytes(120_000);
const talosKernel = randomBytes(200_000);
const talosInitramfs = randomBytes(90_000);
const requests: string[] = [];
const schematics: string[] = [];
let server: Server;
let base = '';
let work = '';
let lab = '';

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'forseti-image-add-'));
  const init = await forseti(['init', join(work, 'lab'), '--subnet', '10.77.0.0/24', '--gateway', '10.77.0.1', '--agent-address', '10.77.0.5', '--interface', 'eno2', '--no-git']);
  assert.equal(init.code, 0, init.stderr);
  lab = join(work, 'lab');
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const url = req.url ?? '';
    if (req.method === 'POST' && url === '/schematics') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        schematics.push(body);
        res.writeHead(201, { 'Content-Type': 'application/json' }).end(JSON.stringify({ id: sha(body) }));
      });
      return;
    }
    const talos = /^\/image\/([0-9a-f]{64})\/v1\.10\.1\/(kernel-amd64|initramfs-amd64\.xz|cmdline-metal-amd64)$/.exec(url);
    if (talos) {
      const file = talos[2] === 'kernel-amd64' ? talosKernel : talos[2] === 'initramfs-amd64.xz' ? talosInitramfs : Buffer.from('talos.platform=metal console=ttyS0 init_on_alloc=1\n');
      res.writeHead(200, { 'Content-Length': file.length }).end(file);
      return;
    }
    if (url === '/vmlinuz') return void res.writeHead(200, { 'Content-Length': kernel.length }).end(kernel);
    if (url === '/initrd.img') return void res.writeHead(200).end(initrd);
    if (url === '/stall') {
      res.writeHead(200, { 'Content-Length': 1000 });
      res.write(Buffer.alloc(10));
      return; // and nothing more
    }
    if (url === '/big') return void res.writeHead(200, { 'Content-Length': 3 * 1024 * 1024 }).end(Buffer.alloc(3 * 1024 * 1024));
    if (url === '/big-chunked') {
      res.writeHead(200);
      for (let i = 0; i < 3; i++) res.write(Buffer.alloc(1024 * 1024));
      return void res.end();
    }
    res.writeHead(404).end('no\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(work, { recursive: true, force: true });
});

const image = (name: string): string => readFileSync(join(lab, 'images', `${name}.yaml`), 'utf8');

test('URLs: the real sha256 of each file, each URL fetched once, plain progress lines off a terminal', async () => {
  requests.length = 0;
  const initrdFile = join(work, 'initrd.local');
  writeFileSync(initrdFile, initrd);
  const run = await forseti(['image', 'add', 'debian-12', `${base}/vmlinuz`, `${base}/initrd.img`, pathToFileURL(initrdFile).href, `${base}/initrd.img`, '--lab', lab]);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(requests, ['GET /vmlinuz', 'GET /initrd.img']);
  const text = image('debian-12');
  assert.match(text, /^# yaml-language-server: \$schema=\.\.\/schemas\/image\.schema\.json\napiVersion: forseti\/v1\nkind: Image\nname: debian-12\n/);
  assert.ok(text.includes(`kernel:\n  url: ${base}/vmlinuz\n  sha256: ${sha(kernel)}\n`), text);
  assert.ok(text.includes(`initrds:\n  - url: ${base}/initrd.img\n    sha256: ${sha(initrd)}\n  - url: ${pathToFileURL(initrdFile).href}\n    sha256: ${sha(initrd)}\n  - url: ${base}/initrd.img\n    sha256: ${sha(initrd)}\n`), text);
  assert.match(run.stderr, new RegExp(`^kernel: 300000 bytes, sha256 ${sha(kernel)}$`, 'm'));
  assert.ok(!run.stderr.includes('\r'), 'no bar off a terminal');
  assert.equal((await forseti(['validate', lab])).code, 0);
});

test('Talos: extensions become a schematic through POST /schematics, then the factory\'s kernel and initramfs', async () => {
  requests.length = 0;
  const run = await forseti(['image', 'add', 'talos', '--talos', 'v1.10.1', '--extension', 'siderolabs/intel-ucode', '--extension', 'siderolabs/bnx2', '--factory', base, '--lab', lab]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(schematics.length, 1);
  assert.equal(schematics[0], 'customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/bnx2\n      - siderolabs/intel-ucode\n');
  const id = sha(schematics[0] ?? '');
  const text = image('talos');
  assert.ok(text.includes(`kernel:\n  url: ${base}/image/${id}/v1.10.1/kernel-amd64\n  sha256: ${sha(talosKernel)}\n`), text);
  assert.ok(text.includes(`initrd:\n  url: ${base}/image/${id}/v1.10.1/initramfs-amd64.xz\n  sha256: ${sha(talosInitramfs)}\n`), text);
  assert.match(text, new RegExp(`schematic ${id}: siderolabs/bnx2, siderolabs/intel-ucode`));
  assert.match(text, /kernel arguments for bare metal .*: talos\.platform=metal console=ttyS0 init_on_alloc=1/);
  assert.equal((await forseti(['validate', lab])).code, 0);

  requests.length = 0;
  const given = await forseti(['image', 'add', 'talos-plain', '--talos', 'v1.10.1', '--schematic', id, '--factory', base, '--lab', lab]);
  assert.equal(given.code, 0, given.stderr);
  assert.ok(!requests.some((r) => r.startsWith('POST')), 'a given schematic is not created again');
  const both = await forseti(['image', 'add', 'x', '--talos', 'v1.10.1', '--schematic', id, '--extension', 'siderolabs/bnx2', '--factory', base, '--lab', lab]);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /either --schematic or --extension/);
  assert.match((await forseti(['image', 'add', 'x', '--talos', '1.10', '--factory', base, '--lab', lab])).stderr, /looks like v1\.10\.1/);
});

test('downloads are bounded: size cap (declared or streamed), silence, HTTP errors; nothing is written', async () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['big', [`${base}/big`, '--max-size', '1'], /3145728 bytes, larger than the limit of 1048576/],
    ['chunked', [`${base}/big-chunked`, '--max-size', '1'], /larger than the limit of 1048576 bytes/],
    ['stall', [`${base}/stall`, '--timeout', '1'], /no data for 1 s/],
    ['missing', [`${base}/missing`], /HTTP 404/],
    ['scheme', ['ftp://127.0.0.1/vmlinuz'], /http:\/\/, https:\/\/ or file:\/\/ URL/],
  ];
  for (const [name, args, error] of cases) {
    const run = await forseti(['image', 'add', name, ...args, '--lab', lab]);
    assert.notEqual(run.code, 0, name);
    assert.match(run.stderr, error, name);
    assert.equal(existsSync(join(lab, 'images', `${name}.yaml`)), false, `${name}: nothing written`);
  }
});

test('an existing image file is kept unless --force', async () => {
  const before = image('debian-12');
  const refused = await forseti(['image', 'add', 'debian-12', `${base}/vmlinuz`, '--lab', lab]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /exists; add --force/);
  assert.equal(image('debian-12'), before);
  assert.equal((await forseti(['image', 'add', 'debian-12', `${base}/vmlinuz`, '--lab', lab, '--force'])).code, 0);
  assert.doesNotMatch(image('debian-12'), /initrd/);
});

test('lab files are read through the tree reader: a link to /dev/zero, a FIFO or a link out of the lab is neither read nor written through', async () => {
  const dir = mkdtempSync(join(work, 'hostile-'));
  const init = await forseti(['init', join(dir, 'lab'), '--subnet', '10.77.0.0/24', '--gateway', '10.77.0.1', '--agent-address', '10.77.0.5', '--interface', 'eno2', '--no-git']);
  assert.equal(init.code, 0, init.stderr);
  const hostile = join(dir, 'lab');
  const outside = join(dir, 'outside.txt');
  writeFileSync(outside, 'not the lab\n');
  rmSync(join(hostile, 'images'), { recursive: true, force: true });
  mkdirSync(join(hostile, 'images'));
  // the first image file (by name) is what image add reads the $schema line from
  symlinkSync('/dev/zero', join(hostile, 'images/a-zero.yaml'));
  execFileSync('mkfifo', [join(hostile, 'images/b-fifo.yaml')]);
  symlinkSync(outside, join(hostile, 'images/c-out.yaml'));
  const run = await forseti(['image', 'add', 'debian-12', `${base}/vmlinuz`, '--lab', hostile], { timeoutMs: 30_000 });
  assert.equal(run.code, 0, `image add finishes (it hung or bloated on /dev/zero and FIFOs before): ${run.stderr}`);
  assert.match(readFileSync(join(hostile, 'images/debian-12.yaml'), 'utf8'), /kind: Image/);
  // --force on a file that is a link out of the lab: refused, the outside file untouched
  const forced = await forseti(['image', 'add', 'c-out', `${base}/vmlinuz`, '--lab', hostile, '--force'], { timeoutMs: 30_000 });
  assert.equal(forced.code, 1);
  assert.match(forced.stderr, /c-out\.yaml: not a regular file .* forseti writes regular files only; nothing written/);
  assert.equal(readFileSync(outside, 'utf8'), 'not the lab\n');
  rmSync(dir, { recursive: true, force: true });
});

test('on a terminal a progress bar is drawn in place', { skip: existsSync('/usr/bin/script') ? false : 'needs script(1) for a terminal' }, async () => {
  const { stdout: out } = await runCommand(['script', '-qec', `${SOURCE_CLI.join(' ')} image add tty ${base}/vmlinuz --lab ${lab}`, '/dev/null']);
  assert.match(out, /\r\x1b\[2Kkernel \[#+\] 100% 0\.3\/0\.3 MiB/);
  assert.match(out, new RegExp(`kernel: 300000 bytes, sha256 ${sha(kernel)}`));
});
