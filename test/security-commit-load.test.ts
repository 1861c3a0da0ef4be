// What a commit or a pull request can make forseti do with text, tried as an attacker would (red-team report 1,
// findings 2, 3 and 15), against the real CLI (`forseti validate|plan` in a child process) and the real agent
// (in-process, fetching from git's own http-backend): a placeholder that backtracked cubically, 60,000 keys in one
// file, escapes that were checked quadratically, thousands of problems, bidirectional overrides and iPXE settings in
// a kernel line. Each is refused with problems at file:line:col, at most 100 of them and one line for the rest.
// That the work stays linear is counted, never timed: the scanners count the characters they look at, the node
// cap the characters lexed before it refuses (bench/commit-load.bench.ts has the seconds).
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { Agent } from '../src/agent/agent.ts';
import { createLogger } from '../src/log.ts';
import { urlProblems } from '../src/model/check-boot-text.ts';
import { secretSpans } from '../src/model/check-secrets.ts';
import { DEFAULT_LAB_LIMITS } from '../src/model/lab-limits.ts';
import { urlCredentials } from '../src/model/url-credentials.ts';
import { yamlLimitHit } from '../src/model/yaml-limits.ts';
import { YamlFile } from '../src/model/yaml-source.ts';
import { checkTemplate, type ScanMeter } from '../src/core/template.ts';
import { runForseti, ROOT, type CliRun } from './fixtures/forseti-cli.ts';
import { git } from './fixtures/git/git-cli.ts';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { fetchStatus, loopbackAgentConfig, writeTree } from './fixtures/loopback-lab.ts';

const MINIMAL = join(ROOT, 'test/fixtures/labs/minimal');
const MiB = 1024 * 1024;
let work = '';

before(() => {
  work = mkdtempSync(join(tmpdir(), 'forseti-sec-load-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

const lines = (...l: string[]): string => `${l.join('\n')}\n`;

/** What the red team committed, each within the caps (1 MiB a file). */
const PAYLOAD = {
  /** `{{`, 5,000 spaces and no `}}` in a cmdline: 3½ minutes of the agent's main thread. */
  cmdlinePlaceholder: lines('apiVersion: forseti/v1', 'kind: Profile', 'name: slow', `boot: {image: tiny, cmdline: "{{${' '.repeat(5000)}x"}`),
  /** The same as a config template file of 1 MiB: never ended. */
  placeholderFile: `{{${' '.repeat(MiB - 4096)}x`,
  /** One flow mapping of 60,000 keys (830 KB): 66 s in validate, a 10.5 MB /v1/status. */
  keys: `{${Array.from({ length: 60_000 }, (_, i) => `k${i}: ${i}`).join(',')}}\n`,
  /** `%41` 100,000 times in an image URL: 52 s in validate. */
  escapes: lines('apiVersion: forseti/v1', 'kind: Image', 'name: tiny', `kernel: {url: 'http://mirror.lan/${'%41'.repeat(100_000)}', sha256: ${'a'.repeat(64)}}`),
  /** 3,000 unknown variables in a config template: one problem each, 3,000 lines of status. */
  manyProblems: `${'{{ nope }}\n'.repeat(3000)}`,
  /** A bidirectional override: on screen `console=ttyS0 hs/nib/=tini quiet`, to the kernel init=/bin/sh. */
  bidi: lines('apiVersion: forseti/v1', 'kind: Profile', 'name: worker', 'boot:', '  image: tiny', '  cmdline: "console=ttyS0 \\u202Einit=/bin/sh\\u202C quiet"'),
  /** iPXE settings in the kernel line: whatever the DHCP server put in root-path goes to the kernel. */
  settings: lines('apiVersion: forseti/v1', 'kind: Profile', 'name: worker', 'boot:', '  image: tiny', '  cmdline: console=ttyS0 ${root-path}'),
};

const workerWithFile = (file: string): string => lines('apiVersion: forseti/v1', 'kind: Profile', 'name: worker', 'boot:', '  image: tiny', '  cmdline: console=ttyS0', `  config: {name: user-data, file: ${file}}`);

let labs = 0;
function lab(files: Record<string, string>): string {
  const dir = join(work, `lab-${++labs}`);
  cpSync(MINIMAL, dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  return dir;
}

/** Exit code, the expected problems, every problem line one `file:line:col: message` line, and no crash. */
function assertProblems(run: CliRun, code: number, ...expected: RegExp[]): string[] {
  const all = `${run.stdout}\n${run.stderr}`;
  assert.equal(run.code, code, all.slice(0, 4000));
  for (const pattern of expected) assert.match(run.stdout, pattern);
  assert.doesNotMatch(all, /Maximum call stack|RangeError|TypeError|\n\s+at /, 'no crash, no stack trace');
  const problems = run.stdout.trimEnd().split('\n').filter((l) => l !== '');
  for (const line of problems) assert.match(line, /^[^\s:]+:\d+:\d+: \S/, line.slice(0, 200));
  return problems;
}

test('the scanners over lab text look at each character a bounded number of times, whatever the text (counted, not timed)', () => {
  const n = MiB;
  const adversarial = {
    placeholder: [`{{${' '.repeat(n)}x`, '{{'.repeat(n / 2), `${`{{${'a'.repeat(100)}}x`.repeat(n / 104)}`, `${'{{ x }'.repeat(n / 6)}`, `${'}}{{'.repeat(n / 4)}`],
    url: [`${'a.'.repeat(n / 2)}://@`, `${'a://'.repeat(n / 4)}`, `x://${'b'.repeat(n)}:`, `x://u:${'p:'.repeat(n / 2)}`, `${'h+t.'.repeat(n / 4)}://`],
    secret: [`password=${' '.repeat(n)}&`, `${'password '.repeat(n / 9)}`, `token:${'\t'.repeat(n)}"`, `${'a.'.repeat(n / 2)}pwd=x`, `secret = "${' '.repeat(n)}`],
  };
  const bounded = (what: string, text: string, count: (meter: ScanMeter) => void, perChar: number): void => {
    const meter = { steps: 0 };
    count(meter);
    assert.ok(meter.steps <= perChar * text.length + 64, `${what} on ${JSON.stringify(text.slice(0, 40))}…: ${meter.steps} steps for ${text.length} characters`);
  };
  for (const text of adversarial.placeholder) bounded('placeholders', text, (m) => checkTemplate(text, m), 4);
  for (const text of adversarial.url) bounded('URL credentials', text, (m) => urlCredentials(text, m), 4);
  for (const text of [...adversarial.url, ...adversarial.secret]) bounded('secret patterns', text, (m) => secretSpans(`${text} key`, m), 8);
  // the red team's measurements, for scale: n=4,000 spaces took the placeholder regex 69 s; 1 MiB never ended
  // Escapes: one regular expression with a fixed two-character lookahead finds the bad `%`, then the run of good
  // escapes before it is walked back once (the old /(?:%XX)*%(?!XX)/g rescanned the run from every escape in it).
  const url = `http://mirror.lan/${'%41'.repeat(n / 3)}%4`;
  assert.deepEqual(urlProblems(url).map((p) => [p.offset, p.code]), [['http://mirror.lan/'.length, 'image-url']]);
});

test('the node cap refuses 60,000 keys before either YAML reader composes anything: the lexer stops at node 20,001', () => {
  const meter = { steps: 0 };
  const hit = yamlLimitHit(PAYLOAD.keys, 64, 100, 20_000, meter);
  assert.ok(hit, 'refused');
  assert.match(hit.message, /more than 20,000 YAML nodes/);
  // node 20,001 is the value of key 9,999 (the `{` is one node): everything after it was never even lexed
  assert.equal(hit.offset, PAYLOAD.keys.indexOf('k9999: 9999') + 'k9999: '.length);
  assert.ok(meter.steps <= hit.offset + 4, `${meter.steps} characters lexed to refuse at ${hit.offset} of ${PAYLOAD.keys.length}`);
  const parsed = YamlFile.parse('hosts/keys.yaml', PAYLOAD.keys);
  assert.equal(parsed.yaml, undefined);
  assert.deepEqual(parsed.problems.map((p) => `${p.code} ${p.ref.line}:${p.ref.col}`), [`yaml-limit 1:${hit.offset + 1}`]);
  // exactly at the cap is fine: a flow sequence (one node) of 19,999 items is 20,000 nodes
  const items = (count: number): string => `[${Array(count).fill('a').join(',')}]\n`;
  assert.equal(yamlLimitHit(items(19_999), 64, 100, DEFAULT_LAB_LIMITS.maxYamlNodes), undefined);
  assert.match(yamlLimitHit(items(20_000), 64, 100, DEFAULT_LAB_LIMITS.maxYamlNodes)?.message ?? '', /more than 20,000 YAML nodes/);
});

test('validate and plan refuse the red team\'s placeholder, key and escape bombs at file:line:col and finish', { timeout: 300_000 }, async () => {
  const placeholder = lab({ 'profiles/slow.yaml': PAYLOAD.cmdlinePlaceholder });
  assertProblems(await runForseti(['validate', placeholder]), 1, /^profiles\/slow\.yaml:4:30: boot\.cmdline: must NOT have more than 4096 characters$/m);
  const file = lab({ 'profiles/worker.yaml': workerWithFile('configs/user-data'), 'configs/user-data': PAYLOAD.placeholderFile });
  assertProblems(await runForseti(['validate', file]), 1, /^configs\/user-data:1:1: unbalanced "\{\{" or "\}\}" in template$/m);
  const inline = lab({ 'profiles/worker.yaml': lines('apiVersion: forseti/v1', 'kind: Profile', 'name: worker', 'boot:', '  image: tiny', '  cmdline: console=ttyS0', '  config:', '    name: user-data', '    template: |', `      {{${' '.repeat(MiB - 8192)}x`) });
  assertProblems(await runForseti(['validate', inline]), 1, /^profiles\/worker\.yaml:10:7: boot\.config\.template: unbalanced "\{\{" or "\}\}" in template$/m);

  const keys = lab({ 'hosts/keys.yaml': PAYLOAD.keys });
  assertProblems(await runForseti(['validate', keys]), 1, /^hosts\/keys\.yaml:1:\d+: more than 20,000 YAML nodes \(keys, values and list items\); a lab file needs a few hundred$/m);
  const escapes = lab({ 'images/tiny.yaml': PAYLOAD.escapes });
  assertProblems(await runForseti(['validate', escapes]), 1, /^images\/tiny\.yaml:4:15: kernel\.url: must NOT have more than 8192 characters$/m);

  // CI can allow more nodes, as an agent with raised lab.limits would; the duplicate-key check stays linear then
  const dupes = lab({ 'hosts/dupes.yaml': `${Array.from({ length: 30_000 }, (_, i) => `k${i % 15_000}: ${i}`).join('\n')}\n` });
  const raised = assertProblems(await runForseti(['validate', dupes, '--max-yaml-nodes', '100000']), 1, /^hosts\/dupes\.yaml:15001:1: Map keys must be unique$/m);
  assert.equal(raised.length, 101);
  assert.match(raised[100] ?? '', /^hosts\/dupes\.yaml:15101:1: and 14,900 more problems \(forseti reports the first 100 of a commit; lab\.limits\.maxProblems or --max-problems raise that\)$/);
});

test('thousands of problems: the first 100 and one line for the rest, the same in validate, plan (text, markdown, JSON) and with --max-problems', { timeout: 300_000 }, async () => {
  const repo = join(work, 'problems-repo');
  cpSync(MINIMAL, repo, { recursive: true });
  await git(['init', '-q', '-b', 'main'], repo);
  await git(['add', '-A'], repo);
  await git(['commit', '-q', '-m', 'lab'], repo);
  await git(['checkout', '-q', '-b', 'pr'], repo);
  writeFileSync(join(repo, 'profiles/worker.yaml'), workerWithFile('configs/user-data'));
  mkdirSync(join(repo, 'configs'));
  writeFileSync(join(repo, 'configs/user-data'), PAYLOAD.manyProblems);
  writeFileSync(join(repo, 'hosts/keys.yaml'), PAYLOAD.keys);
  await git(['add', '-A'], repo);
  await git(['commit', '-q', '-m', 'many problems'], repo);

  const more = 'and 2,901 more problems (forseti reports the first 100 of a commit; lab.limits.maxProblems or --max-problems raise that)';
  const shown = assertProblems(await runForseti(['validate', repo]), 1, /^configs\/user-data:1:1: unknown template variable "nope"/m);
  assert.equal(shown.length, 101);
  assert.equal(shown[100], `configs/user-data:101:1: ${more}`);
  const text = await runForseti(['plan', '--base', 'main', '--head', 'pr', '--format', 'text', repo]);
  assert.equal(text.code, 2);
  assert.ok(text.stdout.includes(`configs/user-data:101:1: ${more}`), text.stdout.slice(-2000));
  const markdown = await runForseti(['plan', '--base', 'main', '--head', 'pr', '--format', 'markdown', repo]);
  assert.match(markdown.stdout, /\*\*HEAD `[0-9a-f]{12}` is invalid: 101 problems\.\*\*/);
  assert.ok(markdown.stdout.includes(`configs/user-data:101:1: ${more}`));
  assert.ok(markdown.stdout.length < 40_000, `the comment stays small: ${markdown.stdout.length} characters`);
  const json = JSON.parse((await runForseti(['plan', '--base', 'main', '--head', 'pr', '--format', 'json', repo])).stdout) as { problems: Array<{ code: string; message: string }> };
  assert.equal(json.problems.length, 101);
  assert.deepEqual(json.problems.at(-1), { file: 'configs/user-data', line: 101, col: 1, code: 'more-problems', message: more });
  const all = assertProblems(await runForseti(['validate', repo, '--max-problems', '5000']), 1);
  assert.equal(all.length, 3001, 'every problem when CI asks for them (3,000 in the template, one for the keys)');
});

test('bidirectional overrides and iPXE settings in a kernel line are refused by validate and plan; a plan comment shows no invisible character', { timeout: 120_000 }, async () => {
  const hidden = 'is an invisible or format character (bidirectional override, zero-width, non-ASCII space); it changes what a reviewer sees without showing itself';
  assertProblems(await runForseti(['validate', lab({ 'profiles/worker.yaml': PAYLOAD.bidi })]), 1, new RegExp(`^profiles/worker\\.yaml:6:12: boot\\.cmdline: U\\+202E ${hidden.replace(/[()]/g, '\\$&')}$`, 'm'));
  assertProblems(await runForseti(['validate', lab({ 'profiles/worker.yaml': PAYLOAD.settings })]), 1, /^profiles\/worker\.yaml:6:26: boot\.cmdline: "\$\{" would have iPXE expand one of its settings into the kernel command line/m);
  const label = lab({ 'hosts/node-2.yaml': lines('apiVersion: forseti/v1', 'kind: Host', 'name: node-2', "macs: ['aa:bb:cc:00:00:02']", 'ip: 10.9.0.12', 'bmc: {type: wol}', 'role: off', 'labels: {rack: "a\u2066b\u2069"}', 'description: "zero\u200Bwidth"') });
  assertProblems(await runForseti(['validate', label]), 1, /^hosts\/node-2\.yaml:8:18: labels\.rack: U\+2066 /m, /^hosts\/node-2\.yaml:9:19: description: U\+200B /m);
  const config = lab({ 'profiles/worker.yaml': workerWithFile('configs/user-data'), 'configs/user-data': '#cloud-config\nruncmd: [echo \u202Esafe\n' });
  assertProblems(await runForseti(['validate', config]), 1, /^configs\/user-data:2:15: U\+202E /m);

  const repo = join(work, 'bidi-repo');
  cpSync(MINIMAL, repo, { recursive: true });
  await git(['init', '-q', '-b', 'main'], repo);
  await git(['add', '-A'], repo);
  await git(['commit', '-q', '-m', 'lab'], repo);
  await git(['checkout', '-q', '-b', 'pr'], repo);
  writeFileSync(join(repo, 'profiles/worker.yaml'), PAYLOAD.bidi);
  await git(['add', '-A'], repo);
  await git(['commit', '-q', '-m', 'bidi'], repo);
  const plan = await runForseti(['plan', '--base', 'main', '--head', 'pr', '--format', 'markdown', repo]);
  assert.equal(plan.code, 2);
  assert.match(plan.stdout, /profiles\/worker\.yaml:6:12: boot\.cmdline: U\+202E is an invisible or format character/);
  assert.doesNotMatch(plan.stdout, /[\u202A-\u202E\u2066-\u2069\u200B-\u200F]/u, 'no invisible character reaches the comment');
});

/** A TCP port nobody listens on right now (the kernel picks it). */
function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

test('the agent rejects each bomb whole with at most 101 problem lines, /v1/status stays small, and applies the revert', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-sec-load-agent-'));
  const port = await freeTcpPort();
  const log = createLogger({ level: 'warn', destination: new Writable({ write: (_c: Buffer, _e, cb) => cb() }) });
  let server: GitServer | undefined;
  let agent: Agent | undefined;
  try {
    const site = lines('apiVersion: forseti/v1', 'kind: Site', 'name: loop', 'network: {interface: lo, subnet: 127.0.0.0/24, dns: []}', `agent: {address: 127.0.0.1, httpPort: ${port}, tftpPort: ${port}}`);
    const image = lines('apiVersion: forseti/v1', 'kind: Image', 'name: tiny', `kernel: {url: 'http://127.0.0.1:1/vmlinuz', sha256: ${'a'.repeat(64)}}`);
    const good = {
      'site.yaml': site,
      'images/tiny.yaml': image,
      'profiles/off.yaml': lines('apiVersion: forseti/v1', 'kind: Profile', 'name: off', 'boot: {off: true}'),
      'hosts/hand.yaml': lines('apiVersion: forseti/v1', 'kind: Host', 'name: hand', "macs: ['02:00:00:00:07:01']", 'ip: 127.0.0.71', 'bmc: {type: manual}', 'role: off'),
    };
    await writeTree(join(dir, 'seed'), good);
    server = await startGitServer();
    await createBareRepo(server, 'lab', join(dir, 'seed'));
    agent = new Agent(await loopbackAgentConfig(dir, server.repoUrl('lab'), { tftp: false }), log);
    await agent.start();
    const base = `http://127.0.0.1:${port}`;
    const first = agent.current?.revision;
    assert.ok(first, 'the first commit is applied');

    const bombs: Array<[string, Record<string, string | null>, RegExp]> = [
      ['placeholder', { 'profiles/worker.yaml': workerWithFile('configs/user-data'), 'configs/user-data': PAYLOAD.placeholderFile }, /^configs\/user-data:1:1: unbalanced/m],
      ['60,000 keys', { 'profiles/worker.yaml': null, 'configs/user-data': null, 'hosts/keys.yaml': PAYLOAD.keys }, /^hosts\/keys\.yaml:1:\d+: more than 20,000 YAML nodes/m],
      ['escapes', { 'hosts/keys.yaml': null, 'images/tiny.yaml': PAYLOAD.escapes }, /^images\/tiny\.yaml:4:15: kernel\.url: must NOT have more than 8192 characters/m],
      ['3,000 problems', { 'images/tiny.yaml': image, 'profiles/worker.yaml': workerWithFile('configs/user-data'), 'configs/user-data': PAYLOAD.manyProblems }, /^configs\/user-data:101:1: and 2,900 more problems/m],
      ['bidi', { 'configs/user-data': null, 'profiles/worker.yaml': PAYLOAD.bidi }, /^profiles\/worker\.yaml:6:12: boot\.cmdline: U\+202E/m],
      ['iPXE settings', { 'profiles/worker.yaml': PAYLOAD.settings }, /^profiles\/worker\.yaml:6:26: boot\.cmdline: "\$\{"/m],
    ];
    for (const [name, files, expected] of bombs) {
      const commit = await commitFiles(server, 'lab', 'main', files, name);
      await agent.poll();
      const response = await fetch(`${base}/v1/status`);
      const body = await response.text();
      const view = JSON.parse(body) as Awaited<ReturnType<typeof fetchStatus>>;
      assert.equal(view.site?.rejected?.revision, commit, `${name}: rejected`);
      assert.equal(view.site?.revision, first, `${name}: the last good commit keeps serving`);
      const errors = view.site?.rejected?.errors ?? [];
      assert.match(errors.join('\n'), expected, name);
      assert.ok(errors.length <= 101, `${name}: ${errors.length} problem lines`);
      assert.ok(body.length < 200_000, `${name}: /v1/status is ${body.length} bytes`);
    }
    // The revert: the lab as it was, applied.
    const revert = await commitFiles(server, 'lab', 'main', { 'profiles/worker.yaml': null }, 'revert');
    await agent.poll();
    const applied = await fetchStatus(base);
    assert.equal(applied.site?.revision, revert);
    assert.equal(applied.site?.rejected, null);
  } finally {
    await agent?.stop();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
