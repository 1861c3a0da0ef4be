// Real TFTP clients (tftp-hpa, curl, atftp, busybox) against the server on 127.0.0.1: all of them
// against the default pump (native, where it was built), and a few against the JavaScript one.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, sha256, startServer, waitForEvents, writeRandomFile, type RunningServer } from './fixtures/tftp/harness.ts';

const HOST = '127.0.0.1';
const T = { timeout: 120_000 }; // safety net only

function installed(cmd: string, ...args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).error === undefined;
}
const have = {
  tftp: installed('tftp', '-V'),
  curl: installed('curl', '--version'),
  atftp: installed('atftp', '--help'),
  busybox: installed('busybox', 'tftp', '--help'),
};
const skip = (name: keyof typeof have): { skip?: string } => (have[name] ? {} : { skip: `${name} is not installed` });

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 100_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Each client's command line for downloading `name` to `out`. */
const clients = {
  tftp: (port: number, name: string, out: string) => run('tftp', [HOST, String(port), '-m', 'binary', '-c', 'get', name, out]),
  tftpVerbose: (port: number, name: string, out: string) => run('tftp', ['-v', HOST, String(port), '-m', 'binary', '-c', 'get', name, out]),
  tftpInteractive: (port: number, name: string, out: string) => run('tftp', [HOST, String(port)], `binary\nverbose\nget ${name} ${out}\nquit\n`),
  curl: (port: number, name: string, out: string) => run('curl', ['-sS', `tftp://${HOST}:${port}/${name}`, '-o', out]),
  curlBlksize: (port: number, name: string, out: string) => run('curl', ['-sS', `tftp://${HOST}:${port}/${name}`, '--tftp-blksize', '1468', '-o', out]),
  atftp: (port: number, name: string, out: string) => run('atftp', ['-g', '-r', name, '-l', out, HOST, String(port)]),
  atftpWindow: (port: number, name: string, out: string) => run('atftp', ['--option', 'blksize 1428', '--option', 'windowsize 16', '--option', 'tsize 0', '-g', '-r', name, '-l', out, HOST, String(port)]),
  busybox: (port: number, name: string, out: string) => run('busybox', ['tftp', '-g', '-r', name, '-l', out, HOST, String(port)]),
  busyboxBlksize: (port: number, name: string, out: string) => run('busybox', ['tftp', '-b', '1468', '-g', '-r', name, '-l', out, HOST, String(port)]),
} as const;
type ClientName = keyof typeof clients;
const binaryOf = (c: ClientName): keyof typeof have => (c.startsWith('tftp') ? 'tftp' : c.startsWith('curl') ? 'curl' : c.startsWith('atftp') ? 'atftp' : 'busybox');

let dir: string;
let root: string;
let out: string;
let cleanup: () => Promise<void>;
const sums = new Map<string, string>();
let outCount = 0;
const outFile = (): string => path.join(out, `out-${outCount++}`);

before(async () => {
  ({ dir, cleanup } = await makeTempDir());
  root = path.join(dir, 'root');
  out = path.join(dir, 'out');
  await mkdir(path.join(root, 'images'), { recursive: true });
  await mkdir(out);
  sums.set('small.bin', sha256(await writeRandomFile(path.join(root, 'small.bin'), 1_000_003)));
  sums.set('exact.bin', sha256(await writeRandomFile(path.join(root, 'exact.bin'), 1468 * 512)));
  sums.set('images/kernel', sha256(await writeRandomFile(path.join(root, 'images', 'kernel'), 5_000_000)));
  // 65,537 full blocks at the default blksize 512 and a partial one: past 32 MiB, and blocks
  // 65,536 to 65,538 go out numbered 0, 1 and 2.
  sums.set('big.bin', sha256(await writeRandomFile(path.join(root, 'big.bin'), 65_537 * 512 + 777)));
  await writeFile(path.join(dir, 'secret'), 'not for clients');
  await symlink(path.join(dir, 'secret'), path.join(root, 'escape'));
});
after(() => cleanup());

async function fetchAndVerify(srv: RunningServer, client: ClientName, name: string): Promise<void> {
  const file = outFile();
  const r = await clients[client](srv.port, name, file);
  assert.equal(r.code, 0, `${client} failed: ${r.stdout}${r.stderr}`);
  assert.equal(sha256(await readFile(file)), sums.get(name), `${client} ${name}: sha256 differs`);
}

describe('tftp with real clients', () => {
  let srv: RunningServer;
  before(async () => {
    srv = await startServer({ root });
  });
  after(() => srv?.stop());

  for (const client of Object.keys(clients) as ClientName[]) {
    it(`${client} downloads files byte for byte`, { ...T, ...skip(binaryOf(client)) }, async () => {
      for (const name of ['small.bin', 'exact.bin', 'images/kernel']) await fetchAndVerify(srv, client, name);
    });
  }

  for (const client of ['tftp', 'curl', 'atftp', 'busybox'] as const) {
    it(`${client} downloads a >32 MB file at blksize 512 (block number rollover)`, { ...T, ...skip(binaryOf(client)) }, async () => {
      const seen = srv.events.length;
      await fetchAndVerify(srv, client, 'big.bin');
      await waitForEvents(srv, seen + 1); // a client can exit before the server has read its last ACK
      const event = srv.events.at(seen);
      assert.equal(event?.file, 'big.bin');
      assert.equal(event?.ok, true);
      assert.equal(event?.bytes, 65_537 * 512 + 777);
      assert.equal(event?.pump, 'native', 'the default pump is the native one (see tftp-native-pump.test.ts when it is not built)');
    });
  }

  it('atftp with windowsize 16 gets the window and tsize in the OACK and ACKs once per window', { ...T, ...skip('atftp') }, async () => {
    const file = outFile();
    const r = await run('atftp', ['--trace', '--option', 'blksize 1428', '--option', 'windowsize 16', '--option', 'tsize 0', '-g', '-r', 'small.bin', '-l', file, HOST, String(srv.port)]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const trace = r.stdout + r.stderr;
    const oack = /received OACK <([^>]*)>/.exec(trace)?.[1] ?? '';
    assert.match(oack, /windowsize: 16/);
    assert.match(oack, /blksize: 1428/);
    assert.match(oack, /tsize: 1000003/);
    const blocks = Math.floor(1_000_003 / 1428) + 1;
    const acks = trace.match(/sent ACK/g)?.length ?? 0;
    assert.ok(acks <= Math.ceil(blocks / 16) + 2, `${acks} ACKs for ${blocks} blocks: the window was not used`);
    assert.equal(sha256(await readFile(file)), sums.get('small.bin'));
  });

  it('tftp-hpa in ascii mode round-trips a text file through netascii', { ...T, ...skip('tftp') }, async () => {
    const text = 'line one\nline two\n\nend\n';
    await writeFile(path.join(root, 'notes.txt'), text);
    const file = outFile();
    const r = await run('tftp', [HOST, String(srv.port), '-m', 'ascii', '-c', 'get', 'notes.txt', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await readFile(file, 'utf8'), text);
  });

  it('curl reports missing files and refused paths with its TFTP exit codes', { ...T, ...skip('curl') }, async () => {
    const get = (name: string): Promise<Run> => run('curl', ['-sS', `tftp://${HOST}:${srv.port}/${name}`, '-o', outFile()]);
    assert.equal((await get('missing.bin')).code, 68); // CURLE_TFTP_NOTFOUND: error 1
    assert.equal((await get('escape')).code, 69); // CURLE_TFTP_PERM: error 2
    assert.equal((await get('images')).code, 69);
    // curl normalises ../ itself, so traversal is sent percent-encoded to keep it literal
    assert.equal((await get('%2E%2E/secret')).code, 69);
  });

  it('tftp-hpa shows the server\'s errors for missing files, traversal and uploads', { ...T, ...skip('tftp') }, async () => {
    const missing = await clients.tftp(srv.port, 'missing.bin', outFile());
    assert.match(missing.stdout + missing.stderr, /Error code 1/);
    const traversal = await clients.tftp(srv.port, '../secret', outFile());
    assert.match(traversal.stdout + traversal.stderr, /Error code 2/);
    const escape = await clients.tftp(srv.port, 'escape', outFile());
    assert.match(escape.stdout + escape.stderr, /Error code 2/);
    const upload = path.join(dir, 'upload.bin');
    await writeFile(upload, randomBytes(100));
    const put = await run('tftp', [HOST, String(srv.port), '-m', 'binary', '-c', 'put', upload, 'upload.bin']);
    assert.match(put.stdout + put.stderr, /Error code 2/);
  });

  it('busybox tftp fails on a missing file', { ...T, ...skip('busybox') }, async () => {
    const r = await clients.busybox(srv.port, 'missing.bin', outFile());
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /not found/);
  });

  it('serves many clients of every kind at once', T, async () => {
    const kinds = (Object.keys(clients) as ClientName[]).filter((c) => have[binaryOf(c)]);
    const names = ['small.bin', 'exact.bin', 'images/kernel'];
    const jobs = Array.from({ length: 36 }, (_, i) => fetchAndVerify(srv, kinds[i % kinds.length] ?? 'curl', names[i % names.length] ?? 'small.bin'));
    await Promise.all(jobs);
  });
});

describe('tftp with real clients on the JavaScript pump', () => {
  let srv: RunningServer;
  before(async () => {
    srv = await startServer({ root, pump: 'js' });
  });
  after(() => srv?.stop());

  for (const client of ['atftp', 'atftpWindow', 'busyboxBlksize'] as const) {
    it(`${client} downloads files byte for byte`, { ...T, ...skip(binaryOf(client)) }, async () => {
      const seen = srv.events.length;
      for (const name of ['small.bin', 'exact.bin', 'images/kernel']) await fetchAndVerify(srv, client, name);
      await waitForEvents(srv, seen + 3); // a client can exit before the server has read its last ACK
      const events = srv.events.slice(seen);
      assert.equal(events.length, 3);
      assert.ok(events.every((e) => e.ok && e.pump === 'js'), JSON.stringify(events));
    });
  }
});
