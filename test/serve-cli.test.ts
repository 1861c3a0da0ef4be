// `forseti serve tftp` and `forseti serve http` as real processes on 127.0.0.1, driven by real
// clients (tftp-hpa, curl); each exchange shows up as one log line, and SIGTERM stops cleanly.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, sha256, writeRandomFile } from './fixtures/tftp/harness.ts';
import { REPO_ROOT, startServe, type ServeProcess } from './fixtures/tftp/serve-process.ts';

const T = { timeout: 60_000 }; // safety net only

interface Run { code: number; stdout: string; stderr: string }
function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 50_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('forseti serve (real process, real clients)', () => {
  let dir: string;
  let root: string;
  let cleanup: () => Promise<void>;
  let data: Buffer;
  let n = 0;
  const out = (): string => path.join(dir, `out-${n++}`);

  before(async () => {
    ({ dir, cleanup } = await makeTempDir('fserve-'));
    root = path.join(dir, 'root');
    await mkdir(path.join(root, 'sub'), { recursive: true });
    data = await writeRandomFile(path.join(root, 'sub', 'kernel'), 1_234_567);
    await writeFile(path.join(dir, 'secret'), 'outside the root');
    await symlink(path.join(dir, 'secret'), path.join(root, 'escape'));
  });
  after(() => cleanup());

  describe('tftp', () => {
    let srv: ServeProcess;
    before(async () => {
      srv = await startServe(['tftp', '--root', root, '--listen', '127.0.0.1:0']);
    });
    after(() => srv.stop('SIGKILL'));

    it('tftp-hpa and curl download byte for byte; each transfer is one log line', T, async () => {
      const a = out();
      const hpa = await run('tftp', ['127.0.0.1', String(srv.port), '-m', 'binary', '-c', 'get', 'sub/kernel', a]);
      assert.equal(hpa.code, 0, hpa.stdout + hpa.stderr);
      assert.equal(sha256(await readFile(a)), sha256(data));
      const b = out();
      const curl = await run('curl', ['-sS', '--tftp-blksize', '1468', `tftp://127.0.0.1:${srv.port}/sub/kernel`, '-o', b]);
      assert.equal(curl.code, 0, curl.stderr);
      assert.equal(sha256(await readFile(b)), sha256(data));
      const line = await srv.waitFor((l) => l.blksize === 1468, 'the curl transfer line');
      assert.match(line.msg, /^tftp 127\.0\.0\.1:\d+ sub\/kernel: 1234567 bytes in \d+ ms \(blksize 1468, windowsize 1\)$/);
      assert.equal(srv.lines.filter((l) => l.file === 'sub/kernel').length, 2);
    });

    it('a refused request is one warning line naming the reason', T, async () => {
      const r = await run('curl', ['-sS', `tftp://127.0.0.1:${srv.port}/escape`, '-o', out()]);
      assert.equal(r.code, 69); // CURLE_TFTP_PERM
      const line = await srv.waitFor((l) => l.file === 'escape', 'the refused transfer line');
      assert.equal(line.level, 40);
      assert.match(line.msg, /escape: failed after 0 bytes .*resolves outside the root/);
    });

    it('SIGTERM stops the server and the process exits 0', T, async () => {
      const code = await srv.stop('SIGTERM');
      assert.equal(code, 0);
      assert.ok(srv.lines.some((l) => /tftp stopped on SIGTERM/.test(l.msg)));
    });
  });

  describe('http', () => {
    let srv: ServeProcess;
    let base: string;
    before(async () => {
      srv = await startServe(['http', '--root', root, '--listen', '127.0.0.1:0']);
      base = `http://127.0.0.1:${srv.port}`;
    });
    after(() => srv.stop('SIGKILL'));

    const curl = (...args: string[]): Promise<Run> => run('curl', ['-sS', ...args]);

    it('curl downloads the whole file, a range, a suffix and an open range', T, async () => {
      const whole = out();
      const r = await curl('-o', whole, '-w', '%{http_code} %{size_download}', `${base}/sub/kernel`);
      assert.equal(r.stdout, '200 1234567');
      assert.deepEqual(await readFile(whole), data);
      const ranged = out();
      assert.equal((await curl('-o', ranged, '-w', '%{http_code}', '-r', '1000-1999', `${base}/sub/kernel`)).stdout, '206');
      assert.deepEqual(await readFile(ranged), data.subarray(1000, 2000));
      const suffix = out();
      assert.equal((await curl('-o', suffix, '-w', '%{http_code}', '-r', '-100', `${base}/sub/kernel`)).stdout, '206');
      assert.deepEqual(await readFile(suffix), data.subarray(data.length - 100));
      const open = out();
      assert.equal((await curl('-o', open, '-w', '%{http_code}', '-r', '1234000-', `${base}/sub/kernel`)).stdout, '206');
      assert.deepEqual(await readFile(open), data.subarray(1_234_000));
      const line = await srv.waitFor((l) => l.status === 206 && l.bytes === 100, 'the suffix range line');
      assert.match(line.msg, /^http 127\.0\.0\.1:\d+ GET \/sub\/kernel 206 100 bytes in \d+ ms$/);
    });

    it('HEAD, 416, and a 304 for a matching If-None-Match', T, async () => {
      const head = await curl('-I', `${base}/sub/kernel`);
      assert.match(head.stdout, /^HTTP\/1\.1 200/);
      assert.match(head.stdout, /content-length: 1234567/i);
      const etag = /etag: (\S+)/i.exec(head.stdout)?.[1];
      assert.ok(etag);
      assert.equal((await curl('-o', '/dev/null', '-w', '%{http_code}', '-r', '2000000-', `${base}/sub/kernel`)).stdout, '416');
      assert.equal((await curl('-o', '/dev/null', '-w', '%{http_code}', '-H', `If-None-Match: ${etag}`, `${base}/sub/kernel`)).stdout, '304');
    });

    it('directories, traversal, escaping symlinks, missing files and other methods are refused', T, async () => {
      const code = async (...args: string[]): Promise<string> => (await curl('-o', '/dev/null', '-w', '%{http_code}', ...args)).stdout;
      assert.equal(await code(`${base}/sub`), '403');
      assert.equal(await code(`${base}/sub/`), '403');
      assert.equal(await code(`${base}/`), '403');
      assert.equal(await code('--path-as-is', `${base}/../secret`), '403');
      assert.equal(await code(`${base}/%2e%2e/secret`), '403');
      assert.equal(await code(`${base}/escape`), '403');
      assert.equal(await code(`${base}/missing`), '404');
      assert.equal(await code('-X', 'POST', `${base}/sub/kernel`), '405');
      const line = await srv.waitFor((l) => l.path === '/escape', 'the escape line');
      assert.match(line.msg, /GET \/escape 403 0 bytes in \d+ ms: "\/escape" resolves outside the root/);
    });

    it('SIGINT stops the server and the process exits 0', T, async () => {
      assert.equal(await srv.stop('SIGINT'), 0);
    });
  });

  describe('http connection caps', () => {
    it('--max-connections-per-client: a second connection from one address is told 503 and when to come back', T, async () => {
      const capped = await startServe(['http', '--root', root, '--listen', '127.0.0.1:0', '--max-connections', '8', '--max-connections-per-client', '1']);
      const held = connect({ port: capped.port, host: '127.0.0.1' });
      try {
        await new Promise<void>((resolve, reject) => held.once('connect', resolve).once('error', reject));
        const r = await run('curl', ['-sS', '-i', `http://127.0.0.1:${capped.port}/sub/kernel`]);
        assert.match(r.stdout, /^HTTP\/1\.1 503/);
        assert.match(r.stdout, /retry-after: 5/i);
      } finally {
        held.destroy();
        await capped.stop('SIGKILL');
      }
    });

    it('refuses a cap that is not a whole number of at least 1, naming the flag', () => {
      for (const [flag, value] of [['--max-connections', '0'], ['--max-connections-per-client', 'many']] as const) {
        const r = spawnSync(process.execPath, ['bin/forseti.js', 'serve', 'http', '--root', root, '--listen', '127.0.0.1:0', flag, value], { cwd: REPO_ROOT, encoding: 'utf8' });
        assert.equal(r.status, 2);
        assert.match(r.stderr, new RegExp(`${flag} must be an integer from 1 to 1000000`));
      }
    });
  });
});
