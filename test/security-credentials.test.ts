// Red-team finding 1: a merged commit names a credential *and* where it is sent (a BMC address, an alert sink URL),
// so without bindings any credential the agent holds (its Git token, the webhook secret, every BMC password) could
// be sent to the committer's server. The agent holds a credential of each kind; a commit points each one at a
// capture server; every such commit is rejected at the file:line:col of the field, and the capture servers receive
// nothing. A correct commit (a BMC inside its credential's addresses, a sink under its credential's urls) still works.
// Finding 11: DHCP only on the NIC and in the modes the agent config names.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Agent } from '../src/agent/agent.ts';
import { AgentConfigError, loadAgentConfig, type AgentConfig } from '../src/agent/config.ts';
import { dhcpPolicyProblems } from '../src/agent/dhcp-policy-check.ts';
import { createLogger } from '../src/log.ts';
import { formatProblem } from '../src/model/problems.ts';
import { Receiver } from './fixtures/alerts/receiver.ts';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { fetchStatus, loopbackAgentConfig, writeTree } from './fixtures/loopback-lab.ts';
import { selfSignedCert } from './fixtures/redfish/certs.ts';
import { freeTcpPort } from './fixtures/security-images.ts';
import type { Site } from '../src/model/types.ts';

const SECRETS = {
  git: 'GitPushToken-7f3a9c',
  webhook: 'WebhookSharedSecret-99',
  ilo: 'IloPassword-4b1d',
  iloStrict: 'IloStrictPassword-8e2f',
  old: 'LegacyPassword-3c5a',
  status: 'StatusToken-6d7e',
};

/** An HTTPS server on `address` that records every request (method, path, headers, body): a BMC or a thief. */
interface Capture {
  port: number;
  requests: Array<{ method: string; path: string; text: string }>;
  close(): Promise<void>;
}

async function httpsCapture(address: string): Promise<Capture> {
  const cert = selfSignedCert(`IP:${address}`);
  const requests: Capture['requests'] = [];
  const server: Server = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', path: req.url ?? '', text: `${JSON.stringify(req.headers)}\n${Buffer.concat(chunks).toString('utf8')}` });
      res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, address, r));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

let dir = '';
let git: GitServer;
let receiver: Receiver;
let recv = '';
let thief: Capture;
let bmc: Capture;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'forseti-sec-cred-'));
  git = await startGitServer({ auth: { username: 'forseti', password: SECRETS.git } });
  receiver = new Receiver();
  recv = await receiver.start();
  thief = await httpsCapture('127.0.0.1');
  bmc = await httpsCapture('127.0.0.2');
});

after(async () => {
  await thief?.close();
  await bmc?.close();
  await receiver?.stop();
  await git?.close();
  rmSync(dir, { recursive: true, force: true });
});

const lines = (...l: string[]): string => `${l.join('\n')}\n`;
const OFF = lines('apiVersion: forseti/v1', 'kind: Profile', 'name: off', 'boot: {off: true}');
const site = (port: number, ...sinks: string[]): string =>
  lines(
    'apiVersion: forseti/v1', // 1
    'kind: Site',
    'name: loop',
    'network: {interface: lo, subnet: 127.0.0.0/24, dns: []}',
    `agent: {address: 127.0.0.1, httpPort: ${port}, tftpPort: ${port}}`, // 5
    'alerts:',
    '  retry: {initialSeconds: 0.1, maxSeconds: 0.1}',
    '  sinks:',
    '    - name: ops', // 9
    '      type: webhook',
    `      url: ${recv}/api/v1/hook`,
    '      signingCredential: status', // 12
    ...sinks, // from line 13
  );
/** A host whose BMC names `credential` at `address:port`: the credential on line 10, the address on 8, tls on 11. */
const host = (name: string, credential: string, address: string, port: number, tls = 'tls: {insecure: true}'): string =>
  lines(
    'apiVersion: forseti/v1',
    'kind: Host',
    `name: ${name}`,
    "macs: ['02:00:00:00:0e:01']",
    'ip: 127.0.0.72',
    'bmc:',
    '  type: redfish',
    `  address: ${address}`,
    `  port: ${port}`,
    `  credential: ${credential}`,
    `  ${tls}`,
    'role: off',
  );

test('a commit cannot send any credential the agent holds anywhere its operator did not bind it; a bound one still works', { timeout: 180_000 }, async () => {
  const port = await freeTcpPort();
  writeFileSync(
    join(dir, 'secrets.yaml'),
    lines(
      `git: {username: forseti, password: ${SECRETS.git}}`,
      `webhook: {username: hook, password: ${SECRETS.webhook}}`,
      `ilo: {username: admin, password: ${SECRETS.ilo}, use: [bmc], addresses: [127.0.0.2/32], allowInsecureTls: true}`,
      `ilo-strict: {username: admin, password: ${SECRETS.iloStrict}, use: [bmc], addresses: ['127.0.0.2']}`,
      `old: {username: admin, password: ${SECRETS.old}}`,
      `status: {username: x, password: ${SECRETS.status}, use: [alerts], urls: ['${recv}/api/v1']}`,
    ),
  );
  const base = { 'site.yaml': site(port), 'profiles/off.yaml': OFF, 'hosts/hand.yaml': lines('apiVersion: forseti/v1', 'kind: Host', 'name: hand', "macs: ['02:00:00:00:07:01']", 'ip: 127.0.0.71', 'bmc: {type: manual}', 'role: off') };
  await writeTree(join(dir, 'seed'), base);
  await createBareRepo(git, 'lab', join(dir, 'seed'));
  const config: AgentConfig = { ...(await loopbackAgentConfig(dir, git.repoUrl('lab'), { tftp: false })), secretsFile: join(dir, 'secrets.yaml') };
  config.lab.credential = 'git';
  config.webhook = { credential: 'webhook', path: '/v1/webhook', maxBodyBytes: 65536 };
  const logged: string[] = [];
  const log = createLogger({ level: 'info', destination: new Writable({ write: (c: Buffer, _e, cb) => void (logged.push(c.toString()), cb()) }) });
  const agent = new Agent(config, log);
  try {
    await agent.start();
    const first = agent.current?.revision;
    assert.ok(first, 'the first commit is applied (fetched with the Git credential)');
    const status = `http://127.0.0.1:${port}`;

    const rejected = async (files: Record<string, string | null>, what: string, error: RegExp): Promise<string> => {
      const commit = await commitFiles(git, 'lab', 'main', { ...base, 'hosts/evil.yaml': null, ...files }, what);
      await agent.poll();
      const view = await fetchStatus(status);
      assert.equal(view.site?.rejected?.revision, commit, `${what}: rejected`);
      assert.equal(view.site?.revision, first, `${what}: the last good commit keeps serving`);
      assert.match(view.site?.rejected?.errors.join('\n') ?? '', error, what);
      return commit;
    };
    const evil = (credential: string, address = '127.0.0.1', bmcPort = thief.port, tls?: string) => ({ 'hosts/evil.yaml': host('evil', credential, address, bmcPort, tls) });

    // BMCs: the agent's own credentials, one outside its addresses, a commit's TLS trust, an unbound and a misused one
    await rejected(evil('git'), 'the Git token to a BMC', /^hosts\/evil\.yaml:10:\d+: credential "git" is the agent's lab\.credential/m);
    await rejected(evil('webhook'), 'the webhook secret to a BMC', /^hosts\/evil\.yaml:10:\d+: credential "webhook" is the agent's webhook\.credential/m);
    await rejected(evil('ilo'), 'a BMC password outside its addresses', new RegExp(`^hosts/evil\\.yaml:8:\\d+: credential "ilo" may not be sent to 127\\.0\\.0\\.1 port ${thief.port}`, 'm'));
    await rejected(evil('ilo-strict', '127.0.0.2', bmc.port), 'a commit deciding the TLS trust', /^hosts\/evil\.yaml:11:\d+: bmc\.tls\.insecure of host evil: .* credential "ilo-strict" does not allow/m);
    await rejected(evil('ilo-strict', '127.0.0.2', bmc.port, "tls: {fingerprint: 'AA:BB'}"), 'a commit pinning its own certificate', /^hosts\/evil\.yaml:11:\d+: bmc\.tls\.fingerprint/m);
    await rejected(evil('old'), 'an entry without use', /^hosts\/evil\.yaml:10:\d+: credential "old" \(secrets file\) says no use: nothing a commit names may use it/m);
    await rejected(evil('status'), 'an alerts credential to a BMC', /^hosts\/evil\.yaml:10:\d+: credential "status" may not be used for bmc \(its use: alerts\)/m);
    await rejected(evil('ilo', "'127.1'", bmc.port), 'another spelling of an address', /^hosts\/evil\.yaml:8:\d+: credential "ilo" may not be sent to 127\.1/m);

    // Alert sinks: the agent's own credentials, a URL outside the prefix (another path, traversal, userinfo, look-alike)
    const sink = (...l: string[]) => ({ 'site.yaml': site(port, ...l) });
    await rejected(sink('    - name: x', '      type: commit-status', `      api: ${recv}/steal`, '      repository: a/b', '      credential: git'), 'the Git token as a commit status', /^site\.yaml:17:\d+: credential "git" is the agent's lab\.credential/m);
    await rejected(sink('    - name: x', '      type: commit-status', `      api: ${recv}/steal`, '      repository: a/b', '      credential: status'), 'a status token to another path', /^site\.yaml:15:\d+: credential "status" may not be sent to api of alert sink x/m);
    await rejected(sink('    - name: x', '      type: commit-status', `      api: ${recv}/api/v1/../../steal`, '      repository: a/b', '      credential: status'), 'a status token through ..', /^site\.yaml:15:\d+: credential "status" may not be sent/m);
    await rejected(sink('    - name: x', '      type: commit-status', `      api: ${recv}/api/v1`, '      repository: ../..', '      credential: status'), 'a status token through the repository name', /^site\.yaml:15:\d+: credential "status" may not be sent/m);
    await rejected(sink('    - name: x', '      type: commit-status', `      api: 'http://127.0.0.1@127.0.0.1:${thief.port}/api/v1'`, '      repository: a/b', '      credential: status'), 'a status token with userinfo', /^site\.yaml:15:\d+: credential "status" may not be sent/m);
    await rejected(sink('    - name: x', '      type: webhook', `      url: ${recv}/steal`, '      signingCredential: status'), 'a signing key to another path', /^site\.yaml:15:\d+: credential "status" may not be sent to url of alert sink x/m);
    await rejected(sink('    - name: x', '      type: webhook', `      url: ${recv}/steal`, '      signingCredential: webhook'), 'the webhook secret as a signing key', /^site\.yaml:16:\d+: credential "webhook" is the agent's webhook\.credential/m);
    await rejected(sink('    - name: x', '      type: slack', '      urlCredential: ilo'), 'a BMC password as a Slack URL', /^site\.yaml:15:\d+: credential "ilo" may not be used for alerts \(its use: bmc\)/m);
    await rejected(sink('    - name: x', '      type: slack', '      urlCredential: status'), 'a token that is no URL under its prefixes as a Slack URL', /^site\.yaml:15:\d+: credential "status" may not be sent to the URL it holds/m);

    // A correct commit: the BMC inside its credential's addresses gets the password, the sink under its urls its alerts.
    const good = await commitFiles(git, 'lab', 'main', { ...base, 'hosts/evil.yaml': null, 'hosts/good.yaml': host('good', 'ilo', '127.0.0.2', bmc.port) }, 'a bound BMC');
    await agent.poll();
    assert.equal((await fetchStatus(status)).site?.revision, good, 'the correct commit is applied');
    for (const deadline = Date.now() + 60_000; !bmc.requests.some((r) => r.text.includes(SECRETS.ilo)); await new Promise((r) => setTimeout(r, 100))) {
      assert.ok(Date.now() < deadline, `the bound BMC never got its password: ${JSON.stringify(bmc.requests.map((r) => `${r.method} ${r.path}`))}`);
    }
    for (const deadline = Date.now() + 60_000; !receiver.received.some((r) => r.body.includes('commit-rejected')); await new Promise((r) => setTimeout(r, 100))) {
      assert.ok(Date.now() < deadline, 'the sink under its credential\'s urls never got the commit-rejected alerts');
    }

    assert.deepEqual(thief.requests, [], 'the capture server outside every binding received nothing');
    assert.deepEqual([...new Set(receiver.received.map((r) => r.path))], ['/api/v1/hook'], 'the receiver was only sent to at the bound sink');
    const delivered = [...receiver.received.map((r) => `${JSON.stringify(r.headers)}\n${r.body}`), ...bmc.requests.map((r) => r.text)].join('\n');
    for (const [name, value] of Object.entries(SECRETS)) {
      if (name === 'ilo') continue; // the bound BMC's own password, asserted above
      assert.ok(!delivered.includes(value), `${name}'s secret reached a capture server`);
      assert.ok(!logged.join('').includes(value), `${name}'s secret reached the log`);
    }
  } finally {
    await agent.stop();
  }
});

test('the agent config decides the NIC, the modes and the relays of DHCP; a commit asking for others is rejected', { timeout: 120_000 }, async () => {
  const port = await freeTcpPort();
  const configFile = join(dir, 'dhcp-agent.yaml');
  writeFileSync(configFile, lines('lab: {url: http://127.0.0.1:1/lab.git}', 'serve: {interface: lo, dhcpModes: [proxy, full], dhcpRelays: [10.50.0.1]}'));
  assert.deepEqual((await loadAgentConfig(configFile)).serve, { ...(await loadAgentConfig(configFile)).serve, interface: 'lo', dhcpModes: ['proxy', 'full'], dhcpRelays: ['10.50.0.1'] });
  writeFileSync(configFile, lines('lab: {url: http://127.0.0.1:1/lab.git}'));
  const defaults = (await loadAgentConfig(configFile)).serve;
  assert.equal(defaults.interface, undefined);
  assert.deepEqual(defaults.dhcpModes, ['proxy']);
  assert.deepEqual(defaults.dhcpRelays, []);
  for (const [bad, message] of [['serve: {interface: "eth0; x"}', /serve\.interface must be a network interface name/], ['serve: {dhcpModes: [off]}', /serve\.dhcpModes must be a list of full, proxy/], ['serve: {dhcpRelays: [relay.example.net]}', /serve\.dhcpRelays must be a list of IPv4 addresses/], ['serve: {dhcpRelays: 10.50.0.1}', /serve\.dhcpRelays must be a list of IPv4 addresses/]] as const) {
    writeFileSync(configFile, lines('lab: {url: http://127.0.0.1:1/lab.git}', bad));
    await assert.rejects(loadAgentConfig(configFile), (err: unknown) => err instanceof AgentConfigError && message.test(err.message));
  }

  // The rule itself, by table
  const siteOf = (nic: string, mode: 'full' | 'proxy' | 'off', relays?: string[]): Site => ({
    network: { interface: nic }, dhcp: { mode, ...(relays ? { relays } : {}) },
    refs: { 'network.interface': { file: 'site.yaml', line: 4, col: 14 }, 'dhcp.mode': { file: 'site.yaml', line: 6, col: 9 }, 'dhcp.relays.0': { file: 'site.yaml', line: 7, col: 13 }, 'dhcp.relays.1': { file: 'site.yaml', line: 7, col: 24 } },
  }) as unknown as Site;
  const notAllowed = (relay: string, listed: string): string => `site.yaml:7:${relay === '10.51.0.1' ? 24 : 13}: dhcp.relays names ${relay}, which is not a relay the agent's config allows (${listed}): the agent sends its DHCP replies to a relay, so only its operator names them`;
  const table: Array<[Site, { dhcp: boolean; interface?: string; dhcpModes?: Array<'full' | 'proxy'>; dhcpRelays?: string[] }, string[]]> = [
    [siteOf('eno2', 'full'), { dhcp: false }, []],
    [siteOf('eno2', 'off'), { dhcp: true, interface: 'br0' }, []],
    [siteOf('br0', 'proxy'), { dhcp: true, interface: 'br0' }, []],
    [siteOf('br0', 'full'), { dhcp: true, interface: 'br0', dhcpModes: ['full'] }, []],
    [siteOf('eno2', 'proxy'), { dhcp: true, interface: 'br0' }, ['site.yaml:4:14: network.interface "eno2" is not the agent\'s provisioning NIC "br0" (serve.interface in its config); the agent serves DHCP there only']],
    [siteOf('br0', 'full'), { dhcp: true, interface: 'br0' }, ['site.yaml:6:9: dhcp.mode full is not allowed by the agent\'s config (serve.dhcpModes: [proxy])']],
    [siteOf('br0', 'proxy'), { dhcp: true }, ['site.yaml:4:14: dhcp.mode proxy asks the agent to serve DHCP, but its config names no serve.interface: the agent serves DHCP only on the NIC its operator names (or set dhcp.mode: off)']],
    // Relays: allowed, some not allowed, none configured (the default), and no DHCP served at all
    [siteOf('br0', 'proxy', ['10.50.0.1', '10.51.0.1']), { dhcp: true, interface: 'br0', dhcpRelays: ['10.51.0.1', '10.50.0.1'] }, []],
    [siteOf('br0', 'proxy', ['10.50.0.1', '10.51.0.1']), { dhcp: true, interface: 'br0', dhcpRelays: ['10.50.0.1'] }, [notAllowed('10.51.0.1', 'serve.dhcpRelays: [10.50.0.1]')]],
    [siteOf('br0', 'proxy', ['10.50.0.1', '10.51.0.1']), { dhcp: true, interface: 'br0' }, [notAllowed('10.50.0.1', 'it lists no serve.dhcpRelays'), notAllowed('10.51.0.1', 'it lists no serve.dhcpRelays')]],
    [siteOf('br0', 'proxy', ['10.50.0.1']), { dhcp: true, interface: 'br0', dhcpRelays: [] }, [notAllowed('10.50.0.1', 'it lists no serve.dhcpRelays')]],
    [siteOf('br0', 'off', ['10.50.0.1']), { dhcp: true, interface: 'br0' }, []],
    [siteOf('br0', 'proxy', ['10.50.0.1']), { dhcp: false }, []],
  ];
  for (const [s, serve, expected] of table) assert.deepEqual(dhcpPolicyProblems(s, serve).map(formatProblem), expected, JSON.stringify(serve));

  // And in the agent: DHCP allowed on lo in proxy mode only; the accepted commit says off, so no DHCP starts here.
  const work = join(dir, 'dhcp');
  const siteYaml = (network: string, dhcp: string): string =>
    lines('apiVersion: forseti/v1', 'kind: Site', 'name: loop', `network: {interface: ${network}, subnet: 127.0.0.0/24, dns: []}`, `dhcp: {mode: ${dhcp}}`, `agent: {address: 127.0.0.1, httpPort: ${port}, tftpPort: ${port}}`);
  const base = { 'site.yaml': siteYaml('lo', 'off'), 'profiles/off.yaml': OFF };
  await writeTree(join(work, 'seed'), base);
  await createBareRepo(git, 'dhcp', join(work, 'seed'));
  const config = await loopbackAgentConfig(work, git.repoUrl('dhcp'), { tftp: false });
  config.lab.credential = 'git';
  writeFileSync(config.secretsFile ?? '', `git: {username: forseti, password: ${SECRETS.git}}\n`);
  config.serve = { ...config.serve, dhcp: true, interface: 'lo', dhcpModes: ['proxy'], dhcpRelays: ['127.0.0.50'] };
  const agent = new Agent(config, createLogger({ level: 'silent' }));
  try {
    await agent.start();
    const first = agent.current?.revision;
    assert.ok(first);
    const expectRejected = async (site: string, error: RegExp): Promise<void> => {
      const commit = await commitFiles(git, 'dhcp', 'main', { 'site.yaml': site }, 'dhcp');
      await agent.poll();
      const view = await fetchStatus(`http://127.0.0.1:${port}`);
      assert.equal(view.site?.rejected?.revision, commit);
      assert.equal(view.site?.revision, first);
      assert.match(view.site?.rejected?.errors.join('\n') ?? '', error);
    };
    await expectRejected(siteYaml('eno2', 'proxy'), /^site\.yaml:4:\d+: network\.interface "eno2" is not the agent's provisioning NIC "lo"/m);
    await expectRejected(siteYaml('lo', 'full'), /^site\.yaml:5:\d+: dhcp\.mode full is not allowed by the agent's config \(serve\.dhcpModes: \[proxy\]\)/m);
    // A relay the operator did not list, at its list item (line 5; after `dhcp: {mode: proxy, relays: [127.0.0.50, `)
    const relaysAt = 'dhcp: {mode: proxy, relays: [127.0.0.50, '.length + 1;
    await expectRejected(siteYaml('lo', 'proxy, relays: [127.0.0.50, 192.0.2.7]'), new RegExp(`^site\\.yaml:5:${relaysAt}: dhcp\\.relays names 192\\.0\\.2\\.7, which is not a relay the agent's config allows \\(serve\\.dhcpRelays: \\[127\\.0\\.0\\.50\\]\\)`, 'm'));
  } finally {
    await agent.stop();
  }
});
