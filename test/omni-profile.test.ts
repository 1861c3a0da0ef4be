// Omni-managed Talos (the template's talos-omni role): Omni's join parameters on the kernel line, the join token the
// password of a credential bound to use omni and Omni's API URL, put into the host's own script only when the host
// itself is served it (never in a generation, a plan or `render`); Converged when apid answers after the boot
// forseti served (tcpProbe after: boot).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { credentialProblems } from '../src/agent/credential-check.ts';
import { createLogger } from '../src/log.ts';
import { loadLab, formatProblem } from '../src/model/load.ts';
import type { Host, Lab, Profile } from '../src/model/types.ts';
import { HostTracker } from '../src/observe/host-tracker.ts';
import { Journal } from '../src/observe/journal.ts';
import { renderSide } from '../src/plan/render-side.ts';
import { writeGeneration, type Generation } from '../src/render/generation.ts';
import { renderHost } from '../src/render/host.ts';
import { ImageCache } from '../src/render/image-cache.ts';
import { TOKEN_SLOT } from '../src/render/token.ts';
import { AgentUrls } from '../src/render/urls.ts';
import { Secrets } from '../src/secrets/secrets.ts';
import { AgentBootBackend } from '../src/serve/boot-backend.ts';
import { ConvergeSignals } from '../src/serve/converge-signals.ts';

const JOIN_TOKEN = 'v1:omni-join-token-for-forseti-tests-0123456789abcdef';
const log = createLogger({ level: 'silent' });
let dir = '';
let template: Lab;

/** The template with ODEN in the Omni role. */
function omniLab(): Lab {
  const oden = template.hosts.get('oden') as Host;
  return { ...template, hosts: new Map([...template.hosts].map(([n, h]) => [n, n === 'oden' ? { ...oden, role: 'talos-omni' } : h])) };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forseti-omni-'));
  const { lab, problems } = await loadLab('lab-repo-template');
  assert.ok(lab, problems.map(formatProblem).join('\n'));
  template = lab;
});
after(() => rm(dir, { recursive: true, force: true }));

test('the kernel line carries Omni\'s join parameters with a slot for the token; plan and render show no token', () => {
  const lab = omniLab();
  const rendered = renderHost(lab.hosts.get('oden') as Host, { lab, urls: new AgentUrls(lab.site), revision: 'r', token: () => 'T' });
  assert.match(
    rendered.cmdline ?? '',
    / siderolink\.api=https:\/\/asgard\.siderolink\.omni\.siderolabs\.io\?jointoken=@@forseti-credential:omni-join@@ talos\.events\.sink=\[fdae:41e4:649b:9303::1\]:8090 talos\.logging\.kernel=tcp:\/\/\[fdae:41e4:649b:9303::1\]:8092 /,
  );
  assert.doesNotMatch(rendered.cmdline ?? '', /talos\.halt_if_installed|talos\.config=/, 'no config of forseti\'s, no sink of forseti\'s');
  assert.equal(rendered.config, undefined);
  const plan = renderSide('r', lab).hosts.get('oden');
  assert.ok(plan?.script?.includes('jointoken=@@forseti-credential:omni-join@@'));

  // An Omni role cannot converge on forseti's event sink: its events go to Omni.
  const omni = lab.profiles.get('talos-omni') as Profile;
  const wrong = { ...lab, profiles: new Map([...lab.profiles, ['talos-omni', { ...omni, converge: { mode: 'any' as const, signals: [{ kind: 'talosEvents' as const }] } }]]) };
  assert.throws(() => renderHost(wrong.hosts.get('oden') as Host, { lab: wrong, urls: new AgentUrls(lab.site), revision: 'r', token: () => 'T' }), (err: Error) => /^profiles\/talos-omni\.yaml:\d+:\d+: host oden: an Omni-managed role publishes its events to Omni/.test(err.message));
});

test('the join token goes into the host\'s own script at its own address only, never into the generation', async () => {
  const lab = omniLab();
  const state = join(dir, 'state');
  const gen: Generation = await writeGeneration(state, { lab, urls: new AgentUrls(lab.site), revision: 'e'.repeat(40), token: () => TOKEN_SLOT });
  const tracker = new HostTracker(new Journal(join(state, 'journal.json')), log);
  const desired = gen.hosts.get('oden')?.desired;
  assert.ok(desired);
  await tracker.record('oden', { kind: 'provision-started', role: desired.role, digest: desired.digest, revision: desired.revision, nonce: 'n1' });
  await tracker.record('oden', { kind: 'step', step: 'power-cycled' });
  const images = new ImageCache(join(state, 'images'), log);
  const mac = (lab.hosts.get('oden') as Host).macs[0] ?? '';
  const held = new AgentBootBackend(() => gen, tracker, images, Buffer.alloc(32, 1), log, { credential: (n) => (n === 'omni-join' ? JOIN_TOKEN : undefined) });
  const own = held.scriptFor(mac, '10.77.0.11');
  assert.equal(own.answer, 'install');
  assert.ok(own.script.includes(`siderolink.api=https://asgard.siderolink.omni.siderolabs.io?jointoken=${JOIN_TOKEN} `), own.script);
  const other = held.scriptFor(mac, '10.77.0.12');
  assert.ok(!other.script.includes(JOIN_TOKEN) && other.answer === 'refused');
  const missing = new AgentBootBackend(() => gen, tracker, images, Buffer.alloc(32, 1), log, {}).scriptFor(mac, '10.77.0.11');
  assert.equal(missing.answer, 'refused');
  assert.match(missing.script, /credential "omni-join" of its kernel line is not held by the agent/);
  assert.doesNotMatch(missing.script, /jointoken/);
  const files = await readdir(gen.dir);
  for (const f of files) assert.ok(!(await readFile(join(gen.dir, f), 'utf8')).includes(JOIN_TOKEN), `${f} holds no join token`);
});

test('the join token\'s credential must be held and bound to use omni and the profile\'s API URL', async () => {
  const lab = omniLab();
  const problemsWith = async (entry: string | undefined): Promise<string[]> => {
    const file = join(dir, 'secrets.yaml');
    await writeFile(file, entry === undefined ? '{}\n' : `omni-join: ${entry}\n`);
    const secrets = await Secrets.load(file, {});
    return credentialProblems(lab, secrets, new Map()).map(formatProblem).filter((p) => p.startsWith('profiles/talos-omni.yaml'));
  };
  assert.deepEqual(await problemsWith('{username: omni, password: tok, use: [omni], urls: [https://asgard.siderolink.omni.siderolabs.io]}'), []);
  assert.match((await problemsWith(undefined)).join('\n'), /^profiles\/talos-omni\.yaml:\d+:\d+: credential "omni-join" \(Omni's join token\) is not in the agent's secrets/);
  assert.match((await problemsWith('{username: omni, password: tok}')).join('\n'), /credential "omni-join" \(secrets file\) says no use: .*use: \[omni\] and urls/);
  assert.match((await problemsWith('{username: omni, password: tok, use: [bmc], addresses: [10.0.0.0/8]}')).join('\n'), /credential "omni-join" may not be used for omni \(its use: bmc\)/);
  assert.match(
    (await problemsWith('{username: omni, password: tok, use: [omni], urls: [https://other.siderolink.omni.siderolabs.io]}')).join('\n'),
    /^profiles\/talos-omni\.yaml:\d+:\d+: credential "omni-join" may not be sent to https:\/\/asgard\.siderolink\.omni\.siderolabs\.io \(boot\.omni\.api of profile talos-omni\)/m,
  );
});

test('tcpProbe after: boot counts from the script served, not from a disk answer', async () => {
  const listener: Server = createServer((s) => s.destroy());
  await new Promise<void>((r) => listener.listen(0, '127.0.0.81', r));
  try {
    const port = (listener.address() as { port: number }).port;
    const host = { name: 'omni', macs: [], ip: '127.0.0.81', role: 'omni', power: 'on', labels: {}, refs: {} } as unknown as Host;
    const profile: Profile = { name: 'omni', boot: { kind: 'image', image: 'x', cmdline: '' }, afterInstall: 'pxe', converge: { mode: 'any', signals: [{ kind: 'tcpProbe', port, after: 'boot' }] }, requires: {}, refs: {} };
    const gen = { lab: { hosts: new Map([['omni', host]]), profiles: new Map([['omni', profile]]) } as unknown as Lab } as unknown as Generation;
    const tracker = new HostTracker(new Journal(join(dir, 'journal-probe.json')), log);
    await tracker.record('omni', { kind: 'provision-started', role: 'omni', digest: 'd', revision: 'r', nonce: 'n' });
    const signals = new ConvergeSignals(() => gen, tracker, log);
    signals.tick();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(tracker.get('omni').phase, 'Provisioning', 'nothing is probed before the host booted what forseti served');
    assert.equal(tracker.get('omni').convergeSteps, undefined);
    signals.scriptServed(host);
    signals.tick();
    for (let i = 0; i < 50 && tracker.get('omni').phase !== 'Converged'; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(tracker.get('omni').phase, 'Converged');
    assert.equal(tracker.get('omni').convergeSteps?.at(-1)?.name, `tcp ${port}: answering`);
  } finally {
    await new Promise<void>((r) => listener.close(() => r()));
  }
});
