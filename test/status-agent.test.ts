// The agent in-process against the real Git server (no QEMU): /v1/status, the status branch and /metrics show
// sync and health, the last commit applies with their stage timings and the host's actions; sightings persist.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.ts';
import { createLogger } from '../src/log.ts';
import type { StatusView } from '../src/status/status-view.ts';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { waitForStatus } from './e2e/status-branch.ts';
import { convergeAs } from './fixtures/as-host.ts';
import { fetchStatus, loopbackAgentConfig, loopbackLabFiles, waitForView, writeTree } from './fixtures/loopback-lab.ts';
import { freeTcpPort, freeUdpPort } from './fixtures/free-port.ts';

/** The agent's ports: ones the kernel chose, so two runs side by side never meet. */
const PORT = await freeTcpPort();
const TFTP_PORT = await freeUdpPort();
const CURL = '/usr/bin/curl';
const BASE = `http://127.0.0.1:${PORT}`;
const log = createLogger({ level: process.env.FORSETI_TEST_LOG ?? 'silent' });
let dir = '';
let git: GitServer;

function hostFile(role: string): string {
  return `apiVersion: forseti/v1\nkind: Host\nname: hand\nmacs: ['02:00:00:00:06:01']\nip: 127.0.0.61\nbmc: {type: manual}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: ${role}\n`;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forseti-status-agent-'));
  const files: Record<string, string> = {
    ...(await loopbackLabFiles(dir, { http: PORT, tftp: TFTP_PORT })),
    'hosts/hand.yaml': hostFile('worker'),
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

test('reconciles, actions, sync/health and push metrics from a running agent; sightings saved for the next run', { timeout: 120_000 }, async () => {
  const config = await loopbackAgentConfig(dir, git.repoUrl('lab'), { tftp: true });
  const agent = new Agent(config, log);
  await agent.start();
  try {
    const first = agent.current?.revision ?? '';
    const provisioning = await waitFor((v) => v.hosts['hand']?.actions?.at(-1)?.action === 'provision', 'a provision action on hand');
    assert.equal(provisioning.hosts['hand']?.actions?.at(-1)?.outcome, 'running');
    assert.deepEqual([provisioning.hosts['hand']?.sync, provisioning.hosts['hand']?.health], ['OutOfSync', 'Progressing']);

    assert.equal((await convergeAs(BASE, { mac: '02:00:00:00:06:01', ip: '127.0.0.61', role: 'worker' })).status, 200);
    // The tracker shows the new phase as soon as it has it and tells its listeners once the journal holds it.
    const converged = await waitFor((v) => v.hosts['hand']?.phase === 'Converged' && v.hosts['hand'].actions?.at(-1)?.outcome !== 'running', 'hand Converged');
    const hand = converged.hosts['hand'];
    assert.deepEqual([hand?.sync, hand?.health, converged.site?.sync, converged.site?.health], ['Synced', 'Healthy', 'Synced', 'Healthy']);
    const action = hand?.actions?.at(-1);
    assert.equal(action?.outcome, 'ok');
    assert.equal(action?.revision, first);
    assert.ok((action?.durationMs ?? -1) >= 0 && action?.finished);
    const [applied] = converged.site?.reconciles ?? [];
    assert.equal(applied?.revision, first);
    assert.equal(applied?.result, 'applied');
    assert.deepEqual(Object.keys(applied?.stages ?? {}), ['validate', 'secrets', 'images', 'render', 'activate']);
    assert.ok(applied?.hostsActedOn === 1 && (applied.actions?.['provision'] ?? 0) >= 1, JSON.stringify(applied));

    // An invalid commit: a rejected reconcile, and the site is OutOfSync with Git while the host stays Synced.
    const bad = await commitFiles(git, 'lab', 'main', { 'hosts/hand.yaml': hostFile('no-such-role') }, 'break it');
    await agent.poll();
    const rejected = await status();
    assert.deepEqual(rejected.site?.reconciles?.map((r) => [r.revision, r.result, r.problems]), [[first, 'applied', undefined], [bad, 'rejected', 1]]);
    assert.deepEqual([rejected.hosts['hand']?.sync, rejected.site?.sync, rejected.site?.health], ['Synced', 'OutOfSync', 'Healthy']);

    const branch = await waitForStatus(git, 'lab', (s) => s.site?.reconciles?.length === 2 && s.hosts.get('hand')?.sync === 'Synced', 30_000, 'two reconciles and hand Synced on the status branch');
    assert.equal(branch.site?.sync, 'OutOfSync');
    assert.equal(branch.hosts.get('hand')?.actions?.at(-1)?.outcome, 'ok');

    // One TFTP read (curl speaks TFTP): counted whether the iPXE binary is installed here or not.
    const tftpRead = existsSync(CURL) ? await new Promise<boolean>((resolve) => execFile(CURL, ['-s', '-o', '/dev/null', `tftp://127.0.0.1:${TFTP_PORT}/undionly.kpxe`], () => resolve(true))) : false;
    const transfers = (text: string): number => [...text.matchAll(/^forseti_tftp_transfers_total\{result="(?:ok|error)"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    let metrics = await (await fetch(`${BASE}/metrics`)).text();
    // The server counts a transfer when it sees the last ACK, which may be just after curl exits.
    for (let i = 0; tftpRead && transfers(metrics) === 0 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      metrics = await (await fetch(`${BASE}/metrics`)).text();
    }
    if (tftpRead) assert.equal(transfers(metrics), 1, 'the TFTP read is counted');
    assert.match(metrics, /^forseti_status_push_total\{result="ok"\} [1-9]/m);
    assert.match(metrics, /^forseti_commit_apply_stage_duration_seconds_count\{stage="render"\} 1$/m);
    assert.match(metrics, /^forseti_commit_apply_duration_seconds_count\{outcome="rejected"\} 1$/m);
    assert.match(metrics, /^forseti_hosts_sync\{sync="Synced"\} 1$/m);
    assert.match(metrics, /^forseti_git_fetch_total\{result="ok"\} 2$/m);
  } finally {
    await agent.stop();
  }
  const sightings = JSON.parse(await readFile(join(config.stateDir, 'sightings.json'), 'utf8')) as { hosts: Record<string, { lastPhoneHome?: { role: string } }> };
  assert.equal(sightings.hosts['hand']?.lastPhoneHome?.role, 'worker', 'the phone-home is kept for the next run');
});
