// The template's Debian preseed (lab-repo-template/configs/debian-preseed.cfg) with its progress reports: rendered
// for a debian-node host and fetched as the installer fetches it (url= with the attempt's token), its early_command
// and late_command are valid busybox sh; then run as the installer runs them (busybox sh, wget, sed, grep; a syslog
// with main-menu's lines) against the agent's real endpoints: the events they POST are accepted, the install is a
// step with each installer component as its detail, its finish marks the host installed and the late_command's
// phone-home converges it; a component that fails fails the host at once, naming it.
//   main-menu's syslog lines: "main-menu[505]: WARNING **: Configuring 'netcfg' failed with error code 1" as Colin
//   Watson quoted them (lists.ubuntu.com sounder, 2004-09-01, "Thoughts on Ubuntu Sounder 7 installer"), and
//   "INFO: Menu item '<package>' selected" (main-menu's main-menu.c, di_log of the item it runs).
// The commands run in a mount and PID namespace of their own (/tmp and /var/log private, every process gone with
// it): without root or unshare that part is skipped, saying so.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { createLogger } from '../src/log.ts';
import { loadLab } from '../src/model/load.ts';
import { HostTracker } from '../src/observe/host-tracker.ts';
import { Journal } from '../src/observe/journal.ts';
import { writeGeneration, type Generation } from '../src/render/generation.ts';
import { ImageCache } from '../src/render/image-cache.ts';
import { attemptToken, TOKEN_SLOT } from '../src/render/token.ts';
import { AgentUrls } from '../src/render/urls.ts';
import { AgentBootBackend } from '../src/serve/boot-backend.ts';
import { createBootHttpServer, listen } from '../src/serve/boot-http.ts';
import { ConvergeSignals } from '../src/serve/converge-signals.ts';
import { httpFrom, withHostsAt } from './fixtures/as-host.ts';
import { hasCommand } from './fixtures/dhcp/netns.ts';

const HOST = 'bld-006';
/** busybox wget cannot choose its source address: the host's reserved address is the one it sends from. */
const HOST_IP = '127.0.0.1';
const BUSYBOX = '/usr/bin/busybox';
const APPLETS = ['sh', 'wget', 'sed', 'grep', 'cut', 'tr', 'wc', 'cat', 'date', 'sleep', 'head', 'touch'];

/** main-menu's lines in the installer's /var/log/syslog: each item selected, then a failure of `failed` when given. */
function syslog(items: string[], failed?: string): string {
  const lines = ['Dec  7 12:00:00 syslogd started: BusyBox v1.35.0', 'Dec  7 12:00:01 kernel: Linux version 6.1.0-28-amd64'];
  for (const item of items) lines.push(`Dec  7 12:00:02 main-menu[262]: INFO: Menu item '${item}' selected`, `Dec  7 12:00:03 ${item}: progress`);
  if (failed) {
    lines.push(`Dec  7 12:00:04 main-menu[262]: WARNING **: Configuring '${failed}' failed with error code 1`);
    lines.push(`Dec  7 12:00:04 main-menu[262]: WARNING **: Menu item '${failed}' failed.`);
    lines.push("Dec  7 12:00:05 main-menu[262]: INFO: Modifying debconf priority limit from 'critical' to 'high'");
  }
  return `${lines.join('\n')}\n`;
}

/** A preseed's value of `question`, its continuation lines joined as debconf-set-selections joins them. */
function preseedValue(preseed: string, question: string): string {
  const joined = preseed.replace(/\\\n/g, '');
  const line = joined.split('\n').find((l) => l.startsWith(`d-i ${question} string `));
  assert.ok(line, `no ${question} in the preseed`);
  return line.slice(`d-i ${question} string `.length);
}

describe('the template\'s Debian preseed reports its progress', () => {
  const key = Buffer.alloc(32, 9);
  const log = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const children: ChildProcess[] = [];
  let gen: Generation;
  let dir = '';
  let mac = '';
  let base = '';
  let tracker: HostTracker;
  let server: Server;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'forseti-preseed-'));
    tracker = new HostTracker(new Journal(join(dir, 'journal.json')), log);
    const signals = new ConvergeSignals(() => gen, tracker, log);
    server = createBootHttpServer(new AgentBootBackend(() => gen, tracker, new ImageCache(join(dir, 'images'), log), key, log, { converge: signals }), log);
    const port = (await listen(server, HOST_IP, 0)).port;
    const loaded = (await loadLab('lab-repo-template')).lab;
    assert.ok(loaded);
    const moved = withHostsAt(loaded, { [HOST]: HOST_IP });
    const lab = {
      ...moved,
      site: { ...moved.site, agent: { ...moved.site.agent, address: HOST_IP, httpPort: port } },
      hosts: new Map([...moved.hosts].map(([n, h]) => [n, n === HOST ? { ...h, role: 'debian-node' } : h])),
    };
    gen = await writeGeneration(join(dir, 'state'), { lab, urls: new AgentUrls(lab.site), revision: 'd'.repeat(40), token: () => TOKEN_SLOT });
    base = `http://${HOST_IP}:${port}`;
    mac = lab.hosts.get(HOST)?.macs[0] ?? '';
  });

  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    server?.closeAllConnections();
    await new Promise<void>((r) => server?.close(() => r()));
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  });

  /** A new provisioning attempt of the host; its token and the preseed as the installer fetches it (url=). */
  const attempt = async (nonce: string): Promise<{ token: string; preseed: string }> => {
    const desired = gen.hosts.get(HOST)?.desired;
    assert.ok(desired);
    await tracker.record(HOST, { kind: 'provision-started', role: 'debian-node', digest: desired.digest, revision: desired.revision, nonce });
    const token = attemptToken(key, HOST, nonce);
    const cmdline = gen.hosts.get(HOST)?.cmdline ?? '';
    const url = /\burl=(\S+)/.exec(cmdline)?.[1] ?? assert.fail(`no url= on the kernel line: ${cmdline}`);
    const reply = await httpFrom(HOST_IP, url.replace(TOKEN_SLOT, token));
    assert.equal(reply.status, 200, reply.body);
    return { token, preseed: reply.body };
  };

  it('the rendered preseed holds the attempt\'s report URL and commands busybox sh accepts, without a backslash but the line ends', async () => {
    const { token, preseed } = await attempt('syntax');
    for (const question of ['preseed/early_command', 'preseed/late_command']) {
      const value = preseedValue(preseed, question);
      assert.ok(value.includes(`R='${base}/v1/report/${token}'`), `${question}: ${value}`);
      assert.ok(!value.includes('\\'), `${question} holds a backslash: debconf's parsers may treat it as an escape`);
      assert.ok(!value.includes(TOKEN_SLOT));
      execFileSync(BUSYBOX, ['sh', '-n', '-c', value]);
    }
    assert.match(preseedValue(preseed, 'preseed/late_command'), new RegExp(`in-target curl .*Authorization: Bearer ${token}.*role=debian-node&mac=${mac}.*${base}/v1/phone-home`));
  });

  const runnable = process.getuid?.() === 0 && hasCommand('unshare') && hasCommand('busybox') && hasCommand('curl');
  const skip = runnable ? false : 'needs root, unshare, busybox and curl: the commands run in a mount and PID namespace of their own';

  /**
   * Runs the early_command as the installer would, with `logText` as its /var/log/syslog; once `lateAfter` resolves,
   * the late_command; `exited` resolves when the namespace is gone (and every process in it).
   */
  const install = async (preseed: string, logText: string, lateAfter?: Promise<void>): Promise<{ exited: Promise<number | null>; stop(): void }> => {
    // Inside the namespace this directory is /var/log (the installer's syslog); /tmp is a fresh tmpfs over the rest.
    const varLog = await mkdtemp(join(dir, 'var-log-'));
    const inside = '/var/log/forseti-test';
    await mkdir(join(varLog, 'forseti-test', 'bin'), { recursive: true });
    await writeFile(join(varLog, 'syslog'), logText);
    const bin = join(varLog, 'forseti-test', 'bin');
    for (const applet of APPLETS) await symlink(BUSYBOX, join(bin, applet));
    await symlink('/usr/bin/curl', join(bin, 'curl'));
    // in-target runs a command in the installed system (chroot /target): here the host's curl plays it.
    await writeFile(join(bin, 'in-target'), `#!${BUSYBOX} sh\nexec "$@"\n`);
    await chmod(join(bin, 'in-target'), 0o755);
    await writeFile(join(varLog, 'forseti-test', 'early'), preseedValue(preseed, 'preseed/early_command'));
    await writeFile(join(varLog, 'forseti-test', 'late'), preseedValue(preseed, 'preseed/late_command'));
    const script = [
      'set -e',
      `mount --bind ${varLog} /var/log`,
      'mount -t tmpfs tmpfs /tmp',
      `PATH=${inside}/bin ${BUSYBOX} sh -c "$(cat ${inside}/early)"`,
      `while [ ! -e ${inside}/go ]; do sleep 0.1; done`,
      `PATH=${inside}/bin ${BUSYBOX} sh -c "$(cat ${inside}/late)"`,
    ].join('\n');
    const child = spawn('unshare', ['--mount', '--pid', '--fork', '--kill-child', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(child);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    void lateAfter?.then(() => writeFile(join(varLog, 'forseti-test', 'go'), ''));
    return { exited, stop: () => child.kill('SIGKILL') };
  };

  /** Polls the host's state until `done` holds; the limit is a safety net, not an assertion. */
  const until = async (done: () => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 60_000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`never: ${what}: ${JSON.stringify(tracker.get(HOST))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('an install that succeeds: the install is a step, each component its detail; its finish marks it installed, the phone-home converges it', { skip, timeout: 120_000 }, async () => {
    const { preseed } = await attempt('ok');
    let go = (): void => undefined;
    const late = new Promise<void>((r) => (go = r));
    const items = ['localechooser', 'netcfg', 'partman-base', 'base-installer', 'pkgsel', 'grub-installer', 'finish-install'];
    const run = await install(preseed, syslog(items), late);
    await until(() => tracker.get(HOST).convergeSteps?.at(-1)?.detail === 'finish-install: running finish-install', 'the last component as the detail');
    const steps = tracker.get(HOST).convergeSteps ?? [];
    assert.deepEqual(steps.map((s) => [s.signal, s.name]), [['installerReports', 'debian-installer']]);
    assert.equal(tracker.get(HOST).phase, 'Provisioning');
    assert.equal(tracker.get(HOST).attemptInstalledAt, undefined);
    go();
    assert.equal(await run.exited, 0);
    await until(() => tracker.get(HOST).phase === 'Converged', 'converged');
    const state = tracker.get(HOST);
    assert.ok(state.attemptInstalledAt !== undefined, 'the install\'s finish marked it installed');
    assert.deepEqual(state.convergeSteps?.map((s) => [s.signal, s.name, s.result]), [['installerReports', 'debian-installer', 'SUCCESS'], ['phoneHome', 'phoned home', undefined]]);
    assert.equal(state.appliedRole, 'debian-node');
  });

  it('a component that fails fails the host at once, naming it', { skip, timeout: 120_000 }, async () => {
    const { preseed } = await attempt('grub');
    const run = await install(preseed, syslog(['netcfg', 'partman-base', 'base-installer', 'grub-installer'], 'grub-installer'));
    await until(() => tracker.get(HOST).phase === 'Failed', 'failed');
    run.stop();
    await run.exited;
    const state = tracker.get(HOST);
    assert.equal(state.lastError?.step, 'debian-installer/grub-installer');
    assert.match(state.lastError?.message ?? '', /debian-installer\/grub-installer failed: configuring grub-installer failed with error code 1/);
  });

  it('the events the commands send are accepted by the agent: the early_command\'s own start event, sent by busybox wget', async () => {
    const { preseed } = await attempt('events');
    const early = preseedValue(preseed, 'preseed/early_command');
    // The report function and the install's start, without the syslog watcher (which needs the installer's /tmp).
    const reportOnly = early.slice(0, early.indexOf('( n=0;'));
    assert.match(reportOnly, /ev debian-installer 'installing Debian by preseed' start;\s*$/);
    const bin = await mkdtemp(join(dir, 'bin-'));
    for (const applet of APPLETS) await symlink(BUSYBOX, join(bin, applet));
    // Not execFileSync: the agent answering it runs in this process.
    await promisify(execFile)(BUSYBOX, ['sh', '-c', reportOnly], { env: { PATH: bin } });
    await until(() => (tracker.get(HOST).convergeSteps ?? []).length > 0, 'a step');
    assert.deepEqual(tracker.get(HOST).convergeSteps?.map((s) => [s.signal, s.name, s.detail]), [['installerReports', 'debian-installer', 'installing Debian by preseed']]);
    assert.equal(tracker.get(HOST).phase, 'Provisioning');
  });
});
