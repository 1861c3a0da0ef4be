// Discovery in a running agent (issue 14), in-process on loopback against the real Git server (git http-backend)
// and a fake Gitea: a machine whose MAC no host declares fetches the inventory image's script, POSTs its report, and
// the branch forseti/discovered/<mac> appears with a valid host file (its MAC, memory, disks; role left off) and a
// pull request opens. A second report proposes nothing; reports that are not the machine's own are refused; merging
// the proposal with a role set makes the agent serve that host.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { Agent } from '../src/agent/agent.ts';
import type { AgentConfig } from '../src/agent/config.ts';
import { createLogger } from '../src/log.ts';
import { validatorFor } from '../src/model/schemas.ts';
import { createBareRepo, readBranchFiles, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { git as gitCli } from './fixtures/git/git-cli.ts';
import { startFakeForge, type FakeForge } from './fixtures/forge/forge-server.ts';
import { bootScriptFrom, httpFrom, tokenIn } from './fixtures/as-host.ts';
import { fetchStatus, loopbackAgentConfig, loopbackLabFiles, waitForView, writeTree } from './fixtures/loopback-lab.ts';
import { freeTcpPort, freeUdpPort } from './fixtures/free-port.ts';
import { bl460cGen8, qemuGuest } from './fixtures/inventory-reports.ts';

const PORT = await freeTcpPort();
const BASE = `http://127.0.0.1:${PORT}`;
const log = createLogger({ level: process.env.FORSETI_TEST_LOG ?? 'silent' });
/** The unknown machine, the address its DHCP gave it, and an impostor elsewhere on the network. */
const MAC = '52:54:00:77:02:02';
const BRANCH = 'forseti/discovered/52-54-00-77-02-02';
const MACHINE_IP = '127.0.0.99';
const IMPOSTOR_IP = '127.0.0.98';
const OTHER_MAC = '9c:8e:99:4a:20:02';
const FORGE_TOKEN = 'gitea-token-6a1d0f3c9b';

let dir = '';
let git: GitServer;
let forge: FakeForge;
let config: AgentConfig;

const SITE_DISCOVERY = 'discovery: {enabled: true, image: tiny, afterReport: poweroff, rateLimit: {proposals: 1, intervalSeconds: 3600}}\n';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forseti-discovery-agent-'));
  const lab = await loopbackLabFiles(dir, { http: PORT, tftp: await freeUdpPort() });
  const seed = join(dir, 'seed');
  await writeTree(seed, {
    ...lab,
    'site.yaml': `${lab['site.yaml']}${SITE_DISCOVERY}`,
    'profiles/off.yaml': 'apiVersion: forseti/v1\nkind: Profile\nname: off\nboot: {off: true}\n',
  });
  git = await startGitServer();
  await createBareRepo(git, 'lab', seed);
  forge = await startFakeForge('gitea', FORGE_TOKEN);
  config = await loopbackAgentConfig(dir, git.repoUrl('lab'), { tftp: false });
  // The forge and its token are the operator's: agent.yaml and the agent's secrets file, never site.yaml.
  await writeFile(config.secretsFile!, `gitea-token: {username: forseti, password: ${FORGE_TOKEN}}\n`);
  config.discovery = { forge: { type: 'gitea', api: forge.api, repository: 'lab-admins/lab', credential: 'gitea-token', labels: ['discovered'] } };
});

after(async () => {
  await forge?.close();
  await git?.close();
  await rm(dir, { recursive: true, force: true });
});

function report(mac: string, from: () => Record<string, unknown> = qemuGuest): Record<string, unknown> {
  const doc = from();
  const nics = (doc['nics'] as Array<Record<string, unknown>>).map((n) => (n['boot'] ? { ...n, mac } : n));
  return { ...doc, boot: { ...(doc['boot'] as object), mac }, nics };
}

function postReport(mac: string, from: string, token: string, body: unknown): Promise<{ status: number; body: string }> {
  return httpFrom(from, `${BASE}/v1/discovery/inventory/${mac.replace(/:/g, '-')}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function discoveredBranches(): Promise<string[]> {
  const out = await gitCli(['ls-remote', '--heads', git.repoUrl('lab'), 'refs/heads/forseti/discovered/*']);
  return out.trim().split('\n').filter(Boolean).map((l) => l.split('\t')[1]!.replace('refs/heads/', ''));
}

async function until<T>(what: string, get: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('an unknown machine is inventoried and proposed on its own branch with a pull request; once; only by itself; merged, it is served', { timeout: 180_000 }, async () => {
  const agent = new Agent(config, log);
  await agent.start();
  try {
    await waitForView(BASE, (v) => v.revision !== null, 'the first commit served');

    // Its iPXE script: the inventory image, read-only, reporting to the agent with a token for this MAC and address.
    const { script, token } = await bootScriptFrom(BASE, MAC, MACHINE_IP);
    assert.match(script, /^kernel http:\/\/127\.0\.0\.1:\d+\/images\/[0-9a-f]{64}\/vmlinuz initrd=initrd\.img forseti\.mode=inventory /m);
    assert.ok(script.includes(` forseti.report=${BASE}/v1/discovery/inventory/52-54-00-77-02-02 `), script);
    assert.ok(script.includes(' forseti.poweroff=1 '), script);
    assert.doesNotMatch(script, /forseti\.wipe|forseti\.mode=wipe/);
    assert.match(token, /^[0-9a-f]{32}$/);
    const kernel = /^kernel (\S+)/m.exec(script)?.[1] ?? '';
    const fetched = await httpFrom(MACHINE_IP, kernel);
    assert.deepEqual([fetched.status, fetched.body], [200, 'kernel'], 'the discovery image is in the image cache');

    // Nothing that is not this machine's own report proposes anything.
    const impostor = await postReport(MAC, IMPOSTOR_IP, token, report(MAC));
    assert.equal(impostor.status, 403, 'its token from another address');
    assert.match(impostor.body, /not the token of an inventory script served for 52:54:00:77:02:02 to 127\.0\.0\.98/);
    const otherMac = await postReport(OTHER_MAC, MACHINE_IP, token, report(OTHER_MAC, bl460cGen8));
    assert.equal(otherMac.status, 403, 'its token for another MAC');
    const theirs = await bootScriptFrom(BASE, OTHER_MAC, IMPOSTOR_IP);
    const forged = await postReport(MAC, MACHINE_IP, token, report(OTHER_MAC, bl460cGen8));
    assert.equal(forged.status, 400, 'another machine\'s report sent with this machine\'s token');
    assert.match(forged.body, /no NIC has the MAC 52:54:00:77:02:02 the machine PXE-booted with/);
    assert.equal((await postReport(MAC, MACHINE_IP, 'f'.repeat(32), report(MAC))).status, 403, 'a made-up token');
    assert.equal((await postReport(MAC, MACHINE_IP, token, '{"format":"forseti-inventory/v1"')).status, 400, 'not JSON');
    const huge = await postReport(MAC, MACHINE_IP, token, `{"x":"${'a'.repeat(1024 * 1024)}"}`);
    assert.equal(huge.status, 413, 'over the size cap');
    assert.deepEqual(await discoveredBranches(), []);
    assert.equal(forge.pulls.length, 0);

    // The machine's own report: accepted, proposed on its branch, and a pull request opened.
    const accepted = await postReport(MAC, MACHINE_IP, token, report(MAC));
    assert.equal(accepted.status, 202, accepted.body);
    await until('the branch on the Git server', async () => ((await discoveredBranches()).includes(BRANCH) ? true : undefined));
    const pull = await until('the pull request', () => forge.pulls[0]);
    assert.deepEqual([pull.head, pull.base, pull.labels], [BRANCH, 'main', ['discovered']]);
    assert.match(pull.title, /^Discovered czj3110abc: HP ProLiant BL460c Gen8, serial CZJ3110ABC, 52:54:00:77:02:02/);
    const giteaAuth = forge.requests.filter((r) => r.method === 'POST').map((r) => r.headers.authorization);
    assert.deepEqual([...new Set(giteaAuth)], [`token ${FORGE_TOKEN}`]);

    const files = await readBranchFiles(git, 'lab', BRANCH);
    const text = files['hosts/czj3110abc.yaml'];
    assert.ok(text, Object.keys(files).join(', '));
    const host = parse(text) as { macs: string[]; ip: string; role: string; hardware: { memoryGiB: number; disks: unknown[] }; bmc: { type: string } };
    const validate = validatorFor('Host');
    assert.ok(validate(host), JSON.stringify(validate.errors));
    assert.deepEqual(host.macs, [MAC]);
    assert.equal(host.role, 'off', 'the role is left for a human');
    assert.equal(host.hardware.memoryGiB, 0.38, '384 MiB');
    assert.equal(host.hardware.disks.length, 2);
    assert.equal(host.bmc.type, 'manual');
    const branchHead = (await gitCli(['ls-remote', git.repoUrl('lab'), `refs/heads/${BRANCH}`])).split('\t')[0];

    // A second report of the same machine proposes nothing; its script now says why it is not inventoried again.
    const again = await postReport(MAC, MACHINE_IP, token, report(MAC));
    assert.equal(again.status, 200, again.body);
    assert.match(again.body, /proposed already: forseti\/discovered\/52-54-00-77-02-02/);
    assert.match((await bootScriptFrom(BASE, MAC, MACHINE_IP)).script, /proposed already on forseti\/discovered\/52-54-00-77-02-02/);
    assert.equal(tokenIn((await bootScriptFrom(BASE, MAC, MACHINE_IP)).script), '');
    assert.equal(forge.pulls.length, 1);
    assert.equal((await gitCli(['ls-remote', git.repoUrl('lab'), `refs/heads/${BRANCH}`])).split('\t')[0], branchHead);
    assert.match(theirs.script, /forseti\.mode=inventory/, 'an unproposed machine still gets the inventory script');
    // The site allows one proposal an hour: another machine's own report waits.
    const limited = await postReport(OTHER_MAC, IMPOSTOR_IP, theirs.token, report(OTHER_MAC, bl460cGen8));
    assert.equal(limited.status, 429, limited.body);
    assert.match(limited.body, /rate limit: 1 proposal per 3600 s already started/);
    assert.deepEqual(await discoveredBranches(), [BRANCH], 'the other MAC was not proposed');

    // Merged with a role set: the agent serves the host from its proposed address.
    const work = join(dir, 'merge');
    await gitCli(['clone', '--quiet', git.repoUrl('lab'), work]);
    await gitCli(['merge', '--quiet', '--no-ff', '-m', 'Merge the discovered machine', `origin/${BRANCH}`], work);
    await writeFile(join(work, 'hosts/czj3110abc.yaml'), text.replace(/^role: off.*$/m, 'role: worker'));
    await gitCli(['commit', '--quiet', '-am', 'czj3110abc: worker'], work);
    await gitCli(['push', '--quiet', 'origin', 'HEAD:main'], work);
    await agent.poll();
    const served = await waitForView(BASE, (v) => v.hosts['czj3110abc']?.role === 'worker', 'czj3110abc served as a worker');
    assert.ok(served.hosts['czj3110abc']);
    const own = await bootScriptFrom(BASE, MAC, host.ip);
    assert.match(own.script, /booting role worker on czj3110abc/);
    assert.equal((await fetchStatus(BASE)).hosts['czj3110abc']?.role, 'worker');
  } finally {
    await agent.stop();
  }
});
