// Ubuntu autoinstall on the virtual lab: the real agent in a network namespace, each guest a process in the hosts'
// namespace bound to its host's reserved address (curl --interface). As subiquity and cloud-init would, a guest
// fetches its boot script, then its NoCloud seed (meta-data, user-data) from the URL on its kernel line, and POSTs
// real event payloads (test/fixtures/installer-reports.ts, each cited there: curtin's docs, subiquity's events as
// tessia captured them, cloud-init's stages) to the URLs its user-data names:
//   - steps appear in status, the installed system's cloud-init (modules-final, to its /target URL) converges it;
//   - a `result: FAIL` fails the host at once, naming the event;
//   - an event stream that stops leaves the host at its last step until the role's step timeout, then Failed
//     naming that step.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { HostView } from '../src/status/status-view.ts';
import { tokenIn } from './fixtures/as-host.ts';
import { cloudInitBoot, subiquityGrubFailure, subiquityInstall } from './fixtures/installer-reports.ts';
import { startNsAgent, type NsAgent } from './fixtures/netns-agent.ts';

const AGENT = '10.93.0.1';
const HOSTS = {
  ok: { name: 'ub-ok', ip: '10.93.0.11', mac: '02:93:00:00:00:11', role: 'ubuntu' },
  fail: { name: 'ub-fail', ip: '10.93.0.12', mac: '02:93:00:00:00:12', role: 'ubuntu' },
  stall: { name: 'ub-stall', ip: '10.93.0.13', mac: '02:93:00:00:00:13', role: 'ubuntu-stall' },
};
/** The stalled role's step timeout: long enough for a guest to begin once the host is Provisioning. */
const STALL_STEP_SECONDS = 8;

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The template's Ubuntu roles (lab-repo-template/profiles/slurm-compute.yaml) on the test's tiny image. */
const ubuntuProfile = (name: string, converge: string): string => `apiVersion: forseti/v1
kind: Profile
name: ${name}
boot:
  image: tiny
  cmdline: "console=ttyS0 autoinstall ds=nocloud-net;s={{ urls.nocloud }}"
  config: {name: user-data, file: configs/ubuntu-autoinstall.yaml, secret: true}
converge: ${converge}
`;

const canRun = process.getuid?.() === 0;
describe('Ubuntu autoinstall guests on the virtual lab report to the agent in its namespace', { skip: canRun ? false : 'needs root for network namespaces' }, () => {
  let dir = '';
  let lab: NsAgent | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'forseti-ubuntu-netns-'));
    const mirror = join(dir, 'mirror');
    await mkdir(mirror);
    await writeFile(join(mirror, 'vmlinuz'), 'kernel');
    await writeFile(join(mirror, 'initrd.img'), 'initrd');
    const autoinstall = await readFile('lab-repo-template/configs/ubuntu-autoinstall.yaml', 'utf8');
    const host = (h: { name: string; ip: string; mac: string; role: string }): string =>
      `apiVersion: forseti/v1\nkind: Host\nname: ${h.name}\nmacs: ['${h.mac}']\nip: ${h.ip}\nbmc: {type: manual}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: ${h.role}\n`;
    lab = await startNsAgent({
      dir,
      agent: AGENT,
      clients: Object.values(HOSTS).map((h) => h.ip),
      clientMac: HOSTS.ok.mac,
      fileRoots: [mirror],
      files: (agentInterface) => ({
        'site.yaml': `apiVersion: forseti/v1\nkind: Site\nname: ns\nnetwork: {interface: ${agentInterface}, subnet: 10.93.0.0/24, gateway: ${AGENT}, dns: [${AGENT}], domain: lab.test}\nagent: {address: ${AGENT}, httpPort: 8080}\ndhcp: {mode: off}\n`,
        'images/tiny.yaml': `apiVersion: forseti/v1\nkind: Image\nname: tiny\nkernel: {url: '${pathToFileURL(join(mirror, 'vmlinuz')).href}', sha256: ${sha('kernel')}}\ninitrd: {url: '${pathToFileURL(join(mirror, 'initrd.img')).href}', sha256: ${sha('initrd')}}\n`,
        'configs/ubuntu-autoinstall.yaml': autoinstall,
        'profiles/ubuntu.yaml': ubuntuProfile('ubuntu', '{any: [installerReports]}'),
        'profiles/ubuntu-stall.yaml': ubuntuProfile('ubuntu-stall', `{any: [installerReports], stepTimeoutSeconds: ${STALL_STEP_SECONDS}}`),
        ...Object.fromEntries(Object.values(HOSTS).map((h) => [`hosts/${h.name}.yaml`, host(h)])),
      }),
    });
  }, { timeout: 120_000 });

  after(async () => {
    await lab?.close();
    if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  });

  const net = (): NsAgent => lab ?? assert.fail('no lab');

  /** Polls status (from the host's own address) until `done` holds for the host; the limit is a safety net. */
  const view = async (h: { name: string; ip: string }, done: (v: HostView) => boolean, what: string): Promise<HostView> => {
    let last: HostView | undefined;
    for (let i = 0; i < 600; i++) {
      last = (await net().status(h.ip)).hosts[h.name];
      if (last && done(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    return assert.fail(`never: ${h.name} ${what}; last: ${JSON.stringify(last)}`);
  };
  const lastStep = (v: HostView): { name: string; signal: string; detail?: string } | undefined => v.convergeSteps?.at(-1);

  /** The guest boots: its script from its own address, its seed from the URL on its kernel line; the report URLs its user-data names. */
  const bootGuest = async (h: { name: string; ip: string; mac: string }): Promise<{ installer: string; target: string }> => {
    const script = await net().request(h.ip, `${net().base}/v1/boot/${h.mac.replace(/:/g, '-')}`);
    assert.equal(script.status, 200);
    assert.notEqual(tokenIn(script.body), '', script.body);
    const seed = /\bds=nocloud-net;s=(\S+\/)(?=\s)/.exec(script.body)?.[1] ?? assert.fail(`no NoCloud seed on the kernel line:\n${script.body}`);
    const metaData = await net().request(h.ip, `${seed}meta-data`);
    assert.equal(metaData.status, 200);
    assert.match(metaData.body, new RegExp(`^instance-id: forseti-${h.name}-`));
    const userData = await net().request(h.ip, `${seed}user-data`);
    assert.equal(userData.status, 200, userData.body);
    type Reporting = Record<string, { type: string; endpoint: string }>;
    const autoinstall = (parseYaml(userData.body) as { autoinstall: { reporting: Reporting; 'user-data': { reporting: Reporting } } }).autoinstall;
    const installer = Object.values(autoinstall.reporting)[0];
    const target = Object.values(autoinstall['user-data'].reporting)[0];
    assert.equal(installer?.type, 'webhook');
    return { installer: installer?.endpoint ?? assert.fail('no installer reporting'), target: target?.endpoint ?? assert.fail('no target reporting') };
  };
  /** One event as the webhook reporters POST it (curtin's reporter/handlers.py WebHookHandler: JSON, one per request). */
  const post = async (h: { ip: string }, url: string, body: string): Promise<void> => {
    const reply = await net().request(h.ip, url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(reply.status, 200, `${url}: ${reply.body}`);
  };

  /** The guest of a host being provisioned boots and POSTs the first `count` of `events` to its installer URL. */
  const beginInstall = async (h: { name: string; ip: string; mac: string }, events: string[], count: number): Promise<{ installer: string; target: string }> => {
    await view(h, (v) => v.phase === 'Provisioning', 'provisioning');
    const urls = await bootGuest(h);
    for (const event of events.slice(0, count)) await post(h, urls.installer, event);
    return urls;
  };

  // First: the stalled role's step timeout counts from the host's power cycle, so its guest must begin at once.
  it('an event stream that stops leaves the host at its last step until the step timeout, then Failed naming it', { timeout: 120_000 }, async () => {
    const h = HOSTS.stall;
    const events = subiquityInstall();
    await beginInstall(h, events, events.findIndex((e) => e.includes('stage-partitioning') && e.includes('"start"')) + 1);
    const stalled = await view(h, (v) => lastStep(v)?.detail?.includes('stage-partitioning') === true, 'at the partitioning');
    assert.equal(stalled.phase, 'Provisioning');
    assert.equal(lastStep(stalled)?.name, 'subiquity/Install/install');
    const failed = await view(h, (v) => v.phase === 'Failed', 'failed by the step timeout');
    assert.equal(failed.lastError?.step, 'subiquity/Install/install');
    assert.match(failed.lastError?.message ?? '', new RegExp(`no progress past step subiquity/Install/install within ${STALL_STEP_SECONDS} s; waiting on .*stage-partitioning`));
    assert.equal(lastStep(failed)?.name, 'subiquity/Install/install', 'the last step stays what it was');
  });

  it('steps appear in status as the installer reports them; the installed system\'s modules-final converges the host', { timeout: 120_000 }, async () => {
    const h = HOSTS.ok;
    const events = subiquityInstall();
    const early = events.findIndex((e) => e.includes('subiquity/Install/install"') && e.includes('"start"'));
    const urls = await beginInstall(h, events, early + 1);
    let v = await view(h, (x) => lastStep(x)?.name === 'subiquity/Install/install', 'installing');
    assert.deepEqual(v.convergeSteps?.map((s) => [s.signal, s.name]), [['installerReports', 'subiquity/Early/run'], ['installerReports', 'subiquity/Install/install']], 'API chatter is no step');
    for (const event of events.slice(early + 1)) await post(h, urls.installer, event);
    v = await view(h, (x) => lastStep(x)?.name === 'subiquity/Shutdown/shutdown', 'rebooting into the installed system');
    assert.equal(v.phase, 'Provisioning', 'the installer finishing is not the installed system up');
    assert.match((await net().request(h.ip, `${net().base}/v1/boot/${h.mac.replace(/:/g, '-')}`)).body, /booting from local disk/, 'installed: its PXE answer is the disk');
    for (const event of cloudInitBoot()) await post(h, urls.target, event);
    v = await view(h, (x) => x.phase === 'Converged', 'converged');
    assert.equal(v.appliedRole, 'ubuntu');
    assert.equal(lastStep(v)?.name, 'modules-final');
  });

  it('a result: FAIL fails the host at once, naming the event; what follows is refused', { timeout: 120_000 }, async () => {
    const h = HOSTS.fail;
    const events = subiquityGrubFailure();
    const firstFail = events.findIndex((e) => e.includes('"FAIL"'));
    const urls = await beginInstall(h, events, firstFail);
    const before = await view(h, (v) => lastStep(v)?.name === 'subiquity/Install/install', 'installing');
    assert.equal(before.phase, 'Provisioning');
    await post(h, urls.installer, events[firstFail] ?? '');
    const failed = await view(h, (v) => v.phase === 'Failed', 'failed');
    const grub = 'subiquity/Install/install/curtin_install/run_curtin_step/cmd-install/stage-curthooks/builtin/cmd-curthooks/configuring-bootloader/install-grub';
    assert.equal(failed.lastError?.step, grub);
    assert.match(failed.lastError?.message ?? '', /install-grub failed: installing grub to target devices/);
    // The parents' FAIL that curtin sends next: the attempt's token ended with the failure.
    const next = await net().request(h.ip, urls.installer, { method: 'POST', headers: { 'content-type': 'application/json' }, body: events[firstFail + 1] ?? '' });
    assert.equal(next.status, 403);
  });
});
