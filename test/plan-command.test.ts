// `forseti plan` end to end: a real git repository made with the git CLI, the real CLI, its output line by line.
import { deepEqual, equal, ok } from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runForseti, type CliRun as Run } from './fixtures/forseti-cli.ts';
import { git } from './fixtures/git/git-cli.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = join(ROOT, 'test/fixtures/plan/lab');
let work: string;
let repo: string;
const sha: Record<string, string> = {};

const forseti = runForseti;

function edit(file: string, from: string | RegExp, to: string): void {
  const path = join(repo, file);
  const text = readFileSync(path, 'utf8');
  const next = text.replace(from, to);
  ok(next !== text, `${file}: ${String(from)} not found`);
  writeFileSync(path, next);
}

async function commit(branch: string, message: string): Promise<void> {
  await git(['add', '-A'], repo);
  await git(['commit', '-q', '-m', message], repo);
  sha[branch] = (await git(['rev-parse', 'HEAD'], repo)).trim();
}

async function branchFrom(from: string, branch: string): Promise<void> {
  await git(['checkout', '-q', '-b', branch, from], repo);
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'forseti-plan-cmd-'));
  repo = join(work, 'lab');
  cpSync(FIXTURE, repo, { recursive: true });
  await git(['init', '-q', '-b', 'main'], repo);
  await commit('main', 'base lab');

  // One pull request with every kind of change.
  await branchFrom('main', 'pr');
  edit('hosts/node-1.yaml', 'role: worker', 'role: compute'); // role swap
  edit('hosts/node-2.yaml', 'role: worker', 'role: off'); // role -> off
  rmSync(join(repo, 'hosts/node-3.yaml')); // host removed
  writeFileSync(
    join(repo, 'hosts/node-4.yaml'),
    readFileSync(join(repo, 'hosts/node-6.yaml'), 'utf8').replace('node-6', 'node-4').replace('00:06', '00:04').replace('10.9.0.16', '10.9.0.14'),
  ); // host added
  edit('profiles/worker.yaml', 'role=worker', 'role=worker quiet'); // same role, new cmdline: node-5 re-renders
  await commit('pr', 'every kind of change');

  await branchFrom('main', 'docs');
  writeFileSync(join(repo, 'README.md'), 'Only words.\n');
  await commit('docs', 'docs only');

  await branchFrom('main', 'unmet');
  edit('hosts/node-5.yaml', 'role: worker', 'role: compute');
  edit('hosts/node-5.yaml', 'memoryGiB: 64', 'memoryGiB: 8');
  await commit('unmet', 'a role the hardware cannot run');

  await branchFrom('main', 'broken');
  edit('site.yaml', 'subnet: 10.9.0.0/24', 'subnet: [10.9.0.0/24');
  await commit('broken', 'broken site');
  await branchFrom('broken', 'fixed');
  edit('site.yaml', 'subnet: [10.9.0.0/24', 'subnet: 10.9.0.0/24');
  await commit('fixed', 'fix site');
  await git(['checkout', '-q', 'main'], repo);
});

after(() => rmSync(work, { recursive: true, force: true }));

const short = (branch: string): string => (sha[branch] ?? '').slice(0, 12);

test('text: every kind of change, line by line; exit 1', async () => {
  const run = await forseti(['plan', '--base', 'main', '--head', 'pr', repo]);
  equal(run.code, 1, run.stderr);
  const lines = run.stdout.split('\n');
  const summaryAt = lines.indexOf('6 hosts: 1 nothing, 1 re-render, 1 provision, 1 reprovision, 1 power off by hand, 1 removed');
  deepEqual(lines.slice(0, summaryAt + 1), [
    `forseti plan: BASE ${short('main')} → HEAD ${short('pr')}`,
    `observed: assumed: every host converged at BASE ${short('main')}`,
    'note: no status branch found: every host is taken as converged in its BASE role',
    '',
    'HOST    CHANGE             ROLE              DETAILS',
    'node-1  reprovision        worker → compute  reprovision from role worker to compute',
    'node-2  power off by hand  worker → off      role off keeps the host off; node-2 cannot be powered off remotely (Wake-on-LAN): shut it down from its OS or by hand',
    'node-3  removed            compute → -       no longer declared: forseti forgets it, no power action (it keeps running role compute)',
    'node-4  provision          - → compute       new host: provision role compute',
    'node-5  re-render          worker            role worker unchanged; new artifacts serve at the next boot',
    '',
    '6 hosts: 1 nothing, 1 re-render, 1 provision, 1 reprovision, 1 power off by hand, 1 removed',
  ]);
  // Which files of which host are diffed, in order.
  deepEqual(
    lines.filter((l) => /^(# |--- |\+\+\+ )/.test(l)),
    [
      '# node-1: reprovision',
      '--- a/node-1/boot.ipxe', '+++ b/node-1/boot.ipxe',
      '--- a/node-1/cmdline', '+++ b/node-1/cmdline',
      '# config-node.yaml is marked secret: the agent serves it only to node-1; its template in Git holds no secret',
      '--- /dev/null', '+++ b/node-1/config-node.yaml',
      '# node-2: power off by hand',
      '--- a/node-2/boot.ipxe', '+++ /dev/null',
      '--- a/node-2/cmdline', '+++ /dev/null',
      '# node-4: provision',
      '--- /dev/null', '+++ b/node-4/boot.ipxe',
      '--- /dev/null', '+++ b/node-4/cmdline',
      '# config-node.yaml is marked secret: the agent serves it only to node-4; its template in Git holds no secret',
      '--- /dev/null', '+++ b/node-4/config-node.yaml',
      '# node-5: re-render',
      '--- a/node-5/boot.ipxe', '+++ b/node-5/boot.ipxe',
      '--- a/node-5/cmdline', '+++ b/node-5/cmdline',
    ],
  );
  const kernel = 'kernel http://10.9.0.2:8080/images/1111111111111111111111111111111111111111111111111111111111111111/vmlinuz initrd=initrd';
  const callback = 'forseti.callback=http://10.9.0.2:8080/v1/phone-home forseti.token=<token>';
  deepEqual(lines.slice(lines.indexOf('# node-5: re-render')), [
    '# node-5: re-render',
    '--- a/node-5/boot.ipxe',
    '+++ b/node-5/boot.ipxe',
    '@@ -1,8 +1,8 @@',
    ' #!ipxe',
    ' # forseti: host node-5, role worker',
    ' echo forseti: booting role worker on node-5',
    `-${kernel} console=ttyS0 role=worker ${callback}`,
    `+${kernel} console=ttyS0 role=worker quiet ${callback}`,
    ' initrd http://10.9.0.2:8080/images/2222222222222222222222222222222222222222222222222222222222222222/initrd',
    ' boot || goto failed',
    ' :failed',
    ' echo forseti: boot failed; retrying in 10 s',
    '--- a/node-5/cmdline',
    '+++ b/node-5/cmdline',
    '@@ -1,1 +1,1 @@',
    `-console=ttyS0 role=worker ${callback}`,
    `+console=ttyS0 role=worker quiet ${callback}`,
    '',
  ]);
  ok(!/token=(?!<token>)/.test(run.stdout), 'only placeholder tokens');
  deepEqual(lines.slice(lines.indexOf('+++ b/node-1/config-node.yaml') + 1, lines.indexOf('# node-2: power off by hand')), ['@@ -0,0 +1,2 @@', '+hostname: node-1', '+ip: 10.9.0.11', '']);
});

test('markdown: summary table and one collapsible diff per host, line by line', async () => {
  const run = await forseti(['plan', '--base', 'main', '--head', 'pr', '--format', 'markdown', repo]);
  equal(run.code, 1, run.stderr);
  const lines = run.stdout.split('\n');
  deepEqual(lines.slice(0, lines.indexOf('<details><summary><code>node-1</code>: reprovision (boot.ipxe, cmdline, config-node.yaml)</summary>')), [
    '<!-- forseti-plan -->',
    '### forseti plan',
    '',
    `\`BASE ${short('main')} → HEAD ${short('pr')}\` · observed: assumed: every host converged at BASE ${short('main')}`,
    '',
    '> **note:** no status branch found: every host is taken as converged in its BASE role',
    '',
    '**6 hosts: 1 nothing, 1 re-render, 1 provision, 1 reprovision, 1 power off by hand, 1 removed**',
    '',
    'converged by: `compute` phoneHome · `worker` phoneHome',
    '',
    '| host | change | details |',
    '|---|---|---|',
    '| `node-1` | reprovision | reprovision from role worker to compute |',
    '| `node-2` | power off by hand | role off keeps the host off; node-2 cannot be powered off remotely (Wake-on-LAN): shut it down from its OS or by hand |',
    '| `node-3` | removed | no longer declared: forseti forgets it, no power action (it keeps running role compute) |',
    '| `node-4` | provision | new host: provision role compute |',
    '| `node-5` | re-render | role worker unchanged; new artifacts serve at the next boot |',
    '',
  ]);
  deepEqual(
    lines.filter((l) => l.startsWith('<details>')),
    [
      '<details><summary><code>node-1</code>: reprovision (boot.ipxe, cmdline, config-node.yaml)</summary>',
      '<details><summary><code>node-2</code>: power off by hand (boot.ipxe, cmdline)</summary>',
      '<details><summary><code>node-4</code>: provision (boot.ipxe, cmdline, config-node.yaml)</summary>',
      '<details><summary><code>node-5</code>: re-render (boot.ipxe, cmdline)</summary>',
    ],
  );
  const callback = 'forseti.callback=http://10.9.0.2:8080/v1/phone-home forseti.token=<token>';
  const node5 = lines.indexOf('<details><summary><code>node-5</code>: re-render (boot.ipxe, cmdline)</summary>');
  const cmdlineAt = lines.indexOf('--- a/node-5/cmdline');
  ok(node5 > 0 && cmdlineAt > node5);
  deepEqual(lines.slice(cmdlineAt - 1), [
    '```diff',
    '--- a/node-5/cmdline',
    '+++ b/node-5/cmdline',
    '@@ -1,1 +1,1 @@',
    `-console=ttyS0 role=worker ${callback}`,
    `+console=ttyS0 role=worker quiet ${callback}`,
    '```',
    '',
    '</details>',
    '',
    '<sub>Tokens are placeholders; secret configs are shown as rendered from Git, which holds no secret.</sub>',
    '',
  ]);
  ok(lines.includes('_config-node.yaml is marked secret: the agent serves it only to node-1; its template in Git holds no secret_'));
  equal(lines.filter((l) => l === '```diff').length, 10);
  equal(lines.filter((l) => l === '</details>').length, 4);
});

test('json: the documented shape', async () => {
  const run = await forseti(['plan', '--base', 'main', '--head', 'pr', '--format', 'json', repo]);
  equal(run.code, 1, run.stderr);
  const plan = JSON.parse(run.stdout) as Record<string, unknown> & { hosts: Array<Record<string, unknown>> };
  deepEqual(Object.keys(plan), ['version', 'base', 'head', 'observed', 'notes', 'changed', 'summary', 'converge', 'hosts']);
  equal(plan.version, 1);
  deepEqual(plan.base, { revision: sha.main, valid: true });
  deepEqual(plan.head, { revision: sha.pr });
  deepEqual(plan.observed, { source: 'assumed-base', description: `assumed: every host converged at BASE ${short('main')}` });
  equal(plan.changed, true);
  deepEqual(plan.summary, { none: 1, rerender: 1, provision: 1, reprovision: 1, wipe: 0, 'power-on': 0, 'power-off': 0, 'power-off-by-hand': 1, refused: 0, removed: 1 });
  deepEqual(
    plan.hosts.map((h) => [h.host, h.change, h.baseRole, h.headRole]),
    [
      ['node-1', 'reprovision', 'worker', 'compute'],
      ['node-2', 'power-off-by-hand', 'worker', 'off'],
      ['node-3', 'removed', 'compute', null],
      ['node-4', 'provision', null, 'compute'],
      ['node-5', 'rerender', 'worker', 'worker'],
      ['node-6', 'none', 'compute', 'compute'],
    ],
  );
  for (const h of plan.hosts) deepEqual(Object.keys(h), ['host', 'change', 'baseRole', 'headRole', 'details', 'diffs']);
  const node1 = plan.hosts[0]?.diffs as Array<Record<string, unknown>>;
  deepEqual(
    node1.map((d) => [d.artifact, d.file, d.secret]),
    [
      ['script', 'boot.ipxe', false],
      ['cmdline', 'cmdline', false],
      ['config', 'config-node.yaml', true],
    ],
  );
  equal(node1[2]?.patch, '--- /dev/null\n+++ b/node-1/config-node.yaml\n@@ -0,0 +1,2 @@\n+hostname: node-1\n+ip: 10.9.0.11\n');
});

test('nothing changes: exit 0', async () => {
  const run = await forseti(['plan', '--base', 'main', '--head', 'docs', repo]);
  equal(run.code, 0, run.stderr);
  deepEqual(run.stdout.split('\n').slice(-6), ['', 'no changes: 5 hosts: 5 nothing', '', 'converged by:', '  compute: phoneHome', '  worker: phoneHome', ''].slice(-6));
});

test('a role whose requirements the host does not meet: HEAD is invalid, every problem printed, exit 2', async () => {
  const run = await forseti(['plan', '--base', 'main', '--head', 'unmet', repo]);
  equal(run.code, 2);
  deepEqual(run.stdout.split('\n'), ['hosts/node-5.yaml:8:7: role compute needs memoryGiB >= 16 but host node-5 declares 8', '']);
  equal(run.stderr, `HEAD ${short('unmet')} is invalid: 1 problem; nothing can be planned\n`);

  const md = await forseti(['plan', '--base', 'main', '--head', 'unmet', '--format', 'markdown', repo]);
  equal(md.code, 2);
  deepEqual(md.stdout.split('\n'), [
    '<!-- forseti-plan -->',
    '### forseti plan',
    '',
    `**HEAD \`${short('unmet')}\` is invalid: 1 problem.** Nothing can be planned; the agent would reject this commit whole.`,
    '',
    '```',
    'hosts/node-5.yaml:8:7: role compute needs memoryGiB >= 16 but host node-5 declares 8',
    '```',
    '',
  ]);
});

test('unknown revision: exit 2, named; JSON says so too', async () => {
  const run = await forseti(['plan', '--base', 'main', '--head', 'no-such-branch', repo]);
  equal(run.code, 2);
  equal(run.stdout, '');
  equal(run.stderr, 'forseti plan: revision not found: no-such-branch\n');
  const json = await forseti(['plan', '--base', 'nope', '--head', 'main', '--format', 'json', repo]);
  equal(json.code, 2);
  deepEqual(JSON.parse(json.stdout), { version: 1, error: 'failed', message: 'revision not found: nope' });
  const usage = await forseti(['plan', '--head', 'main', repo]);
  equal(usage.code, 2);
  ok(usage.stderr.startsWith('plan needs --base REV and --head REV\n'), usage.stderr);
});

test('an invalid BASE: diffed against nothing, said so, every host new', async () => {
  const run = await forseti(['plan', '--base', 'broken', '--head', 'fixed', repo]);
  equal(run.code, 1, run.stderr);
  const lines = run.stdout.split('\n');
  deepEqual(lines.slice(0, 6), [
    `forseti plan: BASE ${short('broken')} (invalid) → HEAD ${short('fixed')}`,
    'observed: nothing (every host is new)',
    `note: BASE ${short('broken')} is invalid (1 problems): artifacts are diffed against nothing`,
    'note: no status branch forseti-status and BASE is invalid: every host is taken as new',
    '  BASE: site.yaml:7:3: Flow sequence in block collection must be sufficiently indented and end with a ]',
    '',
  ]);
  ok(lines.includes('5 hosts: 5 provision'), run.stdout);
});

test('status branch origin/forseti-status: observed phases and inventory, a refused role', async () => {
  const clone = join(work, 'clone');
  await git(['clone', '-q', repo, clone]);
  await git(['checkout', '-q', '--orphan', 'status'], clone);
  await git(['rm', '-rfq', '.'], clone);
  mkdirSync(join(clone, 'hosts'));
  const statusFile = (host: string, role: string, phase: string, revision: string | null, extra = ''): string =>
    [`host: ${host}`, `role: ${role}`, `phase: ${phase}`, `revision: ${revision ?? 'null'}`, `attemptedRevision: ${sha.main}`, 'lastError: null', 'since: 2026-11-22T10:00:00.000Z', 'updated: 2026-11-22T10:00:00.000Z', extra].join('\n');
  writeFileSync(join(clone, 'hosts/node-1.yaml'), statusFile('node-1', 'worker', 'Converged', sha.main ?? '', 'inventory:\n  memoryGiB: 8\n'));
  writeFileSync(join(clone, 'hosts/node-3.yaml'), statusFile('node-3', 'compute', 'Converged', sha.main ?? ''));
  writeFileSync(join(clone, 'hosts/node-5.yaml'), statusFile('node-5', 'worker', 'Failed', null).replace('lastError: null', 'lastError:\n  message: no phone-home\n  step: kernel'));
  writeFileSync(join(clone, 'hosts/node-6.yaml'), statusFile('node-6', 'compute', 'Converged', sha.main ?? ''));
  writeFileSync(join(clone, 'site.yaml'), `revision: ${sha.main}\nrejected: null\nupdated: 2026-11-22T10:00:00.000Z\n`);
  await git(['add', '-A'], clone);
  await git(['commit', '-q', '-m', 'status'], clone);
  const statusCommit = (await git(['rev-parse', 'HEAD'], clone)).trim();
  // As in CI: the status branch is only a remote-tracking ref, the checkout is detached at the pull request's head.
  await git(['update-ref', 'refs/remotes/origin/forseti-status', statusCommit], clone);
  await git(['checkout', '-q', '--detach', 'origin/pr'], clone);
  await git(['branch', '-D', 'status'], clone);

  const run = await forseti(['plan', '--base', 'origin/main', '--head', 'HEAD'], clone);
  equal(run.code, 1, run.stderr);
  const lines = run.stdout.split('\n');
  deepEqual(lines.slice(0, lines.indexOf('6 hosts: 1 nothing, 2 provision, 1 power off by hand, 1 refused, 1 removed') + 1), [
    `forseti plan: BASE ${short('main')} → HEAD ${short('pr')}`,
    `observed: status branch origin/forseti-status at ${statusCommit.slice(0, 12)}`,
    '',
    'HOST    CHANGE             ROLE              DETAILS',
    'node-1  refused            worker → compute  role compute needs memoryGiB >= 16 but the BMC of node-1 reports 8',
    'node-2  power off by hand  worker → off      role off keeps the host off; node-2 cannot be powered off remotely (Wake-on-LAN): shut it down from its OS or by hand',
    'node-3  removed            compute → -       no longer declared: forseti forgets it, no power action (it keeps running role compute)',
    'node-4  provision          - → compute       new host: provision role compute',
    'node-5  provision          worker            provision role worker',
    '',
    '6 hosts: 1 nothing, 2 provision, 1 power off by hand, 1 refused, 1 removed',
  ]);
});

test('the lab repository template workflows are valid YAML that run validate and plan', async () => {
  const { parse } = await import('yaml');
  for (const file of ['lab-repo-template/.github/workflows/forseti.yml', 'lab-repo-template/.gitea/workflows/forseti.yml']) {
    const doc = parse(readFileSync(join(ROOT, file), 'utf8')) as { on: Record<string, unknown>; jobs: Record<string, { steps: Array<{ run?: string; uses?: string; with?: Record<string, unknown> }> }> };
    ok('pull_request' in doc.on, file);
    const steps = Object.values(doc.jobs).flatMap((j) => j.steps);
    const runs = steps.map((s) => s.run ?? '').join('\n');
    ok(steps.some((s) => s.uses?.startsWith('actions/checkout@') && s.with?.['fetch-depth'] === 0), `${file}: full history`);
    ok(steps.some((s) => s.uses?.startsWith('actions/setup-node@') && String(s.with?.['node-version']) === '20'), `${file}: Node 20`);
    ok(runs.includes('forseti validate'), file);
    ok(runs.includes('forseti plan --base "origin/${BASE_REF}" --head HEAD --format markdown'), file);
    ok(runs.includes('<!-- forseti-plan -->'), `${file}: finds its own comment to update`);
  }
});

interface ForgeComment {
  id: number;
  body: string;
  user: { id: number; login: string };
}

/**
 * A workflow's Comment step (its inline Node script) run against a fake forge API on loopback: `answer` plays the
 * forge, `comments` are the pull request's comments. Returns the requests made, as `METHOD path auth`.
 */
async function runCommentStep(workflow: string, env: (base: string) => Record<string, string>, answer: (method: string, path: string, body: string) => unknown, plan: string): Promise<{ code: number; stderr: string; calls: string[] }> {
  const { parse } = await import('yaml');
  const doc = parse(readFileSync(join(ROOT, workflow), 'utf8')) as { jobs: { plan: { steps: Array<{ name?: string; run?: string }> } } };
  const run = doc.jobs.plan.steps.find((s) => s.name === 'Comment')?.run ?? '';
  const script = /<<'SCRIPT'\n([\s\S]*?)\nSCRIPT/.exec(run)?.[1];
  ok(script, `${workflow}: the inline Node script`);
  const calls: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const path = req.url?.replace(/\?.*/, '') ?? '';
      calls.push(`${req.method} ${path} ${req.headers.authorization}`);
      const reply = answer(req.method ?? '', path, body);
      res.setHeader('content-type', 'application/json');
      res.statusCode = reply === undefined ? 404 : req.method === 'POST' && !path.endsWith('graphql') ? 201 : 200;
      res.end(JSON.stringify(reply ?? { message: 'Not Found' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(work, 'comment-'));
  writeFileSync(join(dir, 'plan.md'), plan);
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return await new Promise((resolve) => {
      const child = execFile(process.execPath, ['--input-type=module'], { cwd: dir, env: { PATH: process.env.PATH, ...env(base) }, timeout: 30_000 }, (err, _stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stderr, calls }),
      );
      child.stdin?.end(script);
    });
  } finally {
    server.close();
  }
}

/** Plays a forge's comment list: GET lists, POST appends as `me`, PATCH edits by id (any author, as GitHub lets a bot). */
function commentThread(comments: ForgeComment[], me: ForgeComment['user'], list: RegExp, edit: RegExp): (method: string, path: string, body: string) => unknown {
  return (method, path, body) => {
    if (method === 'GET' && list.test(path)) return comments;
    const text = body ? (JSON.parse(body) as { body?: string }).body : undefined;
    if (method === 'POST' && list.test(path) && text !== undefined) {
      const comment = { id: 100 + comments.length, body: text, user: me };
      comments.push(comment);
      return comment;
    }
    const id = edit.exec(path)?.[1];
    const target = comments.find((c) => String(c.id) === id);
    if (method === 'PATCH' && target && text !== undefined) {
      target.body = text;
      return target;
    }
    return undefined;
  };
}

test("the Gitea comment step updates the comment its own user wrote, never one another user started with the marker (user.id against GET /user; a fake Gitea on loopback)", async () => {
  const bot = { id: 9, login: 'forseti-ci' };
  const author = { id: 5, login: 'pr-author' };
  // Like older Gitea: page/limit ignored, every comment returned each time.
  const comments: ForgeComment[] = [
    { id: 7, body: 'LGTM', user: author },
    { id: 8, body: '<!-- forseti-plan -->\n**no changes**', user: author },
  ];
  const thread = commentThread(comments, bot, /^\/api\/v1\/repos\/lab\/lab\/issues\/3\/comments$/, /^\/api\/v1\/repos\/lab\/lab\/issues\/comments\/(\d+)$/);
  const gitea = (method: string, path: string, body: string): unknown => (method === 'GET' && path === '/api/v1/user' ? bot : thread(method, path, body));
  const env = (base: string): Record<string, string> => ({ API: `${base}/api/v1`, REPO: 'lab/lab', PR: '3', TOKEN: 'fake-token' });
  const workflow = 'lab-repo-template/.gitea/workflows/forseti.yml';
  const first = await runCommentStep(workflow, env, gitea, '<!-- forseti-plan -->\nfirst\n');
  equal(first.code, 0, first.stderr);
  const second = await runCommentStep(workflow, env, gitea, '<!-- forseti-plan -->\nsecond\n');
  equal(second.code, 0, second.stderr);
  deepEqual(comments, [
    { id: 7, body: 'LGTM', user: author },
    { id: 8, body: '<!-- forseti-plan -->\n**no changes**', user: author },
    { id: 102, body: '<!-- forseti-plan -->\nsecond\n', user: bot },
  ]);
  deepEqual(second.calls, [
    'GET /api/v1/user token fake-token',
    'GET /api/v1/repos/lab/lab/issues/3/comments token fake-token',
    'PATCH /api/v1/repos/lab/lab/issues/comments/102 token fake-token',
  ]);
  // The job's automatic token may not read /user: Gitea's Actions user (id -2) is who it posts as.
  const actions = { id: -2, login: 'gitea-actions' };
  comments.splice(2, 1, { id: 103, body: '<!-- forseti-plan -->\nold\n', user: actions });
  const noUser = (method: string, path: string, body: string): unknown => (path === '/api/v1/user' ? undefined : thread(method, path, body));
  equal((await runCommentStep(workflow, env, noUser, '<!-- forseti-plan -->\nthird\n')).code, 0);
  deepEqual(comments.map((c) => [c.id, c.body]), [
    [7, 'LGTM'],
    [8, '<!-- forseti-plan -->\n**no changes**'],
    [103, '<!-- forseti-plan -->\nthird\n'],
  ]);
});

test("the GitHub comment step updates the comment its own user wrote, never one the PR author started with the marker (user.login against GraphQL's viewer; a fake GitHub on loopback)", async () => {
  const bot = { id: 41898282, login: 'github-actions[bot]' };
  const author = { id: 5, login: 'pr-author' };
  const comments: ForgeComment[] = [{ id: 8, body: '<!-- forseti-plan -->\n**no changes**', user: author }];
  const thread = commentThread(comments, bot, /^\/repos\/lab\/lab\/issues\/3\/comments$/, /^\/repos\/lab\/lab\/issues\/comments\/(\d+)$/);
  const github = (method: string, path: string, body: string): unknown => {
    if (method === 'POST' && path === '/graphql') return (JSON.parse(body) as { query: string }).query.includes('viewer') ? { data: { viewer: { login: bot.login } } } : undefined;
    if (method === 'GET' && path === '/user') return undefined; // GitHub refuses GET /user to the job's token
    return thread(method, path, body);
  };
  const env = (base: string): Record<string, string> => ({ API: `${base}/repos/lab/lab`, GRAPHQL: `${base}/graphql`, PR: '3', TOKEN: 'ghs_fake' });
  const workflow = 'lab-repo-template/.github/workflows/forseti.yml';
  for (const plan of ['first', 'second']) {
    const run = await runCommentStep(workflow, env, github, `<!-- forseti-plan -->\n${plan}\n`);
    equal(run.code, 0, run.stderr);
  }
  deepEqual(comments, [
    { id: 8, body: '<!-- forseti-plan -->\n**no changes**', user: author },
    { id: 101, body: '<!-- forseti-plan -->\nsecond\n', user: bot },
  ]);
  // a viewer that cannot be told: the step fails rather than guess whose comment to edit
  const blind = (method: string, path: string, body: string): unknown => (path === '/graphql' ? { errors: [{ message: 'no' }] } : thread(method, path, body));
  const failed = await runCommentStep(workflow, env, blind, '<!-- forseti-plan -->\nthird\n');
  equal(failed.code, 1);
  ok(!failed.calls.some((c) => c.startsWith('PATCH') || c.startsWith('POST /repos')), failed.calls.join('\n'));
});
