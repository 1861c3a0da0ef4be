// The `converge` declaration (src/converge/converge-spec.ts): its schema and parser agree, and the pure decision
// that combines signal states into a host's convergence, by tables; the OS-independent signals (simple-signals.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { CONVERGE_DEFINITIONS, CONVERGE_SCHEMA, DEFAULT_CONVERGE, hostConvergence, parseConvergeSpec, signalKey, type ConvergeClock, type ConvergeSpec, type HostConvergence } from '../src/converge/converge-spec.ts';
import { dhcpAfterInstallSignal, isFirmwareDhcp, observedSignal, tcpProbeSignal } from '../src/converge/simple-signals.ts';
import { converge, enterStep, fail, waitingSignal, type SignalState } from '../src/converge/signal.ts';
import { importsUnder } from './fixtures/module-imports.ts';

const json = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

test('schemas/converge.schema.json is CONVERGE_SCHEMA with its definitions', () => {
  const file = JSON.parse(readFileSync(new URL('../schemas/converge.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  const { $schema, title, definitions, ...rest } = file;
  assert.equal($schema, 'http://json-schema.org/draft-07/schema#');
  assert.equal(title, 'forseti profile: converge');
  assert.deepEqual(rest, json(CONVERGE_SCHEMA));
  assert.deepEqual(definitions, json(CONVERGE_DEFINITIONS));
});

/** ajv as src/model/schemas.ts sets it up, on the fragment embedded the way profile.schema.json will take it. */
function validator(): (v: unknown) => boolean {
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true });
  ajv.addVocabulary(['errorMessage', 'patternErrorMessage']);
  const profileLike = { type: 'object', properties: { converge: CONVERGE_SCHEMA }, definitions: CONVERGE_DEFINITIONS };
  const validate = ajv.compile(json(profileLike) as object);
  return (v) => validate({ converge: v }) === true;
}

const declarations: Array<[string, unknown, ConvergeSpec | RegExp]> = [
  ['Talos: events and the API port', { all: ['talosEvents', { tcpProbe: { port: 50000 } }] }, { mode: 'all', signals: [{ kind: 'talosEvents' }, { kind: 'tcpProbe', port: 50000 }] }],
  ['Ubuntu: reports or phone-home', { any: ['installerReports', 'phoneHome'], stepTimeoutSeconds: 1800 }, { mode: 'any', signals: [{ kind: 'installerReports' }, { kind: 'phoneHome' }], stepTimeoutSeconds: 1800 }],
  ['netboot.xyz menu', { any: ['menuServed'] }, { mode: 'any', signals: [{ kind: 'menuServed' }] }],
  ['DHCP after install, long timeout', { all: ['dhcpAfterInstall'], provisionTimeoutSeconds: 7200 }, { mode: 'all', signals: [{ kind: 'dhcpAfterInstall' }], provisionTimeoutSeconds: 7200 }],
  ['both all and any', { all: ['phoneHome'], any: ['talosEvents'] }, /exactly one of all or any/],
  ['neither', { stepTimeoutSeconds: 10 }, /exactly one of all or any/],
  ['empty list', { any: [] }, /at least one signal/],
  ['unknown signal', { any: ['smoke'] }, /"smoke" is not a signal/],
  ['tcpProbe without a port', { any: ['tcpProbe'] }, /tcpProbe needs a port/],
  ['tcpProbe port out of range', { all: [{ tcpProbe: { port: 70000 } }] }, /converge.all\[0\].tcpProbe: must be \{port: N\}/],
  ['tcpProbe with an extra key', { all: [{ tcpProbe: { port: 22, timeout: 5 } }] }, /tcpProbe: must be/],
  ['a signal twice', { any: ['phoneHome', 'phoneHome'] }, /converge.any\[1\]: phoneHome is listed twice/],
  ['the same probe twice', { any: [{ tcpProbe: { port: 22 } }, { tcpProbe: { port: 22 } }] }, /tcpProbe:22 is listed twice/],
  ['an unknown field', { any: ['phoneHome'], timeout: 5 }, /converge.timeout: is not a converge field/],
  ['a timeout that is no whole number', { any: ['phoneHome'], stepTimeoutSeconds: 1.5 }, /stepTimeoutSeconds: must be a whole number/],
  ['not a mapping', ['phoneHome'], /must be a mapping/],
];

test('parser and schema agree on every declaration; the parser names where a problem is', () => {
  const valid = validator();
  for (const [name, value, want] of declarations) {
    const parsed = parseConvergeSpec(value);
    if (want instanceof RegExp) {
      assert.equal(parsed.ok, false, name);
      if (!parsed.ok) assert.match(parsed.problems.map((p) => `${p.path}: ${p.message}`).join('\n'), want, name);
      assert.equal(valid(value), false, `${name}: the schema refuses it too`);
    } else {
      assert.ok(parsed.ok, name);
      assert.deepEqual(parsed.spec, want, name);
      assert.equal(valid(value), true, `${name}: the schema accepts it too`);
    }
  }
  assert.deepEqual(parseConvergeSpec(DEFAULT_CONVERGE.signals.length === 1 ? { any: ['phoneHome'] } : {}), { ok: true, spec: DEFAULT_CONVERGE });
  assert.equal(signalKey({ kind: 'tcpProbe', port: 6443 }), 'tcpProbe:6443');
});

const T = 1_767_225_600_000;
const clock = (now: number): ConvergeClock => ({ now, since: T, provisionTimeoutMs: 900_000, stepTimeoutMs: 300_000 });
const at = (seconds: number): number => T + seconds * 1000;

const stepped = (name: string, s: number, detail?: string): SignalState => enterStep(waitingSignal(), name, at(s), detail);
const done = (name: string, s: number): SignalState => converge(stepped(name, s), at(s));
const broke = (name: string, s: number, reason: string): SignalState => fail(stepped(name, s), { step: name, reason, at: at(s) });

const talosAndProbe: ConvergeSpec = { mode: 'all', signals: [{ kind: 'talosEvents' }, { kind: 'tcpProbe', port: 50000 }] };
const reportsOrPhone: ConvergeSpec = { mode: 'any', signals: [{ kind: 'installerReports' }, { kind: 'phoneHome' }] };

/** The fields of a HostConvergence a row checks; reason as text or a pattern. */
interface Want { state: HostConvergence['state']; at?: number; by?: string[]; signal?: string; step?: unknown; deadline?: number; reason?: RegExp | string }

const decisions: Array<{ name: string; spec: ConvergeSpec; signals: Record<string, SignalState>; agent?: [string, number]; now: number; want: Want }> = [
  {
    name: 'all: both converged → Converged at the later one',
    spec: talosAndProbe, signals: { talosEvents: done('talos: running, ready', 200), 'tcpProbe:50000': done('tcp 50000: answering', 230) }, now: at(240),
    want: { state: 'converged', at: at(230), by: ['talosEvents', 'tcpProbe:50000'] },
  },
  {
    name: 'all: one converged, the other still moving → in progress at the moving one\'s step',
    spec: talosAndProbe, signals: { talosEvents: stepped('talos: booting the installed system', 200, 'services: etcd not running'), 'tcpProbe:50000': done('tcp 50000: answering', 190) }, now: at(250),
    want: { state: 'in-progress', signal: 'talosEvents', deadline: at(500) },
  },
  {
    name: 'all: a failure fails the host at once, naming the signal and its step',
    spec: talosAndProbe, signals: { talosEvents: broke('talos: installing to disk', 100, 'Talos install sequence failed: disk not found'), 'tcpProbe:50000': done('tcp 50000: answering', 90) }, now: at(101),
    want: { state: 'failed', signal: 'talosEvents', step: 'talos: installing to disk', reason: 'talosEvents: Talos install sequence failed: disk not found' },
  },
  {
    name: 'any: the first converged signal wins, even if another failed later',
    spec: reportsOrPhone, signals: { installerReports: broke('modules-final', 400, 'modules-final failed'), phoneHome: done('phone-home', 300) }, now: at(401),
    want: { state: 'converged', at: at(300), by: ['phoneHome'] },
  },
  {
    name: 'any: a FAIL report before anything converged fails the host',
    spec: reportsOrPhone, signals: { installerReports: broke('subiquity/Install/install/curtin_install', 120, 'install-grub failed') }, now: at(121),
    want: { state: 'failed', signal: 'installerReports', step: 'subiquity/Install/install/curtin_install' },
  },
  {
    name: 'no event in time → Failed naming forseti\'s own last step',
    spec: reportsOrPhone, signals: {}, agent: ['initrd', 20], now: at(321),
    want: { state: 'failed', step: 'initrd', reason: /^no progress past step initrd within 300 s \(waiting for installerReports, phoneHome\)$/ },
  },
  {
    name: 'nothing at all, not even a boot step → Failed, saying so',
    spec: reportsOrPhone, signals: {}, now: at(301),
    want: { state: 'failed', step: 'none (no signal reported anything)' },
  },
  {
    name: 'a stream that stopped keeps its last step until the step timeout...',
    spec: talosAndProbe, signals: { talosEvents: stepped('talos: booting the installed system', 100, 'services: etcd not running') }, now: at(399),
    want: { state: 'in-progress', signal: 'talosEvents', deadline: at(400) },
  },
  {
    name: '...and fails naming that step once it passed',
    spec: talosAndProbe, signals: { talosEvents: stepped('talos: booting the installed system', 100, 'services: etcd not running') }, now: at(401),
    want: { state: 'failed', signal: 'talosEvents', step: 'talos: booting the installed system', reason: /^no progress past step talos: booting the installed system within 300 s/ },
  },
  {
    name: 'the declaration\'s own step timeout (a first control plane waiting for bootstrap)',
    spec: { ...talosAndProbe, stepTimeoutSeconds: 3600 }, signals: { talosEvents: stepped('talos: booting the installed system', 100, 'services: etcd not running') }, now: at(401),
    want: { state: 'in-progress', deadline: at(900) },
  },
  {
    name: 'moving, but over the whole attempt\'s time → Failed with the last step',
    spec: reportsOrPhone, signals: { installerReports: stepped('subiquity/Install/install', 880) }, now: at(901),
    want: { state: 'failed', signal: 'installerReports', reason: /^not Converged within 900 s \(last step: subiquity\/Install\/install; waiting for installerReports, phoneHome\)$/ },
  },
  {
    name: 'forseti\'s own step newer than any signal is where the host is',
    spec: reportsOrPhone, signals: { installerReports: stepped('subiquity/Install/install', 50) }, agent: ['answered disk', 80], now: at(90),
    want: { state: 'in-progress', step: { name: 'answered disk', at: at(80) }, deadline: at(380) },
  },
];

for (const d of decisions) {
  test(`convergence: ${d.name}`, () => {
    const got = hostConvergence({ spec: d.spec, signals: d.signals, ...(d.agent ? { agentStep: { name: d.agent[0], at: at(d.agent[1]) } } : {}) }, clock(d.now));
    const { reason, ...rest } = d.want;
    for (const [k, v] of Object.entries(rest)) assert.deepEqual((got as Record<string, unknown>)[k], v, `${k} of ${JSON.stringify(got)}`);
    if (reason !== undefined) {
      assert.ok(got.state === 'failed');
      if (reason instanceof RegExp) assert.match(got.reason, reason);
      else assert.equal(got.reason, reason);
    }
  });
}

test('signals without OS help: phone-home, DHCP after the disk answer, TCP probe', () => {
  assert.equal(observedSignal('phone-home', undefined).status, 'waiting');
  assert.deepEqual(observedSignal('menu served', at(5)).convergedAt, at(5));

  const firmware = [{ vendorClass: 'PXEClient:Arch:00000:UNDI:002001' }, { vendorClass: 'HTTPClient:Arch:00016:UNDI:003001' }, { userClass: 'iPXE' }];
  for (const f of firmware) assert.equal(isFirmwareDhcp(f), true, JSON.stringify(f));
  for (const os of [{}, { vendorClass: 'udhcp 1.35.0' }, { vendorClass: 'forseti-os-image' }]) assert.equal(isFirmwareDhcp(os), false, JSON.stringify(os));

  const requests = [
    { at: at(10), vendorClass: 'PXEClient:Arch:00000:UNDI:002001' }, // before the disk answer: ignored
    { at: at(40), userClass: 'iPXE' }, // firmware again after it
    { at: at(70) }, // the installed OS
  ];
  assert.equal(dhcpAfterInstallSignal(requests, undefined).status, 'waiting', 'nothing counts before forseti answered "disk"');
  const dhcp = dhcpAfterInstallSignal(requests, at(30));
  assert.equal(dhcp.status, 'converged');
  assert.equal(dhcp.convergedAt, at(70));
  assert.deepEqual(dhcp.steps.map((s) => s.name), ['dhcp: boot firmware asked again after the disk answer', 'dhcp: the installed OS asked for an address']);
  assert.equal(dhcpAfterInstallSignal(requests.slice(0, 2), at(30)).status, 'in-progress');

  const probes = [{ at: at(20), open: true }, { at: at(50), open: false }, { at: at(80), open: true }];
  assert.equal(tcpProbeSignal(50000, probes, at(40)).convergedAt, at(80), 'apid answering in maintenance mode before the disk answer does not count');
  const closed = tcpProbeSignal(22, probes.slice(0, 2), at(40));
  assert.equal(closed.status, 'in-progress');
  assert.equal(closed.progressAt, at(50));
});

test('src/converge is pure: node built-ins, its own files, and types of the event sink only', () => {
  const imports = importsUnder(new URL('../src/converge/', import.meta.url));
  assert.ok(imports.length > 3, 'the scan sees the imports');
  for (const i of imports) {
    const ok = i.specifier.startsWith('node:') || i.specifier.startsWith('./') || (i.typeOnly && i.specifier.startsWith('../serve/talos-events/'));
    assert.ok(ok, `${i.file} imports ${i.specifier}`);
  }
});
