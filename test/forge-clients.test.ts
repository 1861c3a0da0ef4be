// Pull requests for discovered machines through GitHub's, Gitea's and GitLab's APIs, against local stand-ins that
// answer as each forge documents: the request each client sends (method, path, auth header, body), the "already
// exists" answers (GitHub 422, Gitea 409, GitLab 409) taken as "nothing to do", labels, and every failure bounded
// in time and size with the token redacted.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createForgeClient, ForgeAnswerError, ForgeAuthError, ForgeUnreachableError } from '../src/source/forge/index.ts';
import type { ForgeClient, ForgeConfig, PullRequestRequest } from '../src/source/forge/index.ts';
import { FAKE_REPOSITORY, startFakeForge } from './fixtures/forge/forge-server.ts';
import type { FakeForge, ForgeKind } from './fixtures/forge/forge-server.ts';

const pr: PullRequestRequest = {
  head: 'forseti/discovered/52-54-00-77-02-02',
  base: 'main',
  title: 'Discovered czj3110abc: HP ProLiant BL460c Gen8, serial CZJ3110ABC',
  body: 'forseti found a machine no host declares.\n\n- **MAC**: `52:54:00:77:02:02`\n',
  labels: ['discovered', 'hardware'],
};

const forges: ForgeKind[] = ['github', 'gitea', 'gitlab'];

/** A JSON answer from an interceptor; true: answered. */
function answer(res: ServerResponse, status: number, body: unknown): true {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
  return true;
}
const running: FakeForge[] = [];
after(async () => {
  for (const f of running) await f.close();
});

async function forge(kind: ForgeKind): Promise<{ fake: FakeForge; client: ForgeClient; config: ForgeConfig }> {
  const fake = await startFakeForge(kind);
  running.push(fake);
  const config: ForgeConfig = { type: kind, api: fake.api, repository: FAKE_REPOSITORY[kind], token: fake.token, timeoutMs: 2000 };
  return { fake, client: createForgeClient(config), config };
}

/** What each forge documents for the create request: path, the auth header, the body's fields. */
const expected: Record<ForgeKind, { path: string; auth: [string, string]; body: Record<string, unknown> }> = {
  github: {
    path: '/repos/lab-admins/lab/pulls',
    auth: ['authorization', 'Bearer forge-token-4f1c9e2a'],
    body: { title: pr.title, head: pr.head, base: 'main', body: pr.body },
  },
  gitea: {
    path: '/api/v1/repos/lab-admins/lab/pulls',
    auth: ['authorization', 'token forge-token-4f1c9e2a'],
    body: { title: pr.title, head: pr.head, base: 'main', body: pr.body, labels: [3, 8] },
  },
  gitlab: {
    path: '/api/v4/projects/infra%2Flabs%2Fasgard/merge_requests',
    auth: ['private-token', 'forge-token-4f1c9e2a'],
    body: { source_branch: pr.head, target_branch: 'main', title: pr.title, description: pr.body, remove_source_branch: true, labels: 'discovered,hardware' },
  },
};

const urls: Record<ForgeKind, (n: number) => string> = {
  github: (n) => `https://github.com/lab-admins/lab/pull/${n}`,
  gitea: (n) => `https://gitea.example/lab-admins/lab/pulls/${n}`,
  gitlab: (n) => `https://gitlab.example/infra/labs/asgard/-/merge_requests/${n}`,
};

for (const kind of forges) {
  describe(`${kind}: opening the pull request for a discovered machine`, () => {
    it('sends the documented request with the forge\'s auth scheme and JSON body, gets the number and address, sets the labels', async () => {
      const { fake, client } = await forge(kind);
      const result = await client.openPullRequest(pr);
      assert.deepEqual(result, { kind: 'opened', number: 1, url: urls[kind](1), labels: ['discovered', 'hardware'] });
      const create = fake.requests.find((r) => r.method === 'POST' && r.path === expected[kind].path);
      assert.ok(create, JSON.stringify(fake.requests.map((r) => `${r.method} ${r.path}`)));
      assert.deepEqual(create.body, expected[kind].body);
      assert.equal(create.headers[expected[kind].auth[0]], expected[kind].auth[1]);
      assert.equal(create.headers['content-type'], 'application/json');
      assert.match(String(create.headers['accept']), kind === 'github' ? /^application\/vnd\.github\+json$/ : /json/);
      if (kind === 'github') assert.equal(create.headers['x-github-api-version'], '2022-11-28');
      for (const r of fake.requests) for (const [name, value] of Object.entries(r.headers)) if (name !== expected[kind].auth[0]) assert.ok(!String(value).includes(fake.token), `the token in ${name}`);
      assert.deepEqual(fake.pulls.map((p) => p.labels), [['discovered', 'hardware']]);
      if (kind === 'github') {
        const label = fake.requests.at(-1)!;
        assert.deepEqual([label.method, label.path, label.body], ['POST', '/repos/lab-admins/lab/issues/1/labels', { labels: ['discovered', 'hardware'] }]);
      }
    });

    it('an open pull request for the same branch: the forge\'s "already exists" answer means nothing to do; it is found, not opened twice', async () => {
      const { fake, client } = await forge(kind);
      await client.openPullRequest(pr);
      const seen = fake.requests.length;
      const again = await client.openPullRequest({ ...pr, title: 'another title' });
      assert.deepEqual(again, { kind: 'exists', number: 1, url: urls[kind](1), labels: [] });
      assert.equal(fake.pulls.length, 1);
      const create = fake.requests.slice(seen).find((r) => r.method === 'POST');
      assert.equal(create?.status, kind === 'github' ? 422 : 409);
      assert.ok(fake.requests.slice(seen).every((r) => r.method === 'GET' || r.path === expected[kind].path), 'no labels set on an existing one');
    });

    it('the token refused: ForgeAuthError, and the token is in no message even when the forge echoes it', async () => {
      const { fake, config } = await forge(kind);
      const wrong = createForgeClient({ ...config, token: 'wrong-token-8c3d1f' });
      await assert.rejects(wrong.openPullRequest(pr), (err: unknown) => err instanceof ForgeAuthError && err.status === 401 && !err.message.includes('wrong-token-8c3d1f'));
      fake.intercept = (_r, res) => answer(res, 403, { message: `token ${fake.token} lacks the scope; Basic ${Buffer.from(`x:${fake.token}`).toString('base64')}` });
      await assert.rejects(createForgeClient(config).openPullRequest(pr), (err: unknown) => {
        assert.ok(err instanceof ForgeAuthError, String(err));
        assert.equal(err.status, 403);
        assert.ok(!err.message.includes(fake.token), err.message);
        assert.match(err.message, /\[redacted\] lacks the scope/);
        return true;
      });
    });
  });
}

describe('forge clients: labels and text', () => {
  it('gitea: a label the repository lacks is named, the others set by id; the pull request opens all the same', async () => {
    const { fake, client } = await forge('gitea');
    const result = await client.openPullRequest({ ...pr, labels: ['discovered', 'new-hardware'] });
    assert.deepEqual(result, { kind: 'opened', number: 1, url: urls.gitea(1), labels: ['discovered'], labelProblem: 'no label "new-hardware" in the repository (Gitea sets existing labels only)' });
    const labels = fake.requests.find((r) => r.path.endsWith('/labels'));
    assert.deepEqual([labels?.method, labels?.query], ['GET', { page: '1', limit: '50' }]);
  });

  it('github: labels that cannot be set leave the pull request open and say why', async () => {
    const { fake, client } = await forge('github');
    fake.intercept = (r, res) => r.path.endsWith('/labels') && answer(res, 403, { message: 'Resource not accessible by personal access token' });
    const result = await client.openPullRequest(pr);
    assert.deepEqual({ ...result, labelProblem: undefined }, { kind: 'opened', number: 1, url: urls.github(1), labels: [], labelProblem: undefined });
    assert.match(result.labelProblem ?? '', /POST \/repos\/lab-admins\/lab\/issues\/1\/labels: HTTP 403, the token was refused: Resource not accessible by personal access token$/);
  });

  it('a title on one line within 256 characters, a body within 65536', async () => {
    const { fake, client } = await forge('gitlab');
    await client.openPullRequest({ ...pr, title: `Discovered\n${'x'.repeat(400)}`, body: 'b'.repeat(70_000), labels: ['a,b', ' ', 'ok'] });
    const body = fake.requests[0]!.body as { title: string; description: string; labels: string };
    assert.equal(body.title.length, 256);
    assert.match(body.title, /^Discovered x+…$/);
    assert.ok(body.description.length <= 65_536);
    assert.match(body.description, /\(cut at the forge's size limit\)$/);
    assert.equal(body.labels, 'ok');
  });
});

describe('forge clients: failures are bounded and clear', () => {
  let silent: ReturnType<typeof createServer>;
  let silentPort: number;
  const sockets: Socket[] = [];
  before(async () => {
    silent = createServer((socket) => void sockets.push(socket.resume())); // accepts, reads, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(sockets.map((s) => s.destroyed), [true], 'one connection, closed by the client at its timeout');
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('a forge that never answers: ForgeUnreachableError after the timeout', async () => {
    const client = createForgeClient({ type: 'github', api: `http://127.0.0.1:${silentPort}`, repository: 'a/b', token: 'tok-12345678', timeoutMs: 200 });
    await assert.rejects(client.openPullRequest(pr), (err: unknown) => err instanceof ForgeUnreachableError && /POST \/repos\/a\/b\/pulls: no complete answer within 200 ms/.test(err.message));
  });

  it('a forge that sends its headers and then trickles: ForgeUnreachableError at the same deadline', async () => {
    const { fake, config } = await forge('gitea');
    fake.intercept = (_r, res) => {
      res.writeHead(201, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.write('{"number": 1,');
      return true;
    };
    await assert.rejects(createForgeClient({ ...config, timeoutMs: 300 }).openPullRequest({ ...pr, labels: [] }), (err: unknown) => err instanceof ForgeUnreachableError && /no complete answer within 300 ms$/.test(err.message));
  });

  it('nothing listening: ForgeUnreachableError naming the forge and the request', async () => {
    const { fake, config } = await forge('gitlab');
    await fake.close();
    await assert.rejects(createForgeClient(config).openPullRequest(pr), (err: unknown) => err instanceof ForgeUnreachableError && /^gitlab 127\.0\.0\.1:\d+ infra\/labs\/asgard: POST \/projects\/infra%2Flabs%2Fasgard\/merge_requests: .*ECONNREFUSED/.test(err.message));
  });

  it('an answer over the size cap, one that is not JSON, a redirect: ForgeAnswerError, nothing followed', async () => {
    const { fake, config } = await forge('gitea');
    const client = createForgeClient({ ...config, maxResponseBytes: 4096 });
    const noLabels = { ...pr, labels: [] };
    const answers: Array<(res: ServerResponse) => void> = [
      (res) => answer(res, 201, { number: 1, pad: 'x'.repeat(10_000) }),
      (res) => {
        res.writeHead(201, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        for (let i = 0; i < 10; i++) res.write('x'.repeat(1000));
        res.end();
      },
      (res) => {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html><body>Bad Gateway\n</body></html>');
      },
      (res) => {
        res.writeHead(301, { location: 'http://127.0.0.1:1/elsewhere' });
        res.end();
      },
    ];
    fake.intercept = (_r, res) => (answers.shift()!(res), true);
    await assert.rejects(client.openPullRequest(noLabels), (err: unknown) => err instanceof ForgeAnswerError && /an answer of \d+ bytes, more than the cap of 4096/.test(err.message));
    await assert.rejects(client.openPullRequest(noLabels), (err: unknown) => err instanceof ForgeAnswerError && /an answer of more than the cap of 4096 bytes/.test(err.message));
    await assert.rejects(client.openPullRequest(noLabels), (err: unknown) => err instanceof ForgeAnswerError && err.status === 502 && /not JSON: <html><body>Bad Gateway <\/body><\/html>/.test(err.message));
    await assert.rejects(client.openPullRequest(noLabels), (err: unknown) => err instanceof ForgeAnswerError && err.status === 301);
    assert.equal(fake.requests.filter((r) => r.method === 'POST').length, 4, 'each answer from the forge itself, no redirect followed');
  });

  it('an unexpected status carries the forge\'s own message, on one line', async () => {
    const { fake, client } = await forge('github');
    fake.intercept = (_r, res) => answer(res, 422, { message: 'Validation Failed', errors: [{ resource: 'PullRequest', field: 'head', code: 'invalid', message: 'head\nsha can\'t be blank' }] });
    await assert.rejects(client.openPullRequest(pr), (err: unknown) => err instanceof ForgeAnswerError && err.status === 422 && /HTTP 422: Validation Failed; head sha can't be blank$/.test(err.message));
  });

  it('an API URL with credentials, a query or another scheme is refused before any request', () => {
    for (const api of ['https://user:pw@api.github.com', 'https://api.github.com/?access_token=x', 'ftp://forge.example/api/v1', 'not a url']) {
      assert.throws(() => createForgeClient({ type: 'github', api, repository: 'a/b', token: 't' }), TypeError, api);
    }
    assert.throws(() => createForgeClient({ type: 'gitea', api: 'https://g.example/api/v1', repository: 'a/b/c', token: 't' }), /OWNER\/REPO/);
    assert.throws(() => createForgeClient({ type: 'gitlab', api: 'https://g.example/api/v4', repository: 'project', token: 't' }), /GROUP\/PROJECT/);
  });
});
