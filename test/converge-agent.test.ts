// Converge signals in the running agent (issue 13), in process on loopback: hosts at 127.0.0.x reserved addresses,
// a Redfish BMC fixture that power-cycles them, the real event sink and HTTP server of the agent.
//   - A Talos node (test/fixtures/talos-node.ts) publishes over real gRPC, from the host's reserved address, a PXE
//     install, kexec, the first boot from disk waiting for etcd, then ready: the host goes Provisioning → installed
//     (its iPXE answer is the disk) → Converged, its status shows the unmet condition while it lasts; duplicated and
//     replayed events change nothing; events from another address are ignored.
//   - An Ubuntu autoinstall host POSTs curtin/subiquity/cloud-init events (payloads cited below): the steps appear, a
//     FAIL fails the host at once naming the event.
//   - A Talos host whose events stop: Failed after the role's step timeout, naming the last step.
//   - A site-wide wipe (a host's wipe token): the wipe image's reports, POSTed to the report URL on its kernel line
//     with the wipe attempt's token, are its steps; a disk's FAIL fails the wipe at once naming the disk; the run's
//     finish completes the wipe and the host's role is installed next.
//   - An Ubuntu host with the template's autoinstall config: seeded from its NoCloud URL, it reports to the endpoints
//     its user-data names (the installer to the attempt's, the installed system's cloud-init to its /target one)
//     and is Converged by modules-final.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../src/agent/agent.ts';
import { createLogger } from '../src/log.ts';
import type { HostView, StatusView } from '../src/status/status-view.ts';
import { bootScriptFrom, httpFrom } from './fixtures/as-host.ts';
import { cloudInitBoot, osImageWipe, subiquityInstall } from './fixtures/installer-reports.ts';
import { fromAddress, type FromAddress } from './fixtures/from-address.ts';
import { freeTcpPort, freeUdpPort } from './fixtures/free-port.ts';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { encryptSopsYaml } from './fixtures/sops-encrypt.ts';
import { fetchStatus, loopbackAgentConfig, loopbackLabFiles, waitForView, writeTree } from './fixtures/loopback-lab.ts';
import { startRedfishBmc, type RedfishBmc } from './fixtures/redfish/bmc.ts';
import { selfSignedCert } from './fixtures/redfish/certs.ts';
import { syntheticBmc } from './fixtures/redfish/resources.ts';
import { diskFirstBoot, initializeSequence, machineStatus, pxeInstallBoot, talosNode, type PublishedEvent, type TalosNode } from './fixtures/talos-node.ts';
import './fixtures/api-contract.ts';

const TALOS_BASE = [
  'version: v1alpha1',
  'machine:',
  '  type: controlplane',
  '  install: {disk: /dev/sda}',
  'cluster:',
  '  clusterName: lab',
  '  controlPlane: {endpoint: "https://127.0.0.51:6443"}',
  '',
].join('\n');

const profile = (name: string, converge: string, config?: string): string =>
  [
    'apiVersion: forseti/v1',
    'kind: Profile',
    `name: ${name}`,
    'boot:',
    '  image: tiny',
    '  cmdline: console=ttyS0',
    ...(config ? ['  config:', '    name: machine.yaml', '    template: |', ...config.trimEnd().split('\n').map((l) => `      ${l}`)] : []),
    `converge: ${converge}`,
    '',
  ].join('\n');

/** The template's Ubuntu roles, on the test's tiny image: the seed on the kernel line, the template's autoinstall config. */
const UBUNTU_SEEDED = [
  'apiVersion: forseti/v1',
  'kind: Profile',
  'name: ubuntu-seeded',
  'boot:',
  '  image: tiny',
  '  cmdline: "console=ttyS0 autoinstall ds=nocloud-net;s={{ urls.nocloud }}"',
  '  config: {name: user-data, file: configs/ubuntu-autoinstall.yaml, secret: true}',
  'converge: {any: [installerReports]}',
  '',
].join('\n');

/** The site's wipe role as the template declares it (lab-repo-template/profiles/wipe.yaml), on the test's tiny image. */
const WIPE = [
  'apiVersion: forseti/v1',
  'kind: Profile',
  'name: wipe',
  'boot:',
  '  image: tiny',
  '  cmdline: console=ttyS0 forseti.wipe=zero forseti.report={{ urls.report }} forseti.role=wipe',
  'afterInstall: pxe',
  'converge: {any: [installerReports, phoneHome]}',
  '',
].join('\n');

const MACS = { cp: '02:00:00:00:0d:01', ub: '02:00:00:00:0d:02', slow: '02:00:00:00:0d:03', seeded: '02:00:00:00:0d:04', wipeBad: '02:00:00:00:0d:05', wipeOk: '02:00:00:00:0d:06' };
const IPS = { cp: '127.0.0.51', ub: '127.0.0.52', slow: '127.0.0.53', seeded: '127.0.0.54', wipeBad: '127.0.0.55', wipeOk: '127.0.0.56' };
const IMPOSTOR = '127.0.0.59';

describe('converge signals in the agent', () => {
  let dir = '';
  let git: GitServer;
  let bmc: RedfishBmc;
  let agent: Agent;
  let base = '';
  const lines: Array<Record<string, unknown>> = [];
  const hops: FromAddress[] = [];
  const nodes: TalosNode[] = [];

  const host = (name: string, mac: string, ip: string, role: string): string =>
    `apiVersion: forseti/v1\nkind: Host\nname: ${name}\nmacs: ['${mac}']\nip: ${ip}\n` +
    `bmc: {type: redfish, address: 127.0.0.1, port: ${bmc.port}, credential: vlab-bmc, tls: {insecure: true}}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: ${role}\n`;

  const view = async (name: string, done: (h: HostView) => boolean, what: string): Promise<HostView> => {
    const v: StatusView = await waitForView(base, (s) => s.hosts[name] !== undefined && done(s.hosts[name] as HostView), `${name}: ${what}`);
    return v.hosts[name] as HostView;
  };
  const lastStep = (h: HostView): { name: string; detail?: string; signal: string } | undefined => h.convergeSteps?.at(-1);

  /** A Talos node whose connections reach the agent's sink from `ip`. */
  const nodeAt = async (script: string, ip: string): Promise<TalosNode> => {
    const sink = /talos\.events\.sink=([0-9.]+):(\d+)/.exec(script);
    assert.ok(sink, `the kernel line names the event sink:\n${script}`);
    const hop = await fromAddress({ host: sink[1] ?? '', port: Number(sink[2]) }, ip);
    hops.push(hop);
    const node = talosNode({ target: hop.target });
    nodes.push(node);
    return node;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'forseti-converge-'));
    git = await startGitServer();
    const cert = selfSignedCert('IP:127.0.0.1');
    bmc = await startRedfishBmc({ resources: syntheticBmc(), tls: { key: cert.key, cert: cert.cert }, username: 'admin', password: 'vlabpass' });
    const http = await freeTcpPort();
    base = `http://127.0.0.1:${http}`;
    const seed = join(dir, 'seed');
    await writeTree(seed, {
      ...(await loopbackLabFiles(dir, { http, tftp: await freeUdpPort() })),
      'profiles/talos-cp.yaml': profile('talos-cp', '{any: [talosEvents]}', TALOS_BASE),
      'profiles/talos-slow.yaml': profile('talos-slow', '{any: [talosEvents], stepTimeoutSeconds: 3}', TALOS_BASE),
      'profiles/ubuntu.yaml': profile('ubuntu', '{any: [installerReports]}'),
      'hosts/cp-1.yaml': host('cp-1', MACS.cp, IPS.cp, 'talos-cp'),
      'hosts/ub-1.yaml': host('ub-1', MACS.ub, IPS.ub, 'ubuntu'),
      'hosts/slow-1.yaml': host('slow-1', MACS.slow, IPS.slow, 'talos-slow'),
      'profiles/ubuntu-seeded.yaml': UBUNTU_SEEDED,
      'configs/ubuntu-autoinstall.yaml': await readFile('lab-repo-template/configs/ubuntu-autoinstall.yaml', 'utf8'),
      'hosts/ub-2.yaml': host('ub-2', MACS.seeded, IPS.seeded, 'ubuntu-seeded'),
      'profiles/wipe.yaml': WIPE,
      'hosts/wp-1.yaml': `${host('wp-1', MACS.wipeBad, IPS.wipeBad, 'worker')}wipe: w1\n`,
      'hosts/wp-2.yaml': `${host('wp-2', MACS.wipeOk, IPS.wipeOk, 'worker')}wipe: w1\n`,
    });
    await createBareRepo(git, 'lab', seed);
    const config = await loopbackAgentConfig(dir, git.repoUrl('lab'), { tftp: false });
    await writeFile(config.secretsFile ?? '', 'vlab-bmc: {username: admin, password: vlabpass, use: [bmc], addresses: [127.0.0.1], allowInsecureTls: true}\n', { mode: 0o600 });
    config.serve = { ...config.serve, talosEvents: { port: 0 } };
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    agent = new Agent(config, createLogger({ level: 'info', destination: sink }));
    await agent.start();
  });

  after(async () => {
    for (const node of nodes) node.close();
    for (const hop of hops) await hop.close();
    await agent?.stop();
    if (process.env['CONVERGE_TEST_LOG']) await writeFile(process.env['CONVERGE_TEST_LOG'], lines.map((l) => JSON.stringify(l)).join('\n'));
    await bmc?.close();
    await git?.close();
    // maxRetries: the alert of the last failure can land in alerts.json just after the agent says it stopped.
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  });

  // First: the role's 3 s step timeout counts from the power cycle, so its host must be answered at once.
  it('a Talos host whose events stop is Failed after the role step timeout, naming the last step', { timeout: 120_000 }, async () => {
    await view('slow-1', (h) => h.phase === 'Provisioning', 'provisioning');
    const { script } = await bootScriptFrom(base, MACS.slow, IPS.slow);
    const node = await nodeAt(script, IPS.slow);
    await node.publish(initializeSequence());
    const slow = await view('slow-1', (h) => h.phase === 'Failed', 'failed by the step timeout');
    assert.match(slow.lastError?.message ?? '', /no progress past step talos: initialize within 3 s/);
    assert.equal(slow.lastError?.step, 'talos: initialize');
  });

  it('a Talos node: Provisioning → installed (answered disk) → Converged; duplicates, replays and other addresses change nothing', { timeout: 120_000 }, async () => {
    await view('cp-1', (h) => h.phase === 'Provisioning', 'provisioning');
    const { script, token } = await bootScriptFrom(base, MACS.cp, IPS.cp);
    assert.match(script, /talos\.events\.sink=127\.0\.0\.1:\d+ talos\.halt_if_installed=1/);
    const config = await httpFrom(IPS.cp, `${base}/v1/hosts/cp-1/config/machine.yaml?token=${token}`);
    assert.equal(config.status, 200);
    const endpoint = /talos\.events\.sink=(\S+)/.exec(script)?.[1] ?? '';
    assert.match(config.body, new RegExp(`kind: EventSinkConfig\\nendpoint: ${endpoint.replace(/\./g, '\\.')}`), config.body);

    const node = await nodeAt(script, IPS.cp);
    const install = await node.publish(pxeInstallBoot('kexec'));
    let cp = await view('cp-1', (h) => lastStep(h)?.name === 'talos: installed, rebooting', 'installed');
    assert.equal(cp.phase, 'Provisioning');
    const again = await httpFrom(IPS.cp, `${base}/v1/boot/${MACS.cp}`);
    assert.match(again.body, /booting from local disk/, 'an installed Talos is answered "disk", never installed again');

    node.reboot();
    const firstBoot = diskFirstBoot('bootstrap-controlplane');
    const waiting = await node.publish(firstBoot.untilBootstrap);
    cp = await view('cp-1', (h) => /etcd not running/.test(lastStep(h)?.detail ?? '') && !/kubelet/.test(lastStep(h)?.detail ?? ''), 'waiting for etcd');
    assert.equal(cp.phase, 'Provisioning', 'waiting for etcd is a step, not a failure');
    const stepsBefore = JSON.stringify(cp.convergeSteps);

    // The sink restarted on the node's side: it replays from before; and every event again, on a new connection.
    await node.replay([...install.slice(-5), ...waiting]);
    await node.replay(waiting as PublishedEvent[]);
    // Another machine on the network claims to be ready: its address is no host's.
    const impostor = await nodeAt(script, IMPOSTOR);
    await impostor.publish([machineStatus('RUNNING', true)]);
    cp = await view('cp-1', (h) => h.phase === 'Provisioning', 'still provisioning');
    assert.equal(JSON.stringify(cp.convergeSteps), stepsBefore, 'replays and duplicates change no step');
    assert.ok(lines.some((l) => String(l['msg']).includes(`Talos event from ${IMPOSTOR}, which is no host's reserved address: ignored`)), 'the foreign event is logged');

    await node.publish(firstBoot.afterBootstrap);
    cp = await view('cp-1', (h) => h.phase === 'Converged', 'converged');
    assert.equal(cp.appliedRole, 'talos-cp');
    assert.equal(lastStep(cp)?.name, 'talos: running, ready');
    const names = (cp.convergeSteps ?? []).map((s) => s.name);
    assert.deepEqual(names.filter((n, i) => names.indexOf(n) === i).slice(0, 4), ['talos: initialize', 'talos: installing to disk', 'talos: installed, rebooting', 'talos: booting the installed system']);
    assert.ok((cp.convergeSteps ?? []).every((s) => typeof s.at === 'number' && s.signal === 'talosEvents'), 'every step has its time and signal');
    assert.match((await httpFrom(IPS.cp, `${base}/v1/boot/${MACS.cp}`)).body, /booting from local disk/);
  });

  it('Ubuntu autoinstall reports: steps appear; a FAIL fails the host at once, naming the event', { timeout: 120_000 }, async () => {
    await view('ub-1', (h) => h.phase === 'Provisioning', 'provisioning');
    const { token } = await bootScriptFrom(base, MACS.ub, IPS.ub);
    const post = (event: object, from = IPS.ub, path = token): Promise<{ status: number; body: string }> =>
      httpFrom(from, `${base}/v1/report/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'Curtin/23.1' }, body: JSON.stringify(event) });
    // curtin's documented start event (curtin doc/topics/reporting.rst), and subiquity's, as tessia-project/tessia
    // captured them (tests/unit/state_machines/autoinstall/sm_subiquity.py): origin "curtin", float timestamps.
    assert.equal((await post({ origin: 'curtin', timestamp: 1440688425.6038516, event_type: 'start', name: 'cmd-install', description: 'curtin command install' })).status, 200);
    assert.equal((await post({ name: 'subiquity/Meta/status_GET', description: '200 {"state": "RUNNING"}', event_type: 'finish', origin: 'curtin', timestamp: 1613128538.2999392, level: 'INFO', result: 'SUCCESS' })).status, 200);
    assert.equal((await post({ origin: 'curtin', timestamp: 1440688426.1, event_type: 'start', name: 'cmd-install/stage-partitioning', description: 'configuring storage' })).status, 200);
    let ub = await view('ub-1', (h) => (h.convergeSteps ?? []).length > 0, 'a step');
    assert.equal(lastStep(ub)?.signal, 'installerReports');
    assert.equal(ub.phase, 'Provisioning');

    // Refused: another address with the right token, the right address with a wrong token, a body that is no event.
    assert.equal((await post({ origin: 'curtin', event_type: 'finish', name: 'cmd-install', description: 'x', result: 'FAIL' }, IMPOSTOR)).status, 403);
    assert.equal((await post({ origin: 'curtin', event_type: 'finish', name: 'cmd-install', description: 'x', result: 'FAIL' }, IPS.ub, 'f'.repeat(token.length))).status, 403);
    assert.equal((await httpFrom(IPS.ub, `${base}/v1/report/${token}`, { method: 'POST', body: '{"name": 1}' })).status, 400);
    ub = await view('ub-1', (h) => h.phase === 'Provisioning', 'still provisioning');

    // A failure as curtin reports it inside subiquity (the grub failure of real logs, rebuilt as JSON).
    const failed = await post({
      name: 'subiquity/Install/install/curtin_install/cmd-install/stage-curthooks/builtin/cmd-curthooks/install-grub',
      description: 'installing grub to target devices',
      event_type: 'finish', origin: 'curtin', timestamp: 1613128600.5, level: 'ERROR', result: 'FAIL',
    });
    assert.equal(failed.status, 200);
    ub = await view('ub-1', (h) => h.phase === 'Failed', 'failed');
    assert.match(ub.lastError?.message ?? '', /install-grub/);
  });
  it('an Ubuntu host seeded from its NoCloud URL reports where its user-data says and is Converged by the installed system\'s cloud-init', { timeout: 120_000 }, async () => {
    await view('ub-2', (h) => h.phase === 'Provisioning', 'provisioning');
    const { script } = await bootScriptFrom(base, MACS.seeded, IPS.seeded);
    const seed = /\bds=nocloud-net;s=(\S+\/)(?=\s)/.exec(script)?.[1] ?? assert.fail(`no NoCloud seed on the kernel line:\n${script}`);
    assert.equal((await httpFrom(IPS.seeded, `${seed}meta-data`)).status, 200);
    const userData = await httpFrom(IPS.seeded, `${seed}user-data`);
    assert.equal(userData.status, 200);
    type Reporting = Record<string, { type: string; endpoint: string }>;
    const autoinstall = (parseYaml(userData.body) as { autoinstall: { reporting: Reporting; 'user-data': { reporting: Reporting } } }).autoinstall;
    const installer = Object.values(autoinstall.reporting)[0]?.endpoint ?? assert.fail('no installer reporting');
    const target = Object.values(autoinstall['user-data'].reporting)[0]?.endpoint ?? assert.fail('no target reporting');
    const post = async (url: string, body: string): Promise<void> => {
      const reply = await httpFrom(IPS.seeded, url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(reply.status, 200, `${url}: ${reply.body}`);
    };
    for (const event of subiquityInstall()) await post(installer, event);
    let ub = await view('ub-2', (h) => (h.convergeSteps ?? []).some((s) => s.name === 'subiquity/Late/run'), 'the late commands as a step');
    assert.equal(ub.phase, 'Provisioning', 'the installer finishing is not the installed system up');
    for (const event of cloudInitBoot()) await post(target, event);
    ub = await view('ub-2', (h) => h.phase === 'Converged', 'converged');
    assert.ok((ub.convergeSteps ?? []).some((s) => s.name === 'modules-final'), JSON.stringify(ub.convergeSteps));
  });

  it('a Talos base the agent cannot decrypt (here it has no age key) rejects the commit at its line; the last good commit keeps serving', { timeout: 60_000 }, async () => {
    const served = (await fetchStatus(base)).site?.revision;
    const foreign = await identityToRecipient(await generateIdentity());
    const encrypted = await encryptSopsYaml(parseYaml(TALOS_BASE) as Record<string, never>, [foreign]);
    const sopsLine = encrypted.split('\n').findIndex((l) => l.startsWith('sops:')) + 1;
    const withBase = profile('talos-cp', '{any: [talosEvents]}', 'cluster: {clusterName: lab}').replace("    template: |", '    talosBase: configs/talos-cp.sops.yaml\n    template: |');
    const commit = await commitFiles(git, 'lab', 'main', { 'profiles/talos-cp.yaml': withBase, 'configs/talos-cp.sops.yaml': encrypted }, 'a Talos base for another key');
    await agent.poll();
    const status = await fetchStatus(base);
    assert.equal(status.site?.rejected?.revision, commit);
    assert.equal(status.site?.revision, served, 'the last good commit keeps serving');
    assert.match(status.site?.rejected?.errors.join('\n') ?? '', new RegExp(`^configs/talos-cp\\.sops\\.yaml:${sopsLine}:1: the Talos base cannot be decrypted`, 'm'));
  });

  /** The wipe image's report URL from the wipe script the host fetches from its own address. */
  const wipeReportUrl = async (mac: string, ip: string): Promise<string> => {
    const { script } = await bootScriptFrom(base, mac, ip);
    return /forseti\.report=(\S+)/.exec(script)?.[1] ?? assert.fail(`no report URL on the wipe's kernel line:\n${script}`);
  };
  const postFrom = (ip: string, url: string, body: string): Promise<{ status: number; body: string }> =>
    httpFrom(ip, url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'forseti-os-image' }, body });

  it('a site-wide wipe: the image\'s reports are its steps; a disk\'s FAIL fails the wipe at once, naming the disk', { timeout: 120_000 }, async () => {
    await view('wp-1', (h) => h.phase === 'Wiping', 'wiping');
    const url = await wipeReportUrl(MACS.wipeBad, IPS.wipeBad);
    assert.match(url, /\/v1\/report\/[^/]+$/);
    const events = osImageWipe('FAIL');
    // wipe.sh's start, the first disk's start and progress (test/fixtures/installer-reports.ts, README "Wipe events").
    for (const event of events.slice(0, 3)) assert.equal((await postFrom(IPS.wipeBad, url, event)).status, 200);
    let wp = await view('wp-1', (h) => lastStep(h)?.detail === 'disk/vda: zeroed 33554432 of 67108864 bytes', 'the disk\'s progress as the step\'s detail');
    assert.equal(wp.phase, 'Wiping');
    assert.deepEqual([lastStep(wp)?.signal, lastStep(wp)?.name], ['installerReports', 'forseti-wipe']);
    // Another address with the wipe's token is refused and changes nothing.
    assert.equal((await postFrom(IMPOSTOR, url, events.at(-1) ?? '')).status, 403);
    const diskFailed = events.findIndex((e) => e.includes('"result":"FAIL"'));
    for (const event of events.slice(3, diskFailed + 1)) assert.equal((await postFrom(IPS.wipeBad, url, event)).status, 200);
    wp = await view('wp-1', (h) => h.phase === 'Failed', 'the wipe failed');
    assert.equal(wp.lastError?.step, 'forseti-wipe/disk/vdb');
    assert.match(wp.lastError?.message ?? '', /forseti-wipe\/disk\/vdb failed: .*zeroing failed at byte 33554432/);
    // Failed at the disk's finish, before the run's own: the wipe's token ended with it.
    assert.equal((await postFrom(IPS.wipeBad, url, events.at(-1) ?? '')).status, 403);
    assert.equal((await view('wp-1', (h) => h.phase === 'Failed', 'still failed')).lastError?.step, 'forseti-wipe/disk/vdb');
  });

  it('a site-wide wipe whose image reports success is complete; the host\'s role is installed next', { timeout: 120_000 }, async () => {
    await view('wp-2', (h) => h.phase === 'Wiping', 'wiping');
    const url = await wipeReportUrl(MACS.wipeOk, IPS.wipeOk);
    for (const event of osImageWipe('SUCCESS')) assert.equal((await postFrom(IPS.wipeOk, url, event)).status, 200);
    const wp = await view('wp-2', (h) => h.phase === 'Provisioning' || h.phase === 'Ready', 'the wipe complete');
    assert.equal(wp.lastError, undefined);
    assert.ok(lines.some((l) => l['host'] === 'wp-2' && l['msg'] === 'converged' && JSON.stringify(l['by']) === '["installerReports"]'), 'the reports completed the wipe');
    // The wipe's token ended with it: a late report of the same run is refused.
    assert.equal((await postFrom(IPS.wipeOk, url, osImageWipe('SUCCESS')[0] ?? '')).status, 403);
  });
});
