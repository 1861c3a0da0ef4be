// An agent restarted on the same state dir keeps the history on the status branch: the last reconciles and each
// host's actions continue (a reconcile that was running is interrupted, a provisioning the journal resumes still
// ends with its phone-home), and a host removed from the lab while the agent was down loses its status file.
// In-process against the real Git server (no QEMU).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { Agent } from '../src/agent/agent.ts';
import { createLogger } from '../src/log.ts';
import type { StatusView } from '../src/status/status-view.ts';
import { commitFiles, createBareRepo, readBranchFiles, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { readStatus, waitForStatus } from './e2e/status-branch.ts';
import { convergeAs } from './fixtures/as-host.ts';
import { fetchStatus, loopbackAgentConfig, loopbackLabFiles, waitForView, writeTree } from './fixtures/loopback-lab.ts';
import { freeTcpPort, freeUdpPort } from './fixtures/free-port.ts';

/** The agent's ports: ones the kernel chose, so two runs side by side never meet. */
const PORT = await freeTcpPort();
const TFTP_PORT = await freeUdpPort();
const BASE = `http://127.0.0.1:${PORT}`;
const log = createLogger({ level: process.env.FORSETI_TEST_LOG ?? 'silent' });
let dir = '';
let git: GitServer;

function hostFile(name: string, n: number, role: string): string {
  return `apiVersion: forseti/v1\nkind: Host\nname: ${name}\nmacs: ['02:00:00:00:07:0${n}']\nip: 127.0.0.7${n}\nbmc: {type: manual}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: ${role}\n`;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forseti-agent-restart-'));
  const files: Record<string, string> = {
    ...(await loopbackLabFiles(dir, { http: PORT, tftp: TFTP_PORT })),
    'hosts/hand.yaml': hostFile('hand', 1, 'worker'),
    'hosts/gone.yaml': hostFile('gone', 2, 'worker'),
  };
  const seed = join(dir, 'seed');
  await writeTree(seed, files);
  git = await startGitServer();
  await createBareRepo(git, 'lab', seed);
});

after(async () => {
  await git?.close();
  await rm(dir, { recursive: true, force: true });
});

const status = (): Promise<StatusView> => fetchStatus(BASE);
const waitFor = (done: (v: StatusView) => boolean, what: string): Promise<StatusView> => waitForView(BASE, done, what);

const reconciles = (v: { site?: { reconciles?: Array<{ revision: string; result: string }> } | null }): string[][] => (v.site?.reconciles ?? []).map((r) => [r.revision, r.result]);

test('a restarted agent continues the reconciles and actions on the status branch and prunes hosts that left', { timeout: 180_000 }, async () => {
  const config = await loopbackAgentConfig(dir, git.repoUrl('lab'), { tftp: false });

  // First run: commit A applied, both hosts start provisioning; commit B (invalid) rejected; then the agent stops.
  const first = new Agent(config, log);
  await first.start();
  let a = '';
  let b = '';
  let started = '';
  try {
    a = first.current?.revision ?? '';
    const provisioning = await waitFor((v) => ['hand', 'gone'].every((h) => v.hosts[h]?.actions?.at(-1)?.action === 'provision'), 'both hosts provisioning');
    started = provisioning.hosts['hand']?.actions?.at(-1)?.started ?? '';
    b = await commitFiles(git, 'lab', 'main', { 'hosts/hand.yaml': hostFile('hand', 1, 'no-such-role') }, 'break it');
    await first.poll();
    assert.deepEqual(reconciles(await status()), [[a, 'applied'], [b, 'rejected']]);
  } finally {
    await first.stop();
  }
  const left = await readStatus(git, 'lab');
  assert.deepEqual(reconciles(left), [[a, 'applied'], [b, 'rejected']], 'the stop flushed the status branch');

  // While the agent is down: the status branch is made to look as if it died while applying B, and host gone
  // leaves the lab (C also repairs hand, to what A declared: its provisioning goes on).
  const files = await readBranchFiles(git, 'lab', 'forseti-status');
  const site = parse(files['site.yaml'] ?? '') as { reconciles: Array<Record<string, unknown>> };
  const last = site.reconciles.at(-1) ?? {};
  site.reconciles[site.reconciles.length - 1] = { revision: last.revision, result: 'running', started: last.started, stages: last.stages, hostsActedOn: 0 };
  await commitFiles(git, 'lab', 'forseti-status', { 'site.yaml': stringify(site) }, 'the agent died while applying B');
  const c = await commitFiles(git, 'lab', 'main', { 'hosts/hand.yaml': hostFile('hand', 1, 'worker'), 'hosts/gone.yaml': null }, 'gone leaves; hand repaired');

  // Second run on the same state dir and status branch.
  const second = new Agent(config, log);
  await second.start();
  try {
    assert.equal(second.current?.revision, c);
    const view = await status();
    assert.deepEqual(reconciles(view), [[a, 'applied'], [b, 'interrupted'], [c, 'applied']]);
    assert.equal(view.hosts['gone'], undefined);
    const carried = view.hosts['hand']?.actions?.at(-1);
    assert.deepEqual([carried?.action, carried?.revision, carried?.outcome, carried?.started], ['provision', a, 'running', started], 'the provisioning the journal resumes is still open');

    // Its phone-home ends it, across the restart.
    assert.equal((await convergeAs(BASE, { mac: '02:00:00:00:07:01', ip: '127.0.0.71', role: 'worker' })).status, 200);
    const converged = await waitFor((v) => v.hosts['hand']?.actions?.at(-1)?.outcome === 'ok', 'the provisioning of hand ends ok');
    const ended = converged.hosts['hand']?.actions?.at(-1);
    assert.equal(ended?.started, started);
    assert.ok((ended?.durationMs ?? 0) >= Date.parse(ended?.finished ?? '') - Date.parse(started) - 1, 'measured from the first run');

    const branch = await waitForStatus(git, 'lab', (s) => s.site?.reconciles?.length === 3 && !s.hosts.has('gone') && s.hosts.get('hand')?.actions?.at(-1)?.outcome === 'ok', 30_000, 'three reconciles, gone pruned, hand done');
    assert.deepEqual(reconciles(branch), [[a, 'applied'], [b, 'interrupted'], [c, 'applied']]);
    assert.deepEqual([...branch.hosts.keys()], ['hand']);
    // The host's transitions carry on too: the first run's last one is still listed, before the Converged.
    const history = branch.hosts.get('hand')?.history ?? [];
    const before = left.hosts.get('hand')?.history?.at(-1);
    assert.ok(before && history.some((t) => JSON.stringify(t) === JSON.stringify(before)), JSON.stringify({ before, history }));
    assert.equal(history.at(-1)?.phase, 'Converged');
  } finally {
    await second.stop();
  }
});
