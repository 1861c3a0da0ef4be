import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TftpAccessViolationError, TftpFileNotFoundError } from '../src/serve/tftp/errors.ts';
import { confineName, openInRoot } from '../src/serve/tftp/root-path.ts';
import { makeTempDir } from './fixtures/tftp/harness.ts';

describe('tftp confineName', () => {
  it('strips one leading slash and normalises backslashes', () => {
    assert.equal(confineName('/pxelinux.0'), 'pxelinux.0');
    assert.equal(confineName('boot\\grub\\grub.cfg'), 'boot/grub/grub.cfg');
    assert.equal(confineName('\\boot\\x'), 'boot/x');
    assert.equal(confineName('./a//b/'), 'a/b/');
  });

  it('refuses parent components and double-slash absolute paths', () => {
    for (const name of ['..', '../etc/passwd', 'a/../../etc/passwd', 'a/../b', '..\\..\\etc\\passwd', '//etc/passwd', '\\\\etc\\passwd', '/..']) {
      assert.throws(() => confineName(name), TftpAccessViolationError, name);
    }
  });
});

describe('tftp openInRoot', () => {
  let base: string;
  let root: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    ({ dir: base, cleanup } = await makeTempDir());
    root = path.join(base, 'root');
    await mkdir(path.join(root, 'sub'), { recursive: true });
    await writeFile(path.join(root, 'sub', 'file'), 'inside');
    await writeFile(path.join(base, 'secret'), 'outside');
    await mkdir(path.join(base, 'outdir'));
    await writeFile(path.join(base, 'outdir', 'x'), 'outside');
    await symlink(path.join(base, 'secret'), path.join(root, 'escape'));
    await symlink('../outdir', path.join(root, 'escapedir'));
    await symlink('sub/file', path.join(root, 'inlink'));
    await symlink('root', path.join(base, 'current'));
    // Opening a FIFO for reading waits for a writer: none ever comes here.
    execFileSync('mkfifo', [path.join(root, 'fifo')]);
    await symlink('fifo', path.join(root, 'fifolink'));
  });
  after(() => cleanup());

  it('opens regular files, following symlinks that stay inside the root', async () => {
    for (const name of ['sub/file', 'inlink']) {
      const { handle, size } = await openInRoot(root, name);
      assert.equal(size, 6);
      assert.equal((await handle.readFile()).toString(), 'inside');
      await handle.close();
    }
  });

  it('works when the root itself is a symlink (a switched generation)', async () => {
    const { handle } = await openInRoot(path.join(base, 'current'), 'inlink');
    await handle.close();
  });

  it('refuses symlinks that lead out of the root', async () => {
    await assert.rejects(openInRoot(root, 'escape'), TftpAccessViolationError);
    await assert.rejects(openInRoot(root, 'escapedir/x'), TftpAccessViolationError);
  });

  it('refuses directories and reports missing files', async () => {
    await assert.rejects(openInRoot(root, 'sub'), TftpAccessViolationError);
    await assert.rejects(openInRoot(root, '.'), TftpAccessViolationError);
    await assert.rejects(openInRoot(root, 'missing'), TftpFileNotFoundError);
    await assert.rejects(openInRoot(root, 'sub/file/deeper'), TftpFileNotFoundError);
  });

  it('refuses a FIFO, and a symlink to one, without waiting for a writer', async () => {
    // More than libuv's four file-system threads: a blocking open would hang the fifth call for good.
    for (let i = 0; i < 12; i++) {
      await assert.rejects(openInRoot(root, i % 2 ? 'fifo' : 'fifolink'), (err: unknown) => err instanceof TftpAccessViolationError && /not a regular file/.test(err.message));
    }
    const { handle } = await openInRoot(root, 'sub/file');
    await handle.close();
  });

  it('refuses a device node reached through a symlink inside the root', async () => {
    await symlink('/dev/zero', path.join(root, 'zero'));
    await assert.rejects(openInRoot(root, 'zero'), TftpAccessViolationError);
  });
});
