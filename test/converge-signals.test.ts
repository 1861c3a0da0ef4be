// src/serve/converge-signals.ts on its own: the signals that need no help from the OS (dhcpAfterInstall, tcpProbe,
// menuServed) fed as the agent feeds them, `all` waiting for every signal, what a host's attempt records, and the
// wipe role's signals during a site-wide wipe.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ConvergeSpec } from '../src/converge/converge-spec.ts';
import { createLogger } from '../src/log.ts';
import type { Host, Lab, Profile } from '../src/model/types.ts';
import { HostTracker } from '../src/observe/host-tracker.ts';
import { Journal } from '../src/observe/journal.ts';
import type { Generation } from '../src/render/generation.ts';
import { ConvergeSignals } from '../src/serve/converge-signals.ts';
import { osImageWipe } from './fixtures/installer-reports.ts';

let dir = '';
let listener: Server;
const PROBE_IP = '127.0.0.71';
let probePort = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forseti-signals-'));
  listener = createServer((s) => s.destroy());
  await new Promise<void>((resolve) => listener.listen(0, PROBE_IP, resolve));
  probePort = (listener.address() as { port: number }).port;
});
after(async () => {
  await new Promise<void>((resolve) => listener.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

/** Hosts with the given declarations, each provisioning its role (attempt nonce n-<name>), and the signals over them. */
async function setup(roles: Record<string, { ip: string; converge: ConvergeSpec; chain?: true }>) {
  const hosts = new Map<string, Host>();
  const profiles = new Map<string, Profile>();
  for (const [name, r] of Object.entries(roles)) {
    hosts.set(name, { name, macs: [], ip: r.ip, role: name, power: 'on', labels: {}, refs: {} } as unknown as Host);
    profiles.set(name, { name, boot: r.chain ? { kind: 'chain', url: 'http://menu/' } : { kind: 'image', image: 'x', cmdline: '' }, afterInstall: 'disk', converge: r.converge, requires: {}, refs: {} });
  }
  // The signals read only hosts and profiles of the generation.
  const gen = { lab: { hosts, profiles } as unknown as Lab } as unknown as Generation;
  let now = 1_000_000;
  const tracker = new HostTracker(new Journal(join(dir, `journal-${Object.keys(roles).join('-')}.json`)), createLogger({ level: 'silent' }), () => now);
  for (const name of hosts.keys()) await tracker.record(name, { kind: 'provision-started', role: name, digest: 'd', revision: 'r', nonce: `n-${name}` });
  const signals = new ConvergeSignals(() => gen, tracker, createLogger({ level: 'silent' }), () => now);
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));
  return { signals, tracker, host: (n: string) => hosts.get(n) as Host, advance: (ms: number) => (now += ms), settle };
}

test('dhcpAfterInstall: firmware asking again is a step; the installed OS asking for an address converges', async () => {
  const { signals, tracker, host, settle } = await setup({ dhcp: { ip: '127.0.0.72', converge: { mode: 'any', signals: [{ kind: 'dhcpAfterInstall' }] } } });
  signals.dhcp(host('dhcp'), { userClass: '' });
  await settle();
  assert.equal(tracker.get('dhcp').convergeSteps, undefined, 'before the disk answer a DHCP request says nothing');
  signals.diskAnswered(host('dhcp'));
  signals.dhcp(host('dhcp'), { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', userClass: '' });
  await settle();
  assert.equal(tracker.get('dhcp').phase, 'Provisioning');
  assert.equal(tracker.get('dhcp').convergeSteps?.at(-1)?.name, 'dhcp: boot firmware asked again after the disk answer');
  signals.dhcp(host('dhcp'), { vendorClass: 'udhcp 1.36.1', userClass: '' });
  await settle();
  assert.equal(tracker.get('dhcp').phase, 'Converged');
});

test('menuServed converges a chain role once its menu is served', async () => {
  const { signals, tracker, host, settle } = await setup({ menu: { ip: '127.0.0.73', chain: true, converge: { mode: 'any', signals: [{ kind: 'menuServed' }] } } });
  signals.menuServed(host('menu'));
  await settle();
  assert.equal(tracker.get('menu').phase, 'Converged');
});

test('all: installer reports finished and the port answering; a closed port keeps the host waiting', async () => {
  const spec: ConvergeSpec = { mode: 'all', signals: [{ kind: 'installerReports' }, { kind: 'tcpProbe', port: 1 }] };
  const closed = await setup({ node: { ip: PROBE_IP, converge: spec } });
  const report = (s: ConvergeSignals, h: Host, event: object, target = false): void => void s.installerReport(h, JSON.stringify(event), target);
  report(closed.signals, closed.host('node'), { name: 'cmd-install', description: 'curtin command install', event_type: 'finish', origin: 'curtin', result: 'SUCCESS' });
  report(closed.signals, closed.host('node'), { name: 'modules-final', description: 'running modules for final', event_type: 'finish', origin: 'cloudinit', result: 'SUCCESS' }, true);
  await closed.settle();
  assert.ok(closed.tracker.get('node').attemptInstalledAt !== undefined, 'the installer finishing is "installed": the host boots its disk from now on');
  closed.signals.tick();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(closed.tracker.get('node').phase, 'Provisioning', 'port 1 does not answer: all waits');
  assert.equal(closed.tracker.get('node').convergeSteps?.at(-1)?.name, 'tcp 1: not answering yet');

  const open = await setup({ node: { ip: PROBE_IP, converge: { mode: 'all', signals: [{ kind: 'installerReports' }, { kind: 'tcpProbe', port: probePort }] } } });
  report(open.signals, open.host('node'), { name: 'cmd-install', description: 'curtin command install', event_type: 'finish', origin: 'curtin', result: 'SUCCESS' });
  open.signals.tick();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(open.tracker.get('node').phase, 'Provisioning', 'the port answers but cloud-init has not finished');
  report(open.signals, open.host('node'), { name: 'modules-final', description: 'running modules for final', event_type: 'finish', origin: 'cloudinit', result: 'SUCCESS' }, true);
  await open.settle();
  assert.equal(open.tracker.get('node').phase, 'Converged');
});

test('during a site-wide wipe the wipe role\'s declaration decides: its image\'s reports are steps, a FAIL fails the wipe, success completes it', async () => {
  const reportsOrPhone: ConvergeSpec = { mode: 'any', signals: [{ kind: 'installerReports' }, { kind: 'phoneHome' }] };
  const phoneOnly: ConvergeSpec = { mode: 'any', signals: [{ kind: 'phoneHome' }] };
  const table: Array<{ name: string; wipe: ConvergeSpec; role: ConvergeSpec; events: string[]; status: number; phase: string; step?: string }> = [
    { name: 'a disk fails', wipe: reportsOrPhone, role: phoneOnly, events: osImageWipe('FAIL'), status: 200, phase: 'Failed', step: 'forseti-wipe/disk/vdb' },
    { name: 'the run finishes', wipe: reportsOrPhone, role: phoneOnly, events: osImageWipe('SUCCESS'), status: 200, phase: 'Ready' },
    { name: 'the wipe role declares no reports', wipe: phoneOnly, role: reportsOrPhone, events: osImageWipe('FAIL'), status: 409, phase: 'Wiping' },
  ];
  for (const c of table) {
    const hosts = new Map<string, Host>([['w', { name: 'w', macs: [], ip: '127.0.0.74', role: 'worker', power: 'on', labels: {}, refs: {} } as unknown as Host]]);
    const profile = (name: string, converge: ConvergeSpec): [string, Profile] => [name, { name, boot: { kind: 'image', image: 'x', cmdline: '' }, afterInstall: 'pxe', converge, requires: {}, refs: {} }];
    const profiles = new Map<string, Profile>([profile('worker', c.role), profile('erase', c.wipe)]);
    const gen = { lab: { hosts, profiles, site: { wipe: { profile: 'erase' } } } as unknown as Lab } as unknown as Generation;
    const tracker = new HostTracker(new Journal(join(dir, `journal-wipe-${c.status}-${c.phase}.json`)), createLogger({ level: 'silent' }), () => 1_000_000);
    await tracker.record('w', { kind: 'wipe-started', token: 't1', digest: 'd', revision: 'r', nonce: 'n-w' });
    const signals = new ConvergeSignals(() => gen, tracker, createLogger({ level: 'silent' }), () => 1_000_000);
    const answers = c.events.map((e) => signals.installerReport(hosts.get('w') as Host, e, false).status);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(answers[0], c.status, c.name);
    const state = tracker.get('w');
    assert.equal(state.phase, c.phase, c.name);
    assert.equal(state.lastError?.step, c.step, c.name);
    if (c.status === 200) assert.equal(state.convergeSteps?.[0]?.name, 'forseti-wipe', `${c.name}: the run is the step`);
    if (c.phase === 'Ready') assert.equal(state.wipedToken, 't1', `${c.name}: the wipe is complete`);
  }
});
