// `forseti init`: a new lab repository for the user's network that validates, is committed cleanly, plans, and
// points every YAML file at its schema; answers from flags, or from prompts on a terminal.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { git } from './fixtures/git/git-cli.ts';
import { forseti, runCommand, SOURCE_CLI } from './fixtures/cli-run.ts';
import { loadAgentConfig } from '../src/agent/config.ts';
import { dhcpPolicyProblems } from '../src/agent/dhcp-policy-check.ts';
import { loadLab } from '../src/model/load.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FLAGS = ['--subnet', '10.77.0.0/24', '--gateway', '10.77.0.1', '--agent-address', '10.77.0.5', '--interface', 'eno2'];
let work = '';
before(() => {
  work = mkdtempSync(join(tmpdir(), 'forseti-init-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    if (name === '.git') return [];
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

test('flags make a lab that validates, is one clean commit, and names a schema in every YAML file', async () => {
  const dir = join(work, 'lab');
  const init = await forseti(['init', dir, ...FLAGS, '--dhcp-mode', 'full', '--name', 'asgard']);
  assert.equal(init.code, 0, init.stderr);
  const valid = await forseti(['validate', dir]);
  assert.equal(valid.code, 0, valid.stdout + valid.stderr);
  assert.equal((await git(['status', '--porcelain', '--untracked-files=all'], dir)).trim(), '', 'nothing left uncommitted');
  assert.equal((await git(['log', '--format=%s'], dir)).trim(), 'forseti init');
  const site = readFileSync(join(dir, 'site.yaml'), 'utf8');
  for (const line of ['name: asgard', 'interface: eno2', 'subnet: 10.77.0.0/24', 'gateway: 10.77.0.1', 'mode: full', 'address: 10.77.0.5']) assert.ok(site.includes(line), line);
  const yamlFiles = walk(dir).filter((f) => f.endsWith('.yaml') && !f.includes('/.github/') && !f.includes('/.gitea/') && !f.includes('/agent/'));
  assert.ok(yamlFiles.length >= 3);
  for (const file of yamlFiles) {
    const first = readFileSync(file, 'utf8').split('\n')[0] ?? '';
    const schema = /^# yaml-language-server: \$schema=(\S+)$/.exec(first)?.[1];
    assert.ok(schema, `${relative(dir, file)} names its schema`);
    const target = resolve(dirname(file), schema);
    assert.ok(existsSync(target), `${relative(dir, file)}: ${schema} exists`);
    assert.deepEqual(JSON.parse(readFileSync(target, 'utf8')), JSON.parse(readFileSync(join(ROOT, 'schemas', target.split('/').pop() ?? ''), 'utf8')));
  }
  for (const workflow of ['.github/workflows/forseti.yml', '.gitea/workflows/forseti.yml']) {
    assert.equal(readFileSync(join(dir, workflow), 'utf8'), readFileSync(join(ROOT, 'lab-repo-template', workflow), 'utf8'));
  }
  assert.match(readFileSync(join(dir, 'agent/agent.yaml'), 'utf8'), /^  dhcp: true$/m);
  // The agent config it writes allows what its site asks: DHCP on the site's NIC, in its mode.
  const config = await loadAgentConfig(join(dir, 'agent/agent.yaml'));
  assert.deepEqual([config.serve.interface, config.serve.dhcpModes, config.serve.dhcpRelays], ['eno2', ['full'], []]);
  const { lab } = await loadLab(dir);
  assert.ok(lab);
  assert.deepEqual(dhcpPolicyProblems(lab.site, config.serve), []);
});

test('a host added to the new lab plans as a provisioning', async () => {
  const dir = join(work, 'plan');
  assert.equal((await forseti(['init', dir, ...FLAGS])).code, 0);
  mkdirSync(join(dir, 'hosts'), { recursive: true });
  writeFileSync(join(dir, 'hosts/bld-001.yaml'), '# yaml-language-server: $schema=../schemas/host.schema.json\napiVersion: forseti/v1\nkind: Host\nname: bld-001\nmacs: [9c:8e:99:4a:10:01]\nip: 10.77.0.101\nbmc: {type: manual}\nrole: netboot-xyz\n');
  await git(['add', '-A'], dir);
  await git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'bld-001'], dir);
  const plan = await forseti(['plan', '--base', 'HEAD~1', '--head', 'HEAD', dir]);
  assert.equal(plan.code, 1, plan.stderr);
  assert.match(plan.stdout, /bld-001/);
  assert.match(plan.stdout, /provision/i);
});

test('a directory that is not empty is refused unless --force', async () => {
  const dir = join(work, 'busy');
  mkdirSync(dir);
  writeFileSync(join(dir, 'notes.txt'), 'mine\n');
  const refused = await forseti(['init', dir, ...FLAGS]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /not empty.*--force/);
  assert.deepEqual(readdirSync(dir), ['notes.txt'], 'nothing written');
  const forced = await forseti(['init', dir, ...FLAGS, '--force', '--no-git']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine\n');
  assert.equal(existsSync(join(dir, '.git')), false, '--no-git makes no repository');
});

test('without a terminal, missing answers and wrong ones are named', async () => {
  const missing = await forseti(['init', join(work, 'm'), '--subnet', '10.77.0.0/24']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--agent-address, --interface/);
  const outside = await forseti(['init', join(work, 'o'), ...FLAGS.slice(0, 2), '--gateway', '10.78.0.1', ...FLAGS.slice(4)]);
  assert.equal(outside.code, 2);
  assert.match(outside.stderr, /gateway: 10\.78\.0\.1 is not a host address of 10\.77\.0\.0\/24/);
  const mode = await forseti(['init', join(work, 'd'), ...FLAGS, '--dhcp-mode', 'maybe']);
  assert.match(mode.stderr, /dhcp mode: "maybe" must be one of full, proxy, off/);
  assert.equal(existsSync(join(work, 'o')), false);
});

test('on a terminal it asks, offering defaults', { skip: existsSync('/usr/bin/script') ? false : 'needs script(1) for a terminal' }, async () => {
  const dir = join(work, 'asked');
  const answers = ['lab-two', '10.99.0.0/24', '', '10.99.0.5', 'off', 'eth9'].join('\n');
  // script(1) gives forseti a terminal; the answers are typed into it.
  const run = await runCommand(['script', '-qec', `stty -echo; ${SOURCE_CLI.join(' ')} init ${dir}`, '/dev/null'], { input: `${answers}\n` });
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /Gateway \(the router\) \[10\.99\.0\.1\]: /, 'the gateway is offered from the subnet');
  const site = readFileSync(join(dir, 'site.yaml'), 'utf8');
  for (const line of ['name: lab-two', 'subnet: 10.99.0.0/24', 'gateway: 10.99.0.1', 'address: 10.99.0.5', 'mode: off', 'interface: eth9']) assert.ok(site.includes(line), line);
  assert.equal((await forseti(['validate', dir])).code, 0);
});
