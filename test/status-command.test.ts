// `forseti status` against a real Git server (git http-backend) holding a status branch, against local
// repositories, and against the agent's /v1/status served by the real boot HTTP server with a stub backend.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatStatus } from '../src/cli/commands/status.ts';
import { createLogger } from '../src/log.ts';
import { createBootHttpServer, listen } from '../src/serve/boot-http.ts';
import { statusOnlyBackend } from './fixtures/status-only-backend.ts';
import { AgentStatusError, readStatusFromAgent, readStatusFromRepo, StatusBranchNotFoundError, StatusRepoError, type StatusSnapshot } from '../src/status/read-status.ts';
import { nextHostStatus, renderHostStatus, renderSiteStatus } from '../src/status/index.ts';
import type { ReconcileRecord } from '../src/observe/activity.ts';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { git } from './fixtures/git/git-cli.ts';
// Every agent response these tests see is checked against schemas/openapi.json.
import './fixtures/api-contract.ts';

const REV1 = 'a1'.repeat(20);
const REV2 = 'b2'.repeat(20);
const REV3 = 'c3'.repeat(20);
const T0 = new Date('2026-11-22T10:00:00Z');
const at = (s: number): Date => new Date(T0.getTime() + s * 1000);

const ACTION = { action: 'provision', reason: 'new host', revision: REV1, started: at(5).toISOString(), finished: at(60).toISOString(), durationMs: 55_000, outcome: 'ok' } as const;
const RECONCILES: ReconcileRecord[] = [
  { revision: REV2, started: at(1).toISOString(), finished: at(2).toISOString(), durationMs: 1234, stages: { validate: 120, secrets: 2, images: 0, render: 1000, activate: 112 }, result: 'applied', hostsActedOn: 2, actions: { provision: 1, rerender: 1 } },
  { revision: REV3, started: at(900).toISOString(), finished: at(900).toISOString(), durationMs: 95, stages: { validate: 95 }, result: 'rejected', problems: 1, hostsActedOn: 0 },
];

/** Status files as the agent's StatusPublisher writes them. */
function statusFiles(): Record<string, string> {
  let n1 = nextHostStatus('node-1', null, { role: 'worker', phase: 'Pending' }, at(0));
  n1 = nextHostStatus('node-1', n1, { role: 'worker', phase: 'Provisioning', step: 'power-cycled', attemptedRevision: REV1 }, at(5));
  // Written by an agent that records sync, health and actions; node-2 below is a file from an older agent.
  n1 = nextHostStatus('node-1', n1, { role: 'worker', phase: 'Converged', revision: REV1, attemptedRevision: REV1, message: 'phoned home', sync: 'Synced', health: 'Healthy', actions: [ACTION] }, at(60));
  let n2 = nextHostStatus('node-2', null, { role: 'worker', phase: 'Provisioning', step: 'kernel', revision: REV1, attemptedRevision: REV2 }, at(100));
  n2 = nextHostStatus('node-2', n2, { role: 'worker', phase: 'Failed', step: 'kernel', lastError: { message: 'no phone-home within 900 s', step: 'kernel' } }, at(1000));
  return {
    'site.yaml': renderSiteStatus({ revision: REV2, rejected: { revision: REV3, errors: ['hosts/node-3.yaml:4:7: role "nope" is not declared'] }, updated: at(1000).toISOString(), sync: 'OutOfSync', health: 'Degraded', reconciles: RECONCILES }),
    'hosts/node-1.yaml': renderHostStatus(n1),
    'hosts/node-2.yaml': renderHostStatus(n2),
    'hosts/broken.yaml': 'host: broken\nphase: Sideways\n',
  };
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'status', ...args], { env: { ...process.env, NO_COLOR: '1', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

function assertBranchSnapshot(s: StatusSnapshot): void {
  assert.equal(s.revision, REV2);
  assert.deepEqual([s.sync, s.health], ['OutOfSync', 'Degraded'], 'the site as the agent wrote it');
  assert.deepEqual(s.reconciles, RECONCILES);
  assert.deepEqual(s.rejected, { revision: REV3, errors: ['hosts/node-3.yaml:4:7: role "nope" is not declared'] });
  assert.deepEqual(
    s.hosts.map((h) => [h.host, h.phase, h.sync, h.health]),
    [
      ['broken', 'Unknown', 'Unknown', 'Missing'],
      ['node-1', 'Converged', 'Synced', 'Healthy'],
      ['node-2', 'Failed', 'OutOfSync', 'Degraded'],
    ],
  );
  const [broken, n1, n2] = s.hosts;
  assert.match(broken?.error ?? '', /^hosts\/broken\.yaml: invalid host status: /);
  assert.equal(n1?.revision, REV1);
  assert.equal(n1?.lastEvent, 'phoned home');
  assert.deepEqual(n1?.actions, [ACTION]);
  assert.equal(n2?.actions, undefined);
  assert.equal(n1?.since, at(60).toISOString());
  assert.equal(n2?.revision, REV1);
  assert.equal(n2?.attemptRevision, REV2);
  assert.equal(n2?.error, 'kernel: no phone-home within 900 s');
}

describe('status from the status branch', () => {
  let server: GitServer;
  let url = '';
  let work = '';
  before(async () => {
    server = await startGitServer();
    url = await createBareRepo(server, 'lab', 'test/fixtures/labs/minimal');
    await commitFiles(server, 'lab', 'forseti-status', statusFiles(), 'forseti: status');
    work = await mkdtemp(join(tmpdir(), 'forseti-status-cmd-'));
  });
  after(async () => {
    await server?.close();
    await rm(work, { recursive: true, force: true });
  });

  test('over smart HTTP with isomorphic-git: hosts, revisions, errors, sync and health; a broken file is one row', async () => {
    assertBranchSnapshot(await readStatusFromRepo(url));
  });

  test('from a checkout of the lab (origin/forseti-status) and from the bare repository itself', async () => {
    const checkout = join(work, 'checkout');
    await git(['clone', '--quiet', '--no-single-branch', url, checkout]);
    assertBranchSnapshot(await readStatusFromRepo(checkout));
    assertBranchSnapshot(await readStatusFromRepo(join(server.root, 'lab.git')));
  });

  test('a missing branch, a missing repository and a non-repository directory are each named', async () => {
    await assert.rejects(readStatusFromRepo(url, { branch: 'no-such-branch' }), (err: unknown) => err instanceof StatusBranchNotFoundError && /no-such-branch/.test(err.message));
    await assert.rejects(readStatusFromRepo(server.repoUrl('missing')), StatusRepoError);
    await assert.rejects(readStatusFromRepo(work), (err: unknown) => err instanceof StatusRepoError && err.message.includes('not a git repository'));
  });

  test('forseti status --repo URL prints the table; --json the rows; errors exit 2 with one line', async () => {
    const table = await cli(['--repo', url]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.split('\n');
    assert.equal(lines[0], `revision ${REV2.slice(0, 7)} from status branch forseti-status of ${url}`);
    assert.equal(lines[1], 'site OutOfSync, Degraded');
    assert.match(lines[2] ?? '', new RegExp(`^last reconcile ${REV3.slice(0, 7)} rejected \\S+ ago in 95 ms \\(validate 95 ms\\), 1 problem$`));
    assert.equal(lines[3], `rejected ${REV3.slice(0, 7)}: 1 problem; ${REV2.slice(0, 7)} keeps serving`);
    assert.match(lines[6] ?? '', /^HOST\s+ROLE\s+PHASE\s+SYNC\s+HEALTH\s+REVISION\s+SINCE\s+LAST EVENT \/ ERROR$/);
    assert.match(table.stdout, /\nnode-1\s+worker\s+Converged\s+Synced\s+Healthy\s+a1a1a1a\s+\S+\s+phoned home\n/);
    assert.match(table.stdout, /\nnode-2\s+worker\s+Failed\/kernel\s+OutOfSync\s+Degraded\s+a1a1a1a→b2b2b2b\s+\S+\s+error: kernel: no phone-home within 900 s\n/);

    const json = await cli(['--repo', url, '--json']);
    assert.equal(json.code, 0, json.stderr);
    assertBranchSnapshot(JSON.parse(json.stdout) as StatusSnapshot);

    const missing = await cli(['--repo', url, '--branch', 'elsewhere']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^forseti status: .* has no branch elsewhere/);
    const both = await cli(['--repo', url, '--agent', 'http://127.0.0.1:1']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /give --agent or --repo, not both/);
  });
});

describe('status from a Git server that wants credentials', () => {
  let server: GitServer;
  let url = '';
  const password = 's3cret-Pa55word';
  before(async () => {
    server = await startGitServer({ auth: { username: 'forseti', password } });
    url = await createBareRepo(server, 'lab', 'test/fixtures/labs/minimal');
    await commitFiles(server, 'lab', 'forseti-status', statusFiles(), 'forseti: status');
  });
  after(async () => {
    await server?.close();
  });

  test('--credential NAME takes the username and password from the environment, never from argv', async () => {
    const ok = await cli(['--repo', url, '--credential', 'lab-git', '--json'], { FORSETI_CREDENTIAL_LAB_GIT_USERNAME: 'forseti', FORSETI_CREDENTIAL_LAB_GIT_PASSWORD: password });
    assert.equal(ok.code, 0, ok.stderr);
    assertBranchSnapshot(JSON.parse(ok.stdout) as StatusSnapshot);
    const wrong = await cli(['--repo', url, '--credential', 'lab-git'], { FORSETI_CREDENTIAL_LAB_GIT_USERNAME: 'forseti', FORSETI_CREDENTIAL_LAB_GIT_PASSWORD: 'wrong-one' });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /cannot read status from .*401/);
    assert.doesNotMatch(wrong.stderr + wrong.stdout, /wrong-one|s3cret/);
  });
});

describe('status from the agent', () => {
  let server: Server;
  let base = '';
  const log = createLogger({ level: 'silent' });
  const since = Date.parse('2026-11-22T10:00:00Z');
  const backend = statusOnlyBackend({
    // The agent's statusJson() shape today: epoch-ms since, appliedRole from the journal.
    statusJson: () => ({
      revision: REV2,
      generation: 'g3',
      hosts: {
        'bld-002': { role: 'slurm-compute', phase: 'Provisioning', step: 'initrd', appliedRole: 'talos-worker', appliedRevision: REV1, attemptRevision: REV2, since },
        'bld-001': { role: 'talos-worker', phase: 'Converged', appliedRole: 'talos-worker', appliedRevision: REV1, since },
      },
    }),
  });
  before(async () => {
    server = createBootHttpServer(backend, log);
    base = `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('GET /v1/status becomes the same rows as the status branch', async () => {
    const s = await readStatusFromAgent(base);
    assert.equal(s.revision, REV2);
    assert.deepEqual([s.sync, s.health], ['OutOfSync', 'Progressing'], 'aggregated from the hosts the same way');
    assert.deepEqual(s.reconciles, []);
    assert.equal(s.source, `agent ${base}/`);
    assert.deepEqual(
      s.hosts.map((h) => [h.host, h.role, h.phase, h.step, h.sync, h.health, h.revision, h.attemptRevision, h.since]),
      [
        ['bld-001', 'talos-worker', 'Converged', undefined, 'Synced', 'Healthy', REV1, null, '2026-11-22T10:00:00.000Z'],
        ['bld-002', 'slurm-compute', 'Provisioning', 'initrd', 'OutOfSync', 'Progressing', REV1, REV2, '2026-11-22T10:00:00.000Z'],
      ],
    );
  });

  test('forseti status --agent URL; an unreachable agent or a foreign answer is named', async () => {
    const out = await cli(['--agent', base]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /\nbld-002\s+slurm-compute\s+Provisioning\/initrd\s+OutOfSync\s+Progressing\s+a1a1a1a→b2b2b2b\s/);
    await assert.rejects(readStatusFromAgent(`${base}/healthz-is-not-it`), (err: unknown) => err instanceof AgentStatusError && /HTTP 404/.test(err.message));
    const closed = await cli(['--agent', 'http://127.0.0.1:9']);
    assert.equal(closed.code, 2);
    assert.match(closed.stderr, /cannot read status from the agent at http:\/\/127\.0\.0\.1:9\//);
  });
});

test('formatStatus: columns line up; SINCE is an age; a long message is cut', () => {
  const now = Date.parse('2026-11-22T12:00:00Z');
  const text = formatStatus(
    {
      source: 'test',
      revision: REV1,
      rejected: null,
      sync: 'OutOfSync',
      health: 'Degraded',
      reconciles: [
        { revision: REV2, started: '2026-11-22T11:00:00Z', stages: {}, result: 'rejected', problems: 1, hostsActedOn: 0 },
        { revision: REV1, started: '2026-11-22T11:58:00Z', finished: '2026-11-22T11:58:01Z', durationMs: 1340, stages: { validate: 120.4, secrets: 1, images: 0, render: 1180, activate: 38.6 }, result: 'applied', hostsActedOn: 3, actions: { rerender: 1, provision: 2 } },
      ],
      hosts: [
        { host: 'a', role: 'worker', phase: 'Converged', sync: 'Synced', health: 'Healthy', revision: REV1, attemptRevision: REV1, since: '2026-11-22T11:55:00Z', lastEvent: 'phoned home' },
        { host: 'long-name-host', role: 'x', phase: 'Failed', sync: 'OutOfSync', health: 'Degraded', revision: null, attemptRevision: REV1, since: '2026-11-20T12:00:00Z', error: `power-cycle: ${'e'.repeat(100)}` },
      ],
    },
    now,
  );
  const lines = text.trimEnd().split('\n');
  assert.equal(lines[0], `revision ${REV1.slice(0, 7)} from test`);
  assert.equal(lines[1], 'site OutOfSync, Degraded');
  assert.equal(lines[2], `last reconcile ${REV1.slice(0, 7)} applied 1m ago in 1.3 s (validate 120 ms, secrets 1 ms, images 0 ms, render 1.2 s, activate 39 ms), 3 hosts acted on (provision 2, rerender 1)`);
  assert.equal(lines[4], 'HOST            ROLE    PHASE      SYNC       HEALTH    REVISION   SINCE  LAST EVENT / ERROR');
  assert.equal(lines[5], `a               worker  Converged  Synced     Healthy   ${REV1.slice(0, 7)}    5m     phoned home`);
  assert.ok(lines[6]?.startsWith(`long-name-host  x       Failed     OutOfSync  Degraded  -→${REV1.slice(0, 7)}  2d     error: power-cycle: ee`), lines[4]);
  assert.ok((lines[6]?.length ?? 0) < 160 && lines[6]?.endsWith('…'));
});
