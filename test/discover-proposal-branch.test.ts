// A discovered machine's host file pushed as `forseti/discovered/<mac>` to the lab's remote (git's own http-backend),
// never to main: valid with the lab at main's head, proposed once (a branch on the remote is never pushed again, even
// by a restarted publisher), skipped when main declares the machine, and a branch that appears under our push is
// taken as proposed by someone else.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, cp, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { factsFromInventory } from '../src/discover/from-inventory.ts';
import { InventoryReader } from '../src/discover/inventory-report.ts';
import { discoveredBranch, ProposalBranchPublisher, ProposalPushError } from '../src/discover/proposal-branch.ts';
import type { ProposalBranchOptions } from '../src/discover/proposal-branch.ts';
import type { MachineFacts } from '../src/discover/facts.ts';
import { loadLab } from '../src/model/load.ts';
import { git } from './fixtures/git/git-cli.ts';
import { commitFiles, createBareRepo, readBranchFiles, startGitServer } from './fixtures/git-server.ts';
import type { GitRequestInfo, GitServer } from './fixtures/git-server.ts';
import { bl460cGen8, qemuGuest, withValue } from './fixtures/inventory-reports.ts';
import type { Json } from './fixtures/inventory-reports.ts';

const TEMPLATE = fileURLToPath(new URL('../lab-repo-template/', import.meta.url));
const author = { name: 'forseti agent', email: 'agent@lab.test' };
const command = 'forseti agent discovery';
const naming = { namePattern: '{serial}', fallbackPattern: 'node-{mac}', command };
const reader = new InventoryReader();
const factsOf = (doc: Json): MachineFacts => factsFromInventory(reader.read(JSON.stringify(doc), { from: 'test' }));

let server: GitServer;
let authServer: GitServer;
let scratch: string;
let counter = 0;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'forseti-proposal-branch-'));
  server = await startGitServer();
  authServer = await startGitServer({ auth: { username: 'forseti', password: 'git-secret-pass-77' } });
});
after(async () => {
  await server.close();
  await authServer.close();
  await rm(scratch, { recursive: true, force: true });
});

/** A lab repository whose main holds the template lab (18 hosts, bld-007 declares 9c:8e:99:4a:11:07). */
async function newLab(on: GitServer = server): Promise<string> {
  const name = `lab${++counter}`;
  await createBareRepo(on, name, TEMPLATE);
  return name;
}

function publisher(repo: string, extra: Partial<ProposalBranchOptions> = {}, on: GitServer = server): ProposalBranchPublisher {
  return new ProposalBranchPublisher({ url: on.repoUrl(repo), dir: join(scratch, `state-${repo}-${++counter}`), author, backoffMs: 5, ...extra });
}

async function remoteHeads(on: GitServer, repo: string): Promise<Map<string, string>> {
  const url = new URL(on.repoUrl(repo));
  if (on.auth) [url.username, url.password] = [on.auth.username, on.auth.password];
  const out = await git(['ls-remote', '--heads', url.toString()]);
  return new Map(out.trim().split('\n').filter(Boolean).map((line) => line.split('\t').reverse() as [string, string]));
}

const isOurPush = (r: GitRequestInfo): boolean => r.method === 'POST' && r.path.endsWith('/git-receive-pack') && !/^git\/\d/.test(r.userAgent);

/** The branch's files written over a copy of the template: the lab a merge would give, which must validate. */
async function validOnBranch(repo: string, branch: string, on: GitServer = server): Promise<void> {
  const dir = join(scratch, `check-${++counter}`);
  await cp(TEMPLATE, dir, { recursive: true });
  for (const [path, text] of Object.entries(await readBranchFiles(on, repo, branch))) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  const { problems } = await loadLab(dir);
  assert.deepEqual(problems.map((p) => `${p.ref.file}:${p.ref.line}: ${p.message}`), []);
}

describe('ProposalBranchPublisher', () => {
  it('pushes forseti/discovered/<mac> with the host file on top of main; main is untouched; the lab on the branch validates', async () => {
    const repo = await newLab();
    const before = await remoteHeads(server, repo);
    const result = await publisher(repo).propose(factsOf(qemuGuest()), naming);
    assert.equal(result.kind, 'pushed', JSON.stringify(result));
    if (result.kind !== 'pushed') return;
    assert.equal(result.branch, 'forseti/discovered/52-54-00-77-02-02');
    assert.equal(result.file, 'hosts/czj3110abc.yaml');
    assert.equal(result.base, before.get('refs/heads/main'));
    const after = await remoteHeads(server, repo);
    assert.deepEqual([...after.keys()].sort(), ['refs/heads/forseti/discovered/52-54-00-77-02-02', 'refs/heads/main']);
    assert.equal(after.get('refs/heads/main'), before.get('refs/heads/main'), 'main moved');
    assert.equal(after.get(`refs/heads/${result.branch}`), result.commit);

    const files = await readBranchFiles(server, repo, result.branch);
    const main = await readBranchFiles(server, repo, 'main');
    assert.deepEqual(Object.keys(files).filter((f) => !(f in main)), ['hosts/czj3110abc.yaml']);
    for (const [path, text] of Object.entries(main)) assert.equal(files[path], text, `${path} changed on the branch`);
    assert.equal(files['hosts/czj3110abc.yaml'], result.yaml);
    assert.match(result.yaml, /^ {2}- 52:54:00:77:02:02 {2}# eth0 virtio_net, boot NIC/m);
    assert.match(result.yaml, /^# yaml-language-server: \$schema=\.\.\/\.\.\/schemas\/host\.schema\.json$/m, 'the lab\'s schema line');
    await validOnBranch(repo, result.branch);

    const work = join(scratch, `clone-${++counter}`);
    await git(['clone', '--quiet', '--branch', result.branch, server.repoUrl(repo), work]);
    assert.equal((await git(['log', '-1', '--format=%an <%ae>%n%P%n%s'], work)).trim(), `forseti agent <agent@lab.test>\n${result.base}\nDiscovered czj3110abc: inventory of 52:54:00:77:02:02: HP ProLiant BL460c Gen8, serial CZJ3110ABC`);
  });

  it('a branch on the remote is never pushed again: the same publisher, and a new one with an empty state directory (a restart)', async () => {
    const repo = await newLab();
    const first = await publisher(repo).propose(factsOf(bl460cGen8()), naming);
    assert.equal(first.kind, 'pushed');
    let pushes = 0;
    server.beforeRequest = (r) => void (isOurPush(r) && pushes++);
    try {
      for (const p of [publisher(repo), publisher(repo)]) {
        const again = await p.propose(factsOf(withValue(bl460cGen8(), '/dmi/system/serial', 'CHANGED-SINCE')), naming);
        assert.deepEqual(again, { kind: 'exists', branch: 'forseti/discovered/9c-8e-99-4a-20-02', commit: first.kind === 'pushed' ? first.commit : '' });
      }
    } finally {
      server.beforeRequest = undefined;
    }
    assert.equal(pushes, 0);
  });

  it('open proposals are taken as used: a second machine (even from a restarted publisher) gets the next address, and both merged validate', async () => {
    const repo = await newLab();
    const first = await publisher(repo).propose(factsOf(qemuGuest()), naming);
    const second = await publisher(repo).propose(factsOf(bl460cGen8()), naming);
    assert.equal(first.kind, 'pushed');
    assert.equal(second.kind, 'pushed');
    if (first.kind !== 'pushed' || second.kind !== 'pushed') return;
    assert.notEqual(first.document.ip, second.document.ip);
    assert.equal(second.base, first.base, 'both on main, not one on the other');
    const dir = join(scratch, `both-${++counter}`);
    await cp(TEMPLATE, dir, { recursive: true });
    await writeFile(join(dir, first.file), first.yaml);
    await writeFile(join(dir, second.file), second.yaml);
    const { problems } = await loadLab(dir);
    assert.deepEqual(problems.map((p) => `${p.ref.file}:${p.ref.line}: ${p.message}`), []);
  });

  it('the same machine booting from its other NIC is not proposed twice: its MAC is on an open proposal', async () => {
    const repo = await newLab();
    assert.equal((await publisher(repo).propose(factsOf(bl460cGen8()), naming)).kind, 'pushed');
    const otherNic = withValue(withValue(withValue(bl460cGen8(), '/nics/1/boot', false), '/nics/0/boot', true), '/boot/mac', '9c:8e:99:4a:20:01');
    const result = await publisher(repo).propose(factsOf(otherNic), naming);
    assert.deepEqual(result.kind === 'declared' && [result.branch, result.host, result.why], [
      'forseti/discovered/9c-8e-99-4a-20-01',
      'cz3401xy17 (proposed on forseti/discovered/9c-8e-99-4a-20-02)',
      'its MAC 9c:8e:99:4a:20:01 is declared by host cz3401xy17 (proposed on forseti/discovered/9c-8e-99-4a-20-02)',
    ]);
    assert.deepEqual([...(await remoteHeads(server, repo)).keys()].sort(), ['refs/heads/forseti/discovered/9c-8e-99-4a-20-02', 'refs/heads/main']);
  });

  it('a machine main declares (its boot MAC is bld-007\'s) is not pushed', async () => {
    const repo = await newLab();
    const doc = withValue(withValue(qemuGuest(), '/nics/0/mac', '9c:8e:99:4a:11:07'), '/boot/mac', '9c:8e:99:4a:11:07');
    const result = await publisher(repo).propose(factsOf(doc), naming);
    assert.equal(result.kind, 'declared');
    assert.equal(result.kind === 'declared' && result.host, 'bld-007');
    assert.deepEqual([...(await remoteHeads(server, repo)).keys()], ['refs/heads/main']);
  });

  it('a branch that appears under our push (another agent, a person) is the proposal: the push is retried from the remote\'s refs and nothing is pushed over it', async () => {
    const repo = await newLab();
    let raced = false;
    server.beforeRequest = async (r) => {
      if (!raced && isOurPush(r)) {
        raced = true;
        await commitFiles(server, repo, 'forseti/discovered/52-54-00-77-02-02', { 'x.txt': 'x\n' }, 'someone');
      }
    };
    try {
      const result = await publisher(repo).propose(factsOf(qemuGuest()), naming);
      assert.ok(raced);
      assert.equal(result.kind, 'exists', 'the branch that appeared under the push is the proposal');
      assert.equal((await remoteHeads(server, repo)).get('refs/heads/forseti/discovered/52-54-00-77-02-02'), result.kind === 'exists' ? result.commit : '');
    } finally {
      server.beforeRequest = undefined;
    }
  });

  it('a server error is no race: it fails at once with the reason, and the next call pushes', async () => {
    const repo = await newLab();
    let rejected = 0;
    server.beforeRequest = async (r) => {
      if (isOurPush(r) && rejected === 0) {
        rejected++;
        throw new Error('simulated outage');
      }
    };
    try {
      await assert.rejects(publisher(repo, { attempts: 3 }).propose(factsOf(qemuGuest()), naming), (err: unknown) => err instanceof ProposalPushError && /HTTP 503/.test(err.message) && err.attempts === 1);
    } finally {
      server.beforeRequest = undefined;
    }
    const result = await publisher(repo).propose(factsOf(qemuGuest()), naming);
    assert.equal(result.kind, 'pushed');
  });

  it('refused, nothing pushed: a lab at main that is not valid, and a lab without a role that keeps machines off', async () => {
    const repo = await newLab();
    await commitFiles(server, repo, 'main', { 'hosts/broken.yaml': 'apiVersion: forseti/v1\nkind: Host\nname: broken\n' }, 'broken host');
    const invalid = await publisher(repo).propose(factsOf(qemuGuest()), naming);
    assert.equal(invalid.kind, 'refused');
    if (invalid.kind === 'refused') {
      assert.match(invalid.why, /^the lab at main \([0-9a-f]{12}\) is not valid$/);
      assert.ok(invalid.problems.some((p) => p.startsWith('hosts/broken.yaml:')), invalid.problems.join('\n'));
    }
    const noOff = await newLab();
    const menu = 'apiVersion: forseti/v1\nkind: Profile\nname: off\nboot:\n  chain: https://boot.netboot.xyz\nafterInstall: pxe\n';
    await commitFiles(server, noOff, 'main', { 'profiles/off.yaml': menu }, 'no profile keeps machines off');
    const refused = await publisher(noOff).propose(factsOf(qemuGuest()), naming);
    assert.match(refused.kind === 'refused' ? refused.why : '', /no profile that keeps a machine off/);
    for (const r of [repo, noOff]) assert.deepEqual([...(await remoteHeads(server, r)).keys()], ['refs/heads/main']);
  });

  it('with credentials: pushed; a wrong password fails with the reason and never the password', async () => {
    const repo = await newLab(authServer);
    const ok = await publisher(repo, { auth: { username: 'forseti', password: 'git-secret-pass-77' } }, authServer).propose(factsOf(qemuGuest()), naming);
    assert.equal(ok.kind, 'pushed');
    await validOnBranch(repo, discoveredBranch('52:54:00:77:02:02'), authServer);
    await assert.rejects(
      publisher(repo, { auth: { username: 'forseti', password: 'wrong-pass-9000' } }, authServer).propose(factsOf(bl460cGen8()), naming),
      (err: unknown) => err instanceof ProposalPushError && /HTTP 401/.test(err.message) && !err.message.includes('wrong-pass-9000') && err.attempts === 1,
    );
  });

  it('discoveredBranch: a ref name git takes', () => {
    assert.equal(discoveredBranch('52:54:00:AA:BB:CC'), 'forseti/discovered/52-54-00-aa-bb-cc');
  });
});
