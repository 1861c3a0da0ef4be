// A Talos node on the virtual lab's network: the real agent (bin/forseti.js) in one network namespace, a guest that
// plays Talos (test/fixtures/talos-guest.ts) in another, joined by a veth; the host's reserved address and an
// impostor's are the guest namespace's. The role's base is the config `talosctl gen config --with-secrets` writes
// (test/fixtures/talos/, fake keys), SOPS-encrypted for the agent's age key in the lab repository.
// The guest reads its script and config from its own address, then publishes over real gRPC from it the install
// sequence, the kexec reboot, the installed system's boot waiting for etcd, and RUNNING ready after the bootstrap:
// the host goes Provisioning → installed (answered "disk") → Converged, and status shows the unmet condition while
// it lasts; replays change nothing; RUNNING ready from the impostor's address is ignored. Needs root (netns).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { parse } from 'yaml';
import { parseConfigDocuments } from '../src/render/talos/index.ts';
import type { HostView } from '../src/status/status-view.ts';
import { createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { createLab, ip, spawnInNs, tsxCommand, type Lab as NsLab, type NsProcess } from './fixtures/dhcp/netns.ts';
import { encryptSopsYaml } from './fixtures/sops-encrypt.ts';

const canRun = process.getuid?.() === 0 && process.platform === 'linux';

describe('a Talos guest in the lab\'s network namespace, the real agent in its own', { skip: canRun ? false : 'needs root for network namespaces' }, () => {
  const AGENT = '10.92.0.1';
  const HOST = '10.92.0.11';
  const IMPOSTOR = '10.92.0.99';
  const MAC = '02:92:00:00:00:11';
  const BASE = `http://${AGENT}:8080`;
  const fixture = (name: string): Promise<string> => readFile(join('test/fixtures/talos', name), 'utf8');
  let dir = '';
  let git: GitServer;
  let ns: NsLab;
  let agent: NsProcess;
  let secrets: string[] = [];
  const procs: NsProcess[] = [];

  const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

  /** curl inside the guest namespace, from one of its addresses. */
  function curlFrom(from: string, url: string): Promise<{ status: number; body: string }> {
    return new Promise((done, reject) => {
      execFile('ip', ['netns', 'exec', ns.client, 'curl', '-sS', '--max-time', '10', '--interface', from, '-w', '\n%{http_code}', url], (err, stdout) => {
        if (err) return reject(err);
        const cut = stdout.lastIndexOf('\n');
        done({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) });
      });
    });
  }
  const hostView = async (): Promise<HostView | undefined> => (JSON.parse((await curlFrom(HOST, `${BASE}/v1/status`)).body) as { hosts: Record<string, HostView> }).hosts['cp-1'];
  async function view(done: (h: HostView) => boolean, what: string): Promise<HostView> {
    for (let i = 0; i < 600; i++) {
      const h = await hostView().catch(() => undefined);
      if (h && done(h)) return h;
      await new Promise((r) => setTimeout(r, 100));
    }
    return assert.fail(`never: ${what}; last: ${JSON.stringify(await hostView().catch(() => undefined))}`);
  }
  const lastStep = (h: HostView): { name: string; detail?: string } | undefined => h.convergeSteps?.at(-1);

  /** One act of the guest (test/fixtures/talos-guest.ts), from `from`; resolves with its last JSON line. */
  async function guest(act: string, from = HOST, until = (l: Record<string, unknown>) => l['event'] !== undefined): Promise<{ proc: NsProcess; line: Record<string, unknown> }> {
    const proc = spawnInNs(ns.client, tsxCommand('../talos-guest.ts', JSON.stringify({ act, base: BASE, mac: MAC, from, state: join(dir, 'guest.json') })));
    procs.push(proc);
    const line = await proc.waitForLine((l) => l.startsWith('{') && until(JSON.parse(l) as Record<string, unknown>), `the guest's ${act}`, 60_000);
    return { proc, line: JSON.parse(line) as Record<string, unknown> };
  }

  before(async () => {
    if (!canRun) return;
    dir = await mkdtemp(join(tmpdir(), 'forseti-talos-netns-'));
    ns = createLab({ serverCidr: `${AGENT}/24`, clientMac: MAC });
    ip('-n', ns.client, 'addr', 'add', `${HOST}/24`, 'dev', ns.clientIf);
    ip('-n', ns.client, 'addr', 'add', `${IMPOSTOR}/24`, 'dev', ns.clientIf);
    git = await startGitServer({ socketPath: join(dir, 'git.sock') });
    const mirror = join(dir, 'mirror');
    await mkdir(mirror);
    await writeFile(join(mirror, 'vmlinuz'), 'kernel');
    await writeFile(join(mirror, 'initramfs.xz'), 'initrd');
    const identity = await generateIdentity();
    await writeFile(join(dir, 'age.key'), `# the agent's age key\n${identity}\n`, { mode: 0o600 });
    const base = await fixture('controlplane.yaml');
    secrets = Object.values((JSON.parse(await fixture('fake-secrets.json')) as { secrets: Record<string, string> }).secrets);
    const seed: Record<string, string> = {
      'site.yaml': `apiVersion: forseti/v1\nkind: Site\nname: ns\nnetwork: {interface: ${ns.serverIf}, subnet: 10.92.0.0/24, gateway: 10.92.0.1, dns: [10.92.0.1]}\nagent: {address: ${AGENT}, httpPort: 8080}\ndhcp: {mode: off}\npolicies: {provisionTimeoutSeconds: 600, stepTimeoutSeconds: 600}\n`,
      'images/talos.yaml': `apiVersion: forseti/v1\nkind: Image\nname: talos\nkernel: {url: '${pathToFileURL(join(mirror, 'vmlinuz')).href}', sha256: ${sha('kernel')}}\ninitrd: {url: '${pathToFileURL(join(mirror, 'initramfs.xz')).href}', sha256: ${sha('initrd')}}\n`,
      'profiles/talos-cp.yaml': [
        'apiVersion: forseti/v1',
        'kind: Profile',
        'name: talos-cp',
        'boot:',
        '  image: talos',
        '  cmdline: "talos.platform=metal console=ttyS0 talos.config={{ urls.config }}"',
        '  config:',
        '    name: controlplane.yaml',
        '    template: "cluster:\\n  clusterName: netns\\n"',
        '    talosBase: configs/talos-cp.sops.yaml',
        'converge: {any: [talosEvents]}',
        '',
      ].join('\n'),
      'configs/talos-cp.sops.yaml': await encryptSopsYaml(parse(base) as Record<string, never>, [await identityToRecipient(identity)]),
      'hosts/cp-1.yaml': `apiVersion: forseti/v1\nkind: Host\nname: cp-1\nmacs: ['${MAC}']\nip: ${HOST}\nbmc: {type: manual}\nhardware: {memoryGiB: 4, disks: [{name: sda, sizeGB: 10}]}\nrole: talos-cp\n`,
    };
    for (const [path, content] of Object.entries(seed)) {
      await mkdir(join(dir, 'seed', path, '..'), { recursive: true });
      await writeFile(join(dir, 'seed', path), content);
    }
    await createBareRepo(git, 'lab', join(dir, 'seed'));
    const forwarder = spawnInNs(ns.server, tsxCommand('../unix-forwarder.ts', '127.0.0.1:9418', join(dir, 'git.sock')));
    procs.push(forwarder);
    await forwarder.waitForLine((l) => l === 'ready', 'the git forwarder');
    await writeFile(join(dir, 'secrets.yaml'), '{}\n');
    await writeFile(
      join(dir, 'agent.yaml'),
      `lab: {url: 'http://127.0.0.1:9418/lab.git', pollSeconds: 3600}\nstatus: {batchSeconds: 0.2}\nstateDir: ${join(dir, 'state')}\nsecretsFile: ${join(dir, 'secrets.yaml')}\n` +
        `ageKeyFile: ${join(dir, 'age.key')}\nserve: {bindAddress: ${AGENT}, dhcp: false, tftp: false, talosEvents: {port: 4002}}\nbmc: {minIntervalMs: 0, timeoutMs: 5000, retries: 0}\n` +
        `reconcileIntervalMs: 200\nimages: {fileRoots: [${mirror}]}\n`,
    );
    agent = spawnInNs(ns.server, [process.execPath, resolve('bin/forseti.js'), 'agent', '--config', join(dir, 'agent.yaml')], { FORSETI_LOG_LEVEL: 'info' });
    procs.push(agent);
    await agent.waitForLine((l) => l.includes('"msg":"commit applied"'), 'the agent applies the lab', 60_000);
  }, { timeout: 120_000 });

  after(async () => {
    for (const p of procs) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
      p.child.kill('SIGTERM');
      const killer = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
      await p.exited;
      clearTimeout(killer);
    }
    ns?.destroy();
    await git?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('installs, is answered "disk", waits for etcd in view, ignores replays and the impostor, and converges when ready', { timeout: 240_000 }, async () => {
    await view((h) => h.phase === 'Provisioning', 'cp-1 Provisioning');

    // PXE: its script and its complete config from its own address, then the install sequence over gRPC.
    const installed = await guest('install', HOST, (l) => l['event'] === 'installed');
    const booted = JSON.parse(installed.proc.lines.find((l) => l.includes('"booted"')) ?? '{}') as Record<string, unknown>;
    assert.deepEqual(booted, { event: 'booted', sink: `${AGENT}:4002`, token: true, configStatus: 200 });
    const docs = parseConfigDocuments(await readFile(join(dir, 'guest.json.config'), 'utf8'));
    const main = docs.find((d) => d.key === 'v1alpha1')?.body as { machine: { network: { hostname: string; interfaces: unknown[] }; install: { disk: string }; token: string }; cluster: { clusterName: string } };
    assert.equal(main.machine.network.hostname, 'cp-1');
    assert.equal(main.machine.install.disk, '/dev/sda');
    assert.equal(main.cluster.clusterName, 'netns', 'the profile\'s patch over the base');
    assert.ok(secrets.includes(main.machine.token), 'the host gets its cluster\'s join token');
    assert.deepEqual(docs.filter((d) => d.key !== 'v1alpha1').map((d) => d.body), [{ apiVersion: 'v1alpha1', kind: 'EventSinkConfig', endpoint: `${AGENT}:4002` }]);
    const configUrl = /talos\.config=(\S+)/.exec((await curlFrom(HOST, `${BASE}/v1/boot/${MAC.replace(/:/g, '-')}`)).body)?.[1];
    assert.equal(configUrl, undefined, 'once installed, the script boots the disk and names no config');
    assert.match(String(installed.line['answer']), /booting from local disk/, 'an installed Talos is answered "disk"');
    let cp = await view((h) => lastStep(h)?.name === 'talos: installed, rebooting', 'installed');
    assert.equal(cp.phase, 'Provisioning');

    // The installed system: BOOTING, then RUNNING not ready while etcd waits for the bootstrap.
    const firstBoot = await guest('first-boot', HOST, (l) => l['event'] === 'waiting-for-etcd');
    cp = await view((h) => /etcd not running/.test(lastStep(h)?.detail ?? '') && !/kubelet/.test(lastStep(h)?.detail ?? ''), 'waiting for etcd, shown');
    assert.equal(cp.phase, 'Provisioning', 'waiting for etcd is a step, not a failure');
    const steps = JSON.stringify(cp.convergeSteps);

    // Every event again on a new connection (a restarted sink), and RUNNING ready from the impostor's address.
    assert.equal((await guest('replay')).line['event'], 'replayed');
    assert.equal((await guest('impostor', IMPOSTOR)).line['event'], 'impostor-sent');
    await agent.waitForLine((l) => l.includes(`Talos event from ${IMPOSTOR}, which is no host's reserved address: ignored`), 'the impostor\'s event logged and ignored');
    cp = await view((h) => h.phase === 'Provisioning', 'still provisioning');
    assert.equal(JSON.stringify(cp.convergeSteps), steps, 'a replay and a foreign event change no step');

    // talosctl bootstrap: etcd starts, the node is ready.
    await writeFile(join(dir, 'guest.json.bootstrapped'), '');
    await firstBoot.proc.waitForLine((l) => l.includes('"ready"'), 'the guest ready', 60_000);
    cp = await view((h) => h.phase === 'Converged', 'converged');
    assert.equal(lastStep(cp)?.name, 'talos: running, ready');
    assert.equal((await guest('replay')).line['event'], 'replayed');
    cp = await view((h) => h.phase === 'Converged', 'still converged after a replay');
    assert.match((await curlFrom(HOST, `${BASE}/v1/boot/${MAC.replace(/:/g, '-')}`)).body, /booting from local disk/);

    // The config went to its host only, and no secret of it reached the agent's log.
    for (const line of agent.lines) for (const s of secrets) assert.ok(!line.includes(s), `the agent's log holds no secret of the base: ${line.slice(0, 200)}`);
  });
});
