import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../src/log.ts';
import { createWebhookRoute, handleWebhook, hmacSha256Hex, parseWebhookSettings, pollSchedule, type WebhookConfig, type WebhookResult } from '../src/source/webhook.ts';
import './fixtures/api-contract.ts';

const SECRET = 'wh-s3cret-0f9a2c7d1e';
const BRANCH = 'main';
const AFTER = 'bffeb74224043ba2feb48d137756c8a9331c449a';
const BEFORE = '28e1879d029cb852e4844d9c718537df08844e03';

// Payloads and header sets as the forges send them: GitHub (docs' example delivery), Gitea (services/webhook/
// deliver.go: it also sends the X-GitHub-* and X-Hub-Signature* headers), GitLab (Push Hook, X-Gitlab-Token).
function githubPush(ref = 'refs/heads/main', after = AFTER): Buffer {
  return json({
    ref, before: BEFORE, after, created: false, deleted: /^0+$/.test(after), forced: false,
    repository: { id: 79929171, name: 'asgard-lab', full_name: 'heimdal/asgard-lab', private: true, default_branch: 'main' },
    pusher: { name: 'odin', email: 'odin@example.net' },
    head_commit: { id: after, message: 'bld-003: slurm-compute', timestamp: '2026-11-22T10:00:00+01:00' },
    commits: [{ id: after, message: 'bld-003: slurm-compute', added: [], removed: [], modified: ['hosts/bld-003.yaml'] }],
  });
}

function githubHeaders(body: Buffer, event = 'push', secret = SECRET): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'GitHub-Hookshot/044aadd',
    'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958',
    'x-github-event': event,
    'x-github-hook-id': '292430182',
    'x-github-hook-installation-target-id': '79929171',
    'x-github-hook-installation-target-type': 'repository',
    'x-hub-signature': `sha1=${createHmac('sha1', secret).update(body).digest('hex')}`,
    'x-hub-signature-256': `sha256=${hmacSha256Hex(secret, body)}`,
  };
}

function giteaPush(ref = 'refs/heads/main'): Buffer {
  return json({
    ref, before: BEFORE, after: AFTER,
    compare_url: `http://gitea.lab.home.arpa:3000/heimdal/asgard-lab/compare/${BEFORE}...${AFTER}`,
    commits: [{ id: AFTER, message: 'bld-003: slurm-compute\n', url: `http://gitea.lab.home.arpa:3000/heimdal/asgard-lab/commit/${AFTER}` }],
    repository: { id: 140, owner: { id: 1, login: 'heimdal' }, name: 'asgard-lab', full_name: 'heimdal/asgard-lab', private: true },
    pusher: { id: 1, login: 'odin' },
    sender: { id: 1, login: 'odin' },
  });
}

function giteaHeaders(body: Buffer, secret = SECRET): Record<string, string> {
  const uuid = 'f6266f16-1bf3-46a5-9ea4-602e06ead473';
  const sig256 = hmacSha256Hex(secret, body);
  return {
    'content-type': 'application/json',
    'user-agent': 'Go-http-client/1.1',
    'x-gitea-delivery': uuid, 'x-gitea-event': 'push', 'x-gitea-event-type': 'push', 'x-gitea-signature': sig256,
    'x-gogs-delivery': uuid, 'x-gogs-event': 'push', 'x-gogs-event-type': 'push', 'x-gogs-signature': sig256,
    'x-hub-signature': `sha1=${createHmac('sha1', secret).update(body).digest('hex')}`,
    'x-hub-signature-256': `sha256=${sig256}`,
    'x-github-delivery': uuid, 'x-github-event': 'push', 'x-github-event-type': 'push',
  };
}

function gitlabPush(ref = 'refs/heads/main', objectKind = 'push'): Buffer {
  return json({
    object_kind: objectKind, event_name: objectKind, before: BEFORE, after: AFTER, ref, checkout_sha: AFTER,
    user_username: 'odin', project_id: 15,
    project: { id: 15, name: 'asgard-lab', path_with_namespace: 'heimdal/asgard-lab', default_branch: 'main' },
    commits: [{ id: AFTER, message: 'bld-003: slurm-compute', modified: ['hosts/bld-003.yaml'] }],
    total_commits_count: 1,
  });
}

function gitlabHeaders(token = SECRET, event = 'Push Hook'): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'GitLab/17.5.1',
    'x-gitlab-event': event,
    'x-gitlab-token': token,
    'x-gitlab-instance': 'https://gitlab.lab.home.arpa',
    'x-gitlab-webhook-uuid': randomUUID(),
    'x-gitlab-event-uuid': randomUUID(),
    'idempotency-key': randomUUID(),
  };
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

const config: WebhookConfig = { secret: SECRET, branch: BRANCH };
const push = { repository: 'heimdal/asgard-lab', ref: 'refs/heads/main', after: AFTER };

test('webhook: HMAC matches the test vector of GitHub\'s docs', () => {
  assert.equal(hmacSha256Hex("It's a Secret to Everybody", 'Hello, World!'), '757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17');
  const body = Buffer.from('Hello, World!');
  const headers = { 'x-github-event': 'zen', 'content-type': 'application/json', 'x-hub-signature-256': 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17' };
  assert.equal(handleWebhook({ headers, body }, { secret: "It's a Secret to Everybody", branch: 'main' }).status, 400, 'signature accepted, then the body is no JSON');
});

const cases: Array<{ name: string; headers: Record<string, string>; body: Buffer; status: number; push?: object; message?: RegExp }> = (() => {
  const gh = githubPush();
  const ghOther = githubPush('refs/heads/feature/x');
  const gt = giteaPush();
  const gl = gitlabPush();
  const ping = json({ zen: 'Design for failure.', hook_id: 292430182, hook: { type: 'Repository', events: ['push'] } });
  const plain = Buffer.from('payload=%7B%7D');
  const broken = Buffer.from('{"ref": "refs/heads/main", ');
  const deleted = githubPush('refs/heads/main', '0000000000000000000000000000000000000000');
  const tagPush = gitlabPush('refs/tags/v1', 'tag_push');
  return [
    { name: 'GitHub push to the watched branch', headers: githubHeaders(gh), body: gh, status: 202, push: { provider: 'github', ...push } },
    { name: 'GitHub push to another branch is ignored', headers: githubHeaders(ghOther), body: ghOther, status: 202, message: /refs\/heads\/feature\/x ignored/ },
    { name: 'GitHub ping', headers: githubHeaders(ping, 'ping'), body: ping, status: 200, message: /pong/ },
    { name: 'GitHub issues event is ignored', headers: githubHeaders(ping, 'issues'), body: ping, status: 202, message: /event issues ignored/ },
    { name: 'GitHub signed with another secret', headers: githubHeaders(gh, 'push', 'not-the-secret'), body: gh, status: 401 },
    { name: 'GitHub without a signature', headers: { ...githubHeaders(gh), 'x-hub-signature-256': '' }, body: gh, status: 401 },
    { name: 'GitHub with only the legacy SHA-1 signature', headers: (({ 'x-hub-signature-256': _, ...h }) => h)(githubHeaders(gh)), body: gh, status: 401 },
    { name: 'GitHub body changed after signing', headers: githubHeaders(gh), body: githubPush('refs/heads/main', 'a'.repeat(40)), status: 401 },
    { name: 'GitHub branch deletion is not fetched', headers: githubHeaders(deleted), body: deleted, status: 202, message: /deleted/ },
    { name: 'form content type', headers: { ...githubHeaders(plain), 'content-type': 'application/x-www-form-urlencoded' }, body: plain, status: 400, message: /application\/json/ },
    { name: 'broken JSON', headers: githubHeaders(broken), body: broken, status: 400, message: /not valid JSON/ },
    { name: 'Gitea push (with its GitHub-compatible headers too)', headers: giteaHeaders(gt), body: gt, status: 202, push: { provider: 'gitea', ...push } },
    { name: 'Gitea push to another branch', headers: giteaHeaders(giteaPush('refs/heads/dev')), body: giteaPush('refs/heads/dev'), status: 202, message: /ignored/ },
    { name: 'Gitea with a wrong X-Gitea-Signature is refused even if X-Hub-Signature-256 is right', headers: { ...giteaHeaders(gt), 'x-gitea-signature': 'ab'.repeat(32) }, body: gt, status: 401 },
    { name: 'Gitea without a secret sends an empty signature', headers: { ...giteaHeaders(gt), 'x-gitea-signature': '' }, body: gt, status: 401 },
    { name: 'Forgejo push', headers: { 'content-type': 'application/json', 'x-forgejo-event': 'push', 'x-forgejo-signature': hmacSha256Hex(SECRET, gt) }, body: gt, status: 202, push: { provider: 'gitea', ...push } },
    { name: 'GitLab Push Hook', headers: gitlabHeaders(), body: gl, status: 202, push: { provider: 'gitlab', ...push } },
    { name: 'GitLab system hook push', headers: gitlabHeaders(SECRET, 'System Hook'), body: gl, status: 202, push: { provider: 'gitlab', ...push } },
    { name: 'GitLab wrong token', headers: gitlabHeaders('wrong'), body: gl, status: 401 },
    { name: 'GitLab token that is a prefix of the secret', headers: gitlabHeaders(SECRET.slice(0, -1)), body: gl, status: 401 },
    { name: 'GitLab empty token', headers: gitlabHeaders(''), body: gl, status: 401 },
    { name: 'GitLab tag push is ignored', headers: gitlabHeaders(SECRET, 'Tag Push Hook'), body: tagPush, status: 202, message: /ignored/ },
    { name: 'no forge headers at all', headers: { 'content-type': 'application/json' }, body: gh, status: 400, message: /no event header/ },
  ];
})();

for (const c of cases) {
  test(`webhook: ${c.name} -> ${c.status}`, () => {
    const result = handleWebhook({ headers: c.headers, body: c.body }, config);
    assert.equal(result.status, c.status, result.message);
    assert.deepEqual(result.push, c.push);
    if (c.message) assert.match(result.message, c.message);
  });
}

test('webhook: repository filter', () => {
  const body = githubPush();
  assert.ok(handleWebhook({ headers: githubHeaders(body), body }, { ...config, repository: 'heimdal/asgard-lab' }).push);
  const other = handleWebhook({ headers: githubHeaders(body), body }, { ...config, repository: 'heimdal/other' });
  assert.equal(other.status, 202);
  assert.equal(other.push, undefined);
});

test('webhook: body over the limit is 413; an unset secret refuses everything', () => {
  const body = githubPush();
  assert.equal(handleWebhook({ headers: githubHeaders(body), body }, { ...config, maxBodyBytes: 100 }).status, 413);
  assert.equal(handleWebhook({ headers: githubHeaders(body, 'push', ''), body }, { ...config, secret: '' }).status, 503);
});

test('webhook: a refused signature is logged as a warning without the secret or the signature', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', destination: new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } }) });
  const body = githubPush();
  const headers = githubHeaders(body, 'push', 'attacker-guess');
  assert.equal(handleWebhook({ headers, body, remoteAddress: '192.0.2.7' }, { ...config, log }).status, 401);
  const gl = gitlabPush();
  assert.equal(handleWebhook({ headers: gitlabHeaders(`${SECRET}x`), body: gl }, { ...config, log }).status, 401);
  assert.equal(lines.length, 2);
  const first = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
  assert.equal(first['level'], 40);
  assert.equal(first['provider'], 'github');
  assert.equal(first['remote'], '192.0.2.7');
  for (const line of lines) {
    assert.ok(!line.includes(SECRET), 'secret in a log line');
    assert.ok(!line.includes(hmacSha256Hex('attacker-guess', body)), 'signature in a log line');
  }
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/webhook`;
}

test('webhook route: node:http end to end, raw bytes verified, push handed to the caller', async () => {
  const pushes: WebhookResult[] = [];
  const route = createWebhookRoute((req) => {
    const result = handleWebhook(req, config);
    if (result.push) pushes.push(result);
    return result;
  }, { maxBodyBytes: 4096 });
  const server = createServer((req, res) => void route(req, res));
  const url = await listen(server);
  try {
    // Whitespace and key order as sent: a re-serialised body would not verify.
    const body = Buffer.from(`{\n  "ref": "refs/heads/main",\n  "after": "${AFTER}",\n  "repository": {"full_name": "heimdal/asgard-lab"}\n}\n`);
    const ok = await fetch(url, { method: 'POST', headers: githubHeaders(body), body });
    assert.equal(ok.status, 202);
    assert.equal(await ok.text(), `fetching ${AFTER}\n`);
    assert.equal(pushes.length, 1);

    const bad = await fetch(url, { method: 'POST', headers: githubHeaders(body, 'push', 'x'), body });
    assert.equal(bad.status, 401);
    const get = await fetch(url);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');

    const big = Buffer.alloc(10_000, 0x20);
    const declared = await fetch(url, { method: 'POST', headers: githubHeaders(big), body: big });
    assert.equal(declared.status, 413);
    assert.equal(await chunkedStatus(url, big), 413, 'a chunked body without Content-Length is cut at the limit too');
    assert.equal(pushes.length, 1);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

function chunkedStatus(url: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { ...githubHeaders(body), 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    for (let i = 0; i < body.length; i += 1000) req.write(body.subarray(i, i + 1000));
    req.end();
  });
}

test('pollSchedule: base plus up to the jitter fraction', () => {
  const table: Array<[number, number, number, number]> = [
    [60_000, 0.1, 0, 60_000],
    [60_000, 0.1, 0.5, 63_000],
    [60_000, 0.1, 0.999999, 65_999.94],
    [2_000, 0, 0.7, 2_000],
    [10_000, 1, 0.25, 12_500],
  ];
  for (const [base, jitter, r, expected] of table) assert.equal(pollSchedule(base, jitter, () => r)(), Math.round(expected));
  assert.throws(() => pollSchedule(0, 0.1), RangeError);
  assert.throws(() => pollSchedule(1000, 1.5), RangeError);
  assert.throws(() => pollSchedule(1000, -0.1), RangeError);
});

test('parseWebhookSettings: defaults and errors', () => {
  assert.equal(parseWebhookSettings(undefined), undefined);
  assert.deepEqual(parseWebhookSettings({}), { credential: 'webhook', path: '/v1/webhook', maxBodyBytes: 1024 * 1024 });
  assert.deepEqual(parseWebhookSettings({ credential: 'gitea-hook', repository: 'heimdal/asgard-lab', path: '/hooks/lab', maxBodyBytes: 65536 }), {
    credential: 'gitea-hook', path: '/hooks/lab', repository: 'heimdal/asgard-lab', maxBodyBytes: 65536,
  });
  assert.throws(() => parseWebhookSettings({ path: 'v1' }), /webhook.path/);
  assert.throws(() => parseWebhookSettings({ repository: 'lab' }), /owner\/name/);
  assert.throws(() => parseWebhookSettings([]), /mapping/);
});
