// The Debian package (scripts/build-deb.mjs): installed, checked and removed in a throw-away copy of this
// machine's root (test/fixtures/overlay-root.ts), so the machine itself never sees it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { releaseDeb } from './fixtures/release-build.ts';
import { startOverlayRoot, type OverlayRoot } from './fixtures/overlay-root.ts';

const canRun = process.getuid?.() === 0 && existsSync('/usr/bin/unshare') && existsSync('/usr/bin/systemd-analyze');
const skip = canRun ? false : 'needs root (a mount namespace with an overlay root) and systemd-analyze';

let root: OverlayRoot;
before(async () => {
  if (!canRun) return;
  const deb = releaseDeb();
  root = await startOverlayRoot();
  root.copyIn(deb, '/tmp/forseti.deb');
}, { timeout: 300_000 });
after(async () => root?.stop());

const sh = (command: string): { status: number | null; out: string } => {
  const r = root.run(['sh', '-c', command]);
  return { status: r.status, out: r.stdout + r.stderr };
};

test('dpkg -i installs the executable, the unit, the config and the forseti user; the unit passes systemd-analyze verify', { skip, timeout: 120_000 }, () => {
  const install = sh('dpkg -i /tmp/forseti.deb');
  assert.equal(install.status, 0, install.out);
  assert.match(sh('getent passwd forseti').out, /^forseti:x:\d+:\d+:forseti agent[^:]*:\/var\/lib\/forseti:\/usr\/sbin\/nologin$/m);
  assert.match(sh('stat -c "%U:%G %a" /var/lib/forseti').out, /^forseti:forseti 750$/m);
  assert.match(sh('stat -c "%U:%G %a" /etc/forseti /etc/forseti/agent.yaml /etc/forseti/secrets.yaml').out, /^root:forseti 750\nroot:forseti 640\nroot:forseti 640$/m);
  assert.equal(sh("dpkg-query -W -f='${Conffiles}' forseti").out.trim().split('\n').map((l) => l.trim().split(' ')[0]).join(' '), '/etc/forseti/agent.yaml /etc/forseti/secrets.yaml');
  assert.match(sh('forseti --help').out, /^usage: forseti <command>/);
  assert.match(sh('forseti validate /nonexistent; echo "exit $?"').out, /exit [12]$/m);
  const verify = sh('systemd-analyze verify --man=no /lib/systemd/system/forseti.service');
  assert.equal(verify.status, 0, verify.out);
  assert.equal(verify.out.trim(), '', `systemd-analyze verify says: ${verify.out}`);
  assert.match(sh('readlink /etc/systemd/system/multi-user.target.wants/forseti.service').out, /\/lib\/systemd\/system\/forseti\.service/);
});

test('the unit runs the agent unprivileged with two capabilities, a read-only system and a restart on failure', { skip }, () => {
  const show = sh('systemd-analyze security --offline=yes --no-pager /lib/systemd/system/forseti.service').out;
  const level = /Overall exposure level for forseti\.service: ([\d.]+)/.exec(show)?.[1];
  assert.ok(level !== undefined && Number(level) < 3, `exposure ${level ?? '?'}:\n${show}`);
  const unit = sh('cat /lib/systemd/system/forseti.service').out;
  for (const line of ['User=forseti', 'AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW', 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/forseti', 'Restart=on-failure', 'NoNewPrivileges=yes', 'PrivateTmp=yes']) {
    assert.ok(unit.split('\n').includes(line), `unit has ${line}`);
  }
});

test('dpkg -r keeps the configuration; dpkg -P leaves nothing of forseti but its system user', { skip, timeout: 120_000 }, () => {
  const remove = sh('dpkg -r forseti');
  assert.equal(remove.status, 0, remove.out);
  assert.equal(sh('test -e /usr/bin/forseti || test -e /lib/systemd/system/forseti.service; echo $?').out.trim(), '1');
  assert.equal(sh('test -f /etc/forseti/agent.yaml; echo $?').out.trim(), '0', 'conffiles stay after remove');
  const purge = sh('dpkg -P forseti');
  assert.equal(purge.status, 0, purge.out);
  assert.match(sh('dpkg-query -W forseti 2>&1; echo "exit $?"').out, /exit 1/);
  // What the whole life of the package changed: policy keeps the system user and group (files it owned may
  // remain elsewhere); dpkg keeps its log.
  const left = root.changed().filter((p) => /forseti/i.test(p));
  assert.deepEqual(left, []);
  const touched = root.changed().filter((p) => !/^\/(var\/lib\/dpkg|var\/log|var\/cache|tmp)(\/|$)/.test(p) && !/^\/etc\/(passwd|group|shadow|gshadow)-?$|^\/etc\/\.pwd\.lock$/.test(p));
  const files = touched.filter((p) => sh(`test -d '${p}' || echo file`).out.trim() === 'file');
  assert.deepEqual(files, [], 'no file of forseti remains');
  assert.match(sh('getent passwd forseti').out, /^forseti:/, 'the system user stays, as Debian policy advises');
});
