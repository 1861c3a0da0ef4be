// Red-team finding 5: values of the lab's SOPS file became redaction patterns, and the redactor ran on the state the
// agent decides with (the host tracker's events, the alert event before the alerter keyed it). A committer who
// encrypted "rejected", "compute" and "hosts/" to the agent's public age key suppressed commit-rejected alerts,
// blanked problems and broke provisioning. Now redaction happens only where text leaves the agent, lab values are
// patterns only when they can be told apart from other text, and a password that cannot is a problem at its line.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { Agent } from '../src/agent/agent.ts';
import { namesOf, weakness } from '../src/agent/lab-secret-patterns.ts';
import { Alerter } from '../src/alerts/alerter.ts';
import { createLogger } from '../src/log.ts';
import type { Lab } from '../src/model/types.ts';
import { HostTracker } from '../src/observe/host-tracker.ts';
import { Journal } from '../src/observe/journal.ts';
import { REDACTED, Redactor } from '../src/redact/redactor.ts';
import { waitForStatus } from './e2e/status-branch.ts';
import { convergeAs } from './fixtures/as-host.ts';
import { freeTcpPort } from './fixtures/free-port.ts';
import { commitFiles, createBareRepo, readBranchFiles, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { fetchStatus, loopbackAgentConfig, loopbackLabFiles, waitForView, writeTree } from './fixtures/loopback-lab.ts';
import { startRedfishBmc, type RedfishBmc } from './fixtures/redfish/bmc.ts';
import { selfSignedCert } from './fixtures/redfish/certs.ts';
import { syntheticBmc } from './fixtures/redfish/resources.ts';
import { encryptSopsYaml } from './fixtures/sops-encrypt.ts';

const WORDS = ['rejected', 'compute', 'hosts/'];
/** A real credential of the lab: long, random-looking; a BMC echoes it in its login error. */
const LONG = 'Lq9-7fK2-real-lab-secret-xW4';

const silent = createLogger({ level: 'silent' });

describe('the redactor never touches the state the agent decides with', () => {
  // The worst case: the words are patterns (an operator could put them in the agent's own secrets file).
  const redactor = new Redactor();
  redactor.set('worst', WORDS);
  const redact = <T>(value: T): T => redactor.redactDeep(value);

  it('names keep their values in what goes out; free text loses the words', () => {
    const out = redact({ host: 'compute', role: 'compute', kind: 'commit-rejected', step: 'rejected', lastError: { message: 'compute', step: 'script' }, hosts: { compute: { phase: 'Provisioning' } } });
    assert.deepEqual(out, { host: 'compute', role: 'compute', kind: 'commit-rejected', step: 'rejected', lastError: { message: REDACTED, step: 'script' }, hosts: { compute: { phase: 'Provisioning' } } });
  });

  it('the host tracker records the role and steps as they happened', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'forseti-redact-tracker-'));
    try {
      const tracker = new HostTracker(new Journal(join(dir, 'journal.json')), silent);
      await tracker.record('hand', { kind: 'provision-started', role: 'compute', digest: 'd', revision: 'rejected', nonce: 'n' });
      const state = await tracker.record('hand', { kind: 'phone-home', role: 'compute' });
      assert.equal(state.phase, 'Converged');
      assert.equal(state.appliedRole, 'compute');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the alerter keys and formats the raw event; only the payload it sends is redacted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'forseti-redact-alerter-'));
    const sent: string[] = [];
    const fetch = (async (_url: string, init: { body: string }) => {
      sent.push(init.body);
      return new Response('{}', { status: 200 });
    }) as unknown as typeof globalThis.fetch;
    try {
      const alerter = new Alerter({ site: 'loop', sinks: [{ name: 'hook', type: 'webhook', url: 'http://127.0.0.1:9/', events: new Set(['commit-rejected']) }] as never, stateDir: dir, log: silent, fetch, redact });
      await alerter.start();
      assert.equal(await alerter.emit({ kind: 'commit-rejected', revision: 'a'.repeat(40), problems: ['hosts/broken.yaml:1:1: compute'] }), true);
      await alerter.deliverDue();
      await alerter.stop();
      assert.equal(sent.length, 1);
      const body = JSON.parse(sent[0] ?? '{}') as { kind: string; summary: string; event: { kind: string; revision: string } };
      assert.deepEqual([body.kind, body.event.kind, body.event.revision], ['commit-rejected', 'commit-rejected', 'a'.repeat(40)]);
      assert.ok(!body.summary.includes('compute'), 'the text as sent is redacted');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('which lab values are patterns', () => {
  const lab = { site: { name: 'loop' }, hosts: new Map([['hand', {}]]), profiles: new Map([['compute', {}]]), images: new Map([['tiny', {}]]) } as unknown as Lab;
  const names = namesOf(lab, ['blind']);
  for (const [value, why] of [
    ['hosts/', /6 characters, fewer than 8/],
    ['compute', /7 characters/],
    ['rejected', /a name the agent or the lab uses/],
    ['Provisioning', /a name the agent or the lab uses/],
    ['commit-rejected', /a name the agent or the lab uses/],
    ['password', /a plain lower-case word/],
    ['blind-bmc-x', /a plain lower-case word/],
  ] as const) {
    it(`"${value}" is not: ${why.source}`, () => assert.match(weakness(value, names) ?? 'a pattern', why));
  }
  for (const value of [LONG, 'correct-horse-battery-staple', 'Rejected-9x', 'S3cret-pw']) it(`"${value}" is`, () => assert.equal(weakness(value, names), null));
});

describe('the agent with SOPS values "rejected", "compute" and "hosts/"', () => {
  let dir = '';
  let git: GitServer;
  let bmc: RedfishBmc;
  let alerts: Server;
  let agent: Agent;
  let base = '';
  let recipient = '';
  const alertBodies: string[] = [];
  const logLines: string[] = [];

  const hand = `apiVersion: forseti/v1\nkind: Host\nname: hand\nmacs: ['02:00:00:00:0c:01']\nip: 127.0.0.81\nbmc: {type: manual}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: compute\n`;
  const echo = (port: number): string =>
    `apiVersion: forseti/v1\nkind: Host\nname: echo\nmacs: ['02:00:00:00:0c:02']\nip: 127.0.0.82\n` +
    `bmc: {type: redfish, address: 127.0.0.1, port: ${port}, credential: echo-bmc, tls: {insecure: true}}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: worker\n`;
  const sops = (extra: Record<string, { username: string; password: string }> = {}): Promise<string> =>
    encryptSopsYaml({ 'echo-bmc': { username: 'admin', password: LONG, use: ['bmc'], addresses: ['127.0.0.1'], allowInsecureTls: true }, notes: { a: WORDS[0] ?? '', b: WORDS[1] ?? '', c: WORDS[2] ?? '' }, ...extra }, [recipient]);

  const alertsOf = (revision: string): Array<{ kind: string; summary: string }> =>
    alertBodies.map((b) => JSON.parse(b) as { kind: string; summary: string; revision: string }).filter((a) => a.revision === revision);
  async function waitForAlert(revision: string): Promise<{ kind: string; summary: string }> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const found = alertsOf(revision).find((a) => a.kind === 'commit-rejected');
      if (found) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no commit-rejected alert for ${revision}; log:\n${logLines.filter((l) => l.includes('alert')).join('\n')}`);
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'forseti-redact-state-'));
    const identity = await generateIdentity();
    recipient = await identityToRecipient(identity);
    const keyFile = join(dir, 'age.key');
    await writeFile(keyFile, `${identity}\n`, { mode: 0o600 });
    alerts = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        alertBodies.push(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200).end('{}');
      });
    });
    await new Promise<void>((r) => alerts.listen(0, '127.0.0.1', r));
    const cert = selfSignedCert('IP:127.0.0.1');
    bmc = await startRedfishBmc({ resources: syntheticBmc(), tls: { key: cert.key, cert: cert.cert }, username: 'admin', password: `${LONG}-not`, behaviour: { echo: 'json' } });
    const httpPort = await freeTcpPort();
    base = `http://127.0.0.1:${httpPort}`;
    const lab = await loopbackLabFiles(dir, { http: httpPort, tftp: 69 });
    const site = `${lab['site.yaml'] ?? ''}alerts:\n  retry: {initialSeconds: 0.1, maxSeconds: 0.1}\n  sinks: [{name: ops, type: webhook, url: 'http://127.0.0.1:${(alerts.address() as AddressInfo).port}/'}]\n`;
    const compute = (lab['profiles/worker.yaml'] ?? '').replace('name: worker', 'name: compute');
    await writeTree(join(dir, 'seed'), { ...lab, 'site.yaml': site, 'profiles/compute.yaml': compute, 'hosts/hand.yaml': hand, 'hosts/echo.yaml': echo(bmc.port), 'secrets.sops.yaml': await sops() });
    git = await startGitServer();
    await createBareRepo(git, 'lab', join(dir, 'seed'));
    const config = { ...(await loopbackAgentConfig(dir, git.repoUrl('lab'), { tftp: false })), ageKeyFile: keyFile };
    const redactor = new Redactor();
    const sink = new Writable({ write: (c: Buffer, _e, cb) => void (logLines.push(...c.toString('utf8').split('\n').filter(Boolean)), cb()) });
    agent = new Agent(config, createLogger({ level: 'debug', destination: sink, redactor }), { redactor });
    await agent.start();
  });

  after(async () => {
    await agent?.stop();
    await bmc?.close();
    alerts?.closeAllConnections();
    alerts?.close();
    await git?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the host with role compute converges as compute', { timeout: 60_000 }, async () => {
    assert.match(agent.current?.revision ?? '', /^[0-9a-f]{40}$/, 'the commit with the SOPS file is applied');
    await waitForView(base, (v) => v.hosts['hand']?.actions?.at(-1)?.action === 'provision', 'a provision action on hand');
    const home = await convergeAs(base, { mac: '02:00:00:00:0c:01', ip: '127.0.0.81', role: 'compute' });
    assert.equal(home.status, 200, home.body);
    const view = await waitForView(base, (v) => v.hosts['hand']?.phase === 'Converged', 'hand Converged');
    assert.equal(view.hosts['hand']?.role, 'compute');
    const branch = await waitForStatus(git, 'lab', (s) => s.hosts.get('hand')?.phase === 'Converged', 60_000, 'hand Converged on the status branch');
    assert.equal(branch.hosts.get('hand')?.role, 'compute');
  });

  it('a broken commit is rejected with its problem as written, and its commit-rejected alert is delivered', { timeout: 60_000 }, async () => {
    const broken = await commitFiles(git, 'lab', 'main', { 'hosts/broken.yaml': 'x: [\n' }, 'broken');
    await agent.poll();
    const view = await fetchStatus(base);
    assert.equal(view.site?.rejected?.revision, broken);
    assert.match(view.site?.rejected?.errors[0] ?? '', /^hosts\/broken\.yaml:\d+:\d+: /);
    const alert = await waitForAlert(broken);
    assert.match(alert.summary, new RegExp(`commit ${broken.slice(0, 7)} rejected, 1 problem: hosts/broken\\.yaml:`));
    assert.ok(logLines.some((l) => l.includes('"msg":"commit rejected; the last good generation keeps serving"') && l.includes('hosts/broken.yaml')), 'the log says it as it is');
  });

  it('SOPS passwords "rejected", "compute" and "hosts/" reject the commit at their lines, with the alert', { timeout: 60_000 }, async () => {
    const weak = await sops({ blind: { username: 'u', password: 'rejected' }, b5: { username: 'u', password: 'compute' }, b6: { username: 'u', password: 'hosts/' } });
    const commit = await commitFiles(git, 'lab', 'main', { 'hosts/broken.yaml': null, 'secrets.sops.yaml': weak }, 'weak passwords');
    await agent.poll();
    const errors = (await fetchStatus(base)).site?.rejected?.errors ?? [];
    // The line of each credential's `password:` in the committed (encrypted) file, the column of its value.
    const lines = weak.split('\n');
    const at = (name: string): string => {
      const line = lines.findIndex((l, i) => l.trimStart().startsWith('password:') && [...lines.slice(0, i)].reverse().find((k) => /^\S/.test(k))?.startsWith(`${name}:`)) + 1;
      return `secrets.sops.yaml:${line}:${(lines[line - 1] ?? '').indexOf('ENC[') + 1}`;
    };
    assert.deepEqual(errors.map((e) => e.replace(/: it could not be told apart.*$/, '')), [
      `${at('blind')}: the password of credential "blind" is a name the agent or the lab uses`,
      `${at('b5')}: the password of credential "b5" is 7 characters, fewer than 8`,
      `${at('b6')}: the password of credential "b6" is 6 characters, fewer than 8`,
    ]);
    assert.match((await waitForAlert(commit)).summary, /rejected, 3 problems: secrets\.sops\.yaml:\d+:\d+: the password of credential/);
    assert.equal((await fetchStatus(base)).hosts['hand']?.phase, 'Converged', 'the last good commit keeps serving');
  });

  it('the long secret a BMC echoes is in no log line, status file, API body or alert', { timeout: 60_000 }, async () => {
    await waitForView(base, (v) => v.hosts['echo']?.lastError?.message.includes(REDACTED) === true, 'the echoing BMC redacted in lastError');
    await waitForStatus(git, 'lab', (s) => s.hosts.get('echo')?.lastError?.message.includes(REDACTED) === true, 60_000, 'lastError of echo on the branch');
    const branch = Object.values(await readBranchFiles(git, 'lab', 'forseti-status')).join('\n');
    const api = await (await fetch(`${base}/v1/status`)).text();
    const everywhere = [branch, api, ...alertBodies, ...logLines].join('\n');
    assert.ok(logLines.some((l) => l.includes(REDACTED) && l.includes('echo')), 'the echo reached the log, redacted');
    for (const form of [LONG, encodeURIComponent(LONG), LONG.slice(0, 12)]) assert.ok(!everywhere.includes(form), `the secret (${form}) is out`);
  });
});
