// Secrets never leave the process, in any encoding. The redactor on each form (raw, JSON-escaped, URL-encoded with
// `+` and `%20` and either hex case, HTML named and numeric references, Basic base64 of user:password), then the
// real paths out: `forseti bmc` and an in-process agent (its log, /v1/status, the status branch) against fixture
// Redfish BMCs that echo the login in their errors, with passwords full of characters that escape.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../src/agent/agent.ts';
import { bmcCommand } from '../src/cli/commands/bmc.ts';
import { createLogger } from '../src/log.ts';
import { MIN_SUBSTRING_SECRET_LENGTH, REDACTED, Redactor, scrubSecrets } from '../src/redact/redactor.ts';
import { redactUrl } from '../src/redact/url.ts';
import { waitForStatus } from './e2e/status-branch.ts';
import { freeTcpPort } from './fixtures/free-port.ts';
import { createBareRepo, readBranchFiles, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { fetchStatus, loopbackAgentConfig, loopbackLabFiles, waitForView, writeTree } from './fixtures/loopback-lab.ts';
import { startRedfishBmc, type Behaviour, type RedfishBmc } from './fixtures/redfish/bmc.ts';
import { selfSignedCert } from './fixtures/redfish/certs.ts';
import { syntheticBmc } from './fixtures/redfish/resources.ts';

const USER = 'admin';

/** A password with every character some layer escapes: quote, backslash, <&>, space, +, %, non-ASCII, astral. */
function nasty(tag: string): string {
  return `Zq8-${tag}"q\\b <&> +%2B é€😀 end`;
}

const htmlNamed = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);
const htmlNumeric = (s: string): string => [...s].map((c) => `&#${c.codePointAt(0)};`).join('');
const htmlHex = (s: string): string => [...s].map((c) => `&#x${(c.codePointAt(0) ?? 0).toString(16).toUpperCase()};`).join('');
const lowerHex = (s: string): string => s.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase());

/** Every form a leak could take, and the password's own prefix (a partial redaction would leave it). */
function leakForms(user: string, password: string): Record<string, string> {
  return {
    raw: password,
    json: JSON.stringify(password).slice(1, -1),
    'json twice': JSON.stringify(JSON.stringify(password).slice(1, -1)).slice(1, -1),
    'json ascii': JSON.stringify(password).slice(1, -1).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
    'url %20': encodeURIComponent(password),
    'url lower hex': lowerHex(encodeURIComponent(password)),
    'url form +': new URLSearchParams({ p: password }).toString().slice(2),
    'html named': htmlNamed(password),
    'html decimal': htmlNumeric(password),
    'html hex': htmlHex(password),
    'basic base64': Buffer.from(`${user}:${password}`).toString('base64'),
    prefix: password.slice(0, 9),
  };
}

function assertNoLeak(where: string, text: string, user: string, password: string): void {
  for (const [form, value] of Object.entries(leakForms(user, password))) {
    assert.ok(!text.includes(value), `${where} carries the password (${form}: ${value}):\n${text.slice(Math.max(0, text.indexOf(value) - 200), text.indexOf(value) + 200)}`);
  }
}

describe('the redactor', () => {
  const password = nasty('unit');
  const redactor = new Redactor();
  redactor.set('test', [{ username: USER, password }, 'x']);

  for (const [form, value] of Object.entries(leakForms(USER, password))) {
    if (form === 'prefix') continue;
    it(`redacts the ${form} form inside other text`, () => {
      const out = redactor.redact(`before ${value} after`);
      assert.equal(out, `before ${REDACTED} after`);
    });
  }

  it('redacts a form mixed inside one value (one encoder escaped the quote, another the space)', () => {
    const mixed = password.replace('"', '\\"').replace(' ', '%20');
    assert.equal(redactor.redact(`[${mixed}]`), `[${REDACTED}]`);
  });

  it(`a secret shorter than ${MIN_SUBSTRING_SECRET_LENGTH} characters is redacted as a whole value, never inside other text`, () => {
    assert.equal(redactor.redact('x'), REDACTED);
    assert.equal(redactor.redact('exit 0 after x tries'), 'exit 0 after x tries');
    assert.deepEqual(redactor.redactDeep({ password: 'x', note: 'x marks', list: ['x'] }), { password: REDACTED, note: 'x marks', list: [REDACTED] });
  });

  it('a log line stays valid JSON and loses the secret from its message, fields, nested error and stack', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', redactor, destination: new Writable({ write: (c: Buffer, _e, cb) => void (lines.push(c.toString()), cb()) }) });
    const cause = new Error(`upstream said ${JSON.stringify({ Password: password })}`);
    log.error({ err: new Error(`login failed for ${encodeURIComponent(password)}`, { cause }), header: `Basic ${Buffer.from(`${USER}:${password}`).toString('base64')}`, password: 'x' }, `failed: ${htmlNamed(password)}`);
    log.info({ short: 'x', text: 'x y' }, 'ok');
    assert.equal(lines.length, 2);
    const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assertNoLeak('log line', lines.join(''), USER, password);
    assert.match(String(first?.['msg']), /^failed: \[redacted\]$/);
    assert.match(JSON.stringify(first?.['err']), /login failed for \[redacted\].*upstream said/s);
    assert.equal(first?.['password'], '[redacted]');
    assert.deepEqual([second?.['short'], second?.['text']], [REDACTED, 'x y']);
  });

  it('a group is replaced, not added to: the lab secrets of the last commit count', () => {
    const r = new Redactor();
    r.set('lab', ['first-secret-1']);
    r.set('lab', ['second-secret-2']);
    assert.equal(r.redact('first-secret-1 second-secret-2'), `first-secret-1 ${REDACTED}`);
  });

  it('attempt tokens: found as whole hex runs, in any field or line, and replaced per group', () => {
    const redactor = new Redactor();
    const token = 'a'.repeat(16) + '0123456789abcdef';
    redactor.setTokens('attempt-tokens', [token, 'not-a-token']);
    assert.equal(redactor.redact(`GET /v1/hosts/h/config/x?token=${token}`), `GET /v1/hosts/h/config/x?token=${REDACTED}`);
    assert.equal(redactor.redact(`digest ${token}ff`), `digest ${token}ff`, 'a longer hex run is not a token');
    assert.deepEqual(redactor.redactDeep({ auth: `Bearer ${token}` }), { auth: `Bearer ${REDACTED}` });
    assert.equal(redactor.redactLine(`{"msg":"x","t":"${token}"}\n`), `{"msg":"x","t":"${REDACTED}"}\n`);
    redactor.setTokens('attempt-tokens', []);
    assert.equal(redactor.redact(token), token);
  });

  it('scrubSecrets (one credential, no redactor at hand) and redactUrl', () => {
    assert.equal(scrubSecrets(`fatal: ${encodeURIComponent(password)}`, [password, undefined]), `fatal: ${REDACTED}`);
    assert.equal(redactUrl('https://agent:hunter2@git.example/lab.git?token=abc&x=1'), 'https://git.example/lab.git?token=redacted&x=1');
  });
});

describe('secrets echoed by a BMC never reach the output', () => {
  const modes = ['json', 'form', 'html', 'headers'] as const;
  const bmcs = new Map<string, RedfishBmc>();
  const passwords = new Map<string, string>(modes.map((m) => [m, nasty(m)]));
  let dir = '';
  let seed = '';
  let secretsFile = '';
  let git: GitServer;
  let httpPort = 0;

  const hostFile = (mode: string, port: number, n: number): string =>
    `apiVersion: forseti/v1\nkind: Host\nname: echo-${mode}\nmacs: ['02:00:00:00:0a:0${n}']\nip: 127.0.0.${70 + n}\n` +
    `bmc: {type: redfish, address: 127.0.0.1, port: ${port}, credential: echo-${mode}, tls: {insecure: true}}\n` +
    `hardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: worker\n`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'forseti-redaction-'));
    const cert = selfSignedCert('IP:127.0.0.1');
    const files: Record<string, string> = {};
    let n = 1;
    for (const mode of modes) {
      const behaviour: Partial<Behaviour> = { echo: mode, ...(mode === 'headers' ? { sessions: 404 as const } : {}) };
      const bmc = await startRedfishBmc({ resources: syntheticBmc(), tls: { key: cert.key, cert: cert.cert }, username: USER, password: passwords.get(mode) ?? '', behaviour });
      bmcs.set(mode, bmc);
      files[`hosts/echo-${mode}.yaml`] = hostFile(mode, bmc.port, n++);
    }
    httpPort = await freeTcpPort();
    Object.assign(files, await loopbackLabFiles(dir, { http: httpPort, tftp: 69 }));
    seed = join(dir, 'seed');
    await writeTree(seed, files);
    secretsFile = join(dir, 'secrets.yaml');
    await writeFile(secretsFile, modes.map((m) => `echo-${m}: {username: ${USER}, password: ${JSON.stringify(passwords.get(m))}, use: [bmc], addresses: [127.0.0.1], allowInsecureTls: true}\n`).join(''), { mode: 0o600 });
    git = await startGitServer();
    await createBareRepo(git, 'lab', seed);
  });

  after(async () => {
    for (const bmc of bmcs.values()) await bmc.close();
    await git?.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const mode of modes) {
    it(`forseti bmc: a ${mode} echo exits 1 with the error, the password in no form`, async () => {
      let stdout = '';
      let stderr = '';
      const code = await bmcCommand([`echo-${mode}`, 'status', '--lab', seed, '--secrets', secretsFile], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {} });
      assert.equal(code, 1, stderr);
      assert.match(stderr, new RegExp(`forseti bmc: host echo-${mode} .*\\[redacted\\]`), 'the echo is in the error, redacted');
      for (const password of passwords.values()) assertNoLeak(`forseti bmc (${mode})`, stdout + stderr, USER, password);
    });
  }

  it('the agent: its log, /v1/status and lastError on the status branch carry no form of any password', { timeout: 120_000 }, async () => {
    const lines: string[] = [];
    const redactor = new Redactor();
    const log = createLogger({ level: 'debug', redactor, destination: new Writable({ write: (c: Buffer, _e, cb) => void (lines.push(c.toString()), cb()) }) });
    const config = { ...(await loopbackAgentConfig(dir, git.repoUrl('lab'), { tftp: false })), secretsFile };
    const agent = new Agent(config, log, { redactor });
    await agent.start();
    try {
      const base = `http://127.0.0.1:${httpPort}`;
      const failing = (v: Awaited<ReturnType<typeof fetchStatus>>): boolean => modes.every((m) => v.hosts[`echo-${m}`]?.lastError?.message.includes(REDACTED));
      await waitForView(base, failing, 'every echoing host with a redacted lastError');
      const statusText = await (await fetch(`${base}/v1/status`)).text();
      const branch = await waitForStatus(git, 'lab', (s) => modes.every((m) => s.hosts.get(`echo-${m}`)?.lastError?.message.includes(REDACTED)), 60_000, 'lastError of every echoing host');
      const branchFiles = Object.values(await readBranchFiles(git, 'lab', 'forseti-status')).join('\n');
      const lastErrors = modes.map((m) => branch.hosts.get(`echo-${m}`)?.lastError?.message ?? '').join('\n');
      for (const password of passwords.values()) {
        assertNoLeak('the agent log', lines.join(''), USER, password);
        assertNoLeak('/v1/status', statusText, USER, password);
        assertNoLeak('the status branch', branchFiles, USER, password);
        assertNoLeak('lastError on the status branch', lastErrors, USER, password);
      }
      assert.ok(lines.some((l) => l.includes(REDACTED) && /echo-/.test(l)), 'the log did carry the echoed errors, redacted');
    } finally {
      await agent.stop();
    }
  });
});
