// What a machine on the network or a BMC can do to forseti, tried against the real components (the CLI in a child
// process, `forseti serve tftp`, the agent's HTTP server, the DHCP server in network namespaces), each asserting the
// refusal or the bound by counts and states, never by time:
//   - Redfish answers: a body past the size cap (declared or streamed) and JSON nested past the depth cap are refused
//     with a BMC error, having read a bounded part of a 64 MiB answer;
//   - terminal escape sequences from a BMC or in the status never reach the terminal raw (bmc, bmc probe, discover,
//     doctor, status);
//   - programs forseti starts (ipmitool, perl) get none of the agent's secrets from its environment;
//   - an Onboard Administrator that floods (at login, in a command's output, unasked between commands) is cut off
//     after a bounded number of bytes;
//   - an OA's SSH host key: a pinned key, or the first one the agent saw, is required; an impostor on the OA's
//     address with another key never receives the password, the agent logs an alert-worthy line and the host's
//     error says so; `forseti bmc probe` shows the key to pin;
//   - TFTP (`forseti serve tftp`, both pumps): a client's `timeout=255` is not granted, and requests nobody
//     acknowledges cannot keep a machine that is there from its file at the cap; a transfer has a longest life;
//   - the agent's HTTP connection caps held by a flood from 20 addresses (unfinished heads, or requests that never
//     finish their body): a host's own script fetch gets through, and so does anyone while heads are what is held;
//   - /v1/events clients that never read while the status document changes many times: what the stream holds stays
//     within about one document per client, readers get the latest document, a client that reads nothing in time is
//     closed.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { chmod, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { Agent } from '../src/agent/agent.ts';
import * as oa from '../src/bmc/oa/index.ts';
import { createLogger } from '../src/log.ts';
import { bindSocketToDevice } from '../src/serve/dhcp/bind-device.ts';
import { StatusStream, type StatusStreamOptions } from '../src/serve/dashboard/status-stream.ts';
import { forseti, type Run } from './fixtures/cli-run.ts';
import { freeTcpPort, freeUdpPort } from './fixtures/free-port.ts';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { startFakeBmc, type FakeBmc } from './fixtures/ipmi/support.ts';
import { loopbackAgentConfig, loopbackLabFiles, waitForView, writeTree } from './fixtures/loopback-lab.ts';
import { startFakeOa, type FakeOa } from './fixtures/oa/oa-server.ts';
import { RawClient, download, sha256 } from './fixtures/tftp/harness.ts';
import { startServe } from './fixtures/tftp/serve-process.ts';
import { Opcode, encodeAck, encodeRequest } from '../src/serve/tftp/packet.ts';
import { DEFAULT_HTTP_LIMITS } from '../src/serve/http/http-server.ts';
import { startHostileRedfish, type HostileAnswer, type HostileRedfish } from './fixtures/redfish/hostile.ts';

const MINIMAL_LAB = fileURLToPath(new URL('./fixtures/labs/minimal/', import.meta.url));
const MIB = 1024 * 1024;
/** Control characters a terminal acts on: C0 but line feed and tab, DEL, C1, bidirectional overrides. */
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
/** What a hostile BMC puts in its text: set the window title, erase the line, paint a lie in green; an 8-bit CSI; a right-to-left override. */
const ESCAPES = 'x\u001b]0;TERMINAL-TITLE-HIJACKED\u0007\u001b[2K\r\u001b[1A\u001b[32mall hosts Converged\u001b[0m \u009b2J \u202edesrever';

/** A scratch lab (the minimal one) with extra host files, and a secrets file. */
async function scratchLab(hosts: Record<string, string>, secrets: string): Promise<{ dir: string; lab: string; secretsFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'fsec-net-'));
  const lab = join(dir, 'lab');
  await cp(MINIMAL_LAB, lab, { recursive: true });
  for (const [name, bmc] of Object.entries(hosts)) {
    const n = Object.keys(hosts).indexOf(name) + 1;
    await writeFile(join(lab, 'hosts', `${name}.yaml`), `apiVersion: forseti/v1\nkind: Host\nname: ${name}\nmacs: [aa:bb:cc:00:01:0${n}]\nip: 10.9.0.6${n}\nbmc: ${bmc}\nhardware: {firmware: bios}\nrole: off\npower: off\n`);
  }
  const secretsFile = join(dir, 'secrets.yaml');
  await writeFile(secretsFile, secrets, { mode: 0o600 });
  return { dir, lab, secretsFile };
}

function redfishHost(bmc: HostileRedfish): string {
  return `{type: redfish, address: 127.0.0.1, port: ${bmc.port}, credential: evil-bmc, tls: {fingerprint: 'sha256:${bmc.fingerprint256}'}}`;
}

describe('Redfish answers are bounded in size and depth (forseti bmc)', () => {
  let bmc: HostileRedfish;
  let scratch: { dir: string; lab: string; secretsFile: string };
  let systems: HostileAnswer = { status: 200, json: {} };

  before(async () => {
    bmc = await startHostileRedfish((_method, path) => (path === '/redfish/v1/Systems' ? systems : undefined));
    scratch = await scratchLab({ evil: redfishHost(bmc) }, 'evil-bmc: {username: admin, password: Hostile-Pw-7788}\n');
  });
  after(async () => {
    await bmc.close();
    await rm(scratch.dir, { recursive: true, force: true });
  });

  const status = (): Promise<Run> => forseti(['bmc', 'evil', 'status', '--lab', scratch.lab, '--secrets', scratch.secretsFile]);

  it('a 64 MiB body streamed without a length is refused once it passes 4 MiB; the rest is never read', async () => {
    systems = { status: 200, flood: { bytes: 64 * MIB, declare: false } };
    const before = bmc.bytesWritten();
    const run = await status();
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /GET \/redfish\/v1\/Systems: answer refused: its body is larger than the limit of 4194304 bytes/);
    // What the server got onto the wire: the cap plus what the sockets' buffers hold, far from the 64 MiB it offered.
    const sent = bmc.bytesWritten() - before;
    assert.ok(sent < 24 * MIB, `${sent} bytes went out of a 64 MiB answer`);
  });

  it('a declared Content-Length over the cap is refused before the body is read', async () => {
    systems = { status: 200, flood: { bytes: 64 * MIB, declare: true } };
    const run = await status();
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /answer refused: its Content-Length of 67108872 bytes is over the limit of 4194304/);
  });

  it('JSON nested 100,000 deep (a parse bomb of 200 KB) is refused by its depth, not parsed', async () => {
    systems = { status: 200, raw: `${'['.repeat(100_000)}${']'.repeat(100_000)}` };
    const run = await status();
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /answer refused: its JSON is nested deeper than the limit of 64 levels/);
  });

  it('strings holding brackets do not count as depth: a well-formed answer within the caps is read', async () => {
    systems = { status: 200, json: { Members: [], Name: '['.repeat(1000), Description: '"\\[{'.repeat(100) } };
    const run = await status();
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /GET \/redfish\/v1\/Systems: no members/, 'the answer was read and found to hold no system');
    assert.doesNotMatch(run.stderr, /answer refused/);
  });
});

describe('terminal escape sequences from a BMC or the status never reach the terminal raw', () => {
  let bmc: HostileRedfish;
  let scratch: { dir: string; lab: string; secretsFile: string };
  let statusServer: Server;

  before(async () => {
    bmc = await startHostileRedfish(
      (_method, path) => (path.startsWith('/redfish/v1/Systems') ? { status: 500, json: { error: { message: ESCAPES } } } : undefined),
      { Vendor: ESCAPES, Product: ESCAPES },
    );
    scratch = await scratchLab({ evil: redfishHost(bmc) }, 'evil-bmc: {username: admin, password: Hostile-Pw-7788, use: [bmc], addresses: [127.0.0.1], allowInsecureTls: true}\n');
    // An agent whose status carries a host error as a BMC worded it.
    const snapshot = { revision: 'abc1234', generation: 'g1', hosts: { evil: { phase: 'Failed', role: 'off', lastError: { step: 'power', message: ESCAPES }, events: [{ at: 1796600000000, kind: 'failed', message: ESCAPES }] } } };
    statusServer = createServer((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(snapshot)));
    await new Promise<void>((resolve) => statusServer.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    await bmc.close();
    await new Promise<void>((resolve) => statusServer.close(() => resolve()));
    await rm(scratch.dir, { recursive: true, force: true });
  });

  /** The run printed the BMC's text (escaped), and no raw control character on either stream. */
  function neutralised(run: Run, what: string): void {
    const all = `${run.stdout}${run.stderr}`;
    assert.doesNotMatch(all, RAW_CONTROL, `${what}: a raw control character reached the terminal`);
    assert.match(all, /\\u001b\]0;TERMINAL-TITLE-HIJACKED\\u0007/, `${what}: the BMC's text is shown, escaped`);
  }

  it('forseti bmc HOST status (the BMC\'s error)', async () => {
    const run = await forseti(['bmc', 'evil', 'status', '--lab', scratch.lab, '--secrets', scratch.secretsFile]);
    assert.equal(run.code, 1);
    neutralised(run, 'bmc');
  });

  for (const json of [false, true]) {
    it(`forseti bmc probe${json ? ' --json' : ''} (vendor and product of the service root)`, async () => {
      const run = await forseti(['bmc', 'probe', '127.0.0.1', '--type', 'redfish', '--port', String(bmc.port), ...(json ? ['--json'] : [])]);
      neutralised(run, 'bmc probe');
      assert.doesNotMatch(run.stdout, /\u009b|\u202e/);
      if (json) assert.equal((JSON.parse(run.stdout) as { identity: string[] }).identity.some((i) => i.includes('\u001b]0;TERMINAL')), true, 'JSON output keeps its meaning');
    });
  }

  it('forseti discover redfish (the BMC\'s error)', async () => {
    const run = await forseti(['discover', 'redfish', '127.0.0.1', '--port', String(bmc.port), '--credential', 'evil-bmc', '--lab', scratch.lab, '--secrets', scratch.secretsFile, '--dry-run']);
    assert.equal(run.code, 1);
    neutralised(run, 'discover');
  });

  it('forseti doctor (the BMC check)', async () => {
    const config = join(scratch.dir, 'agent.yaml');
    await writeFile(config, `lab: {url: 'http://127.0.0.1:9/lab.git', branch: main}\nstateDir: ${join(scratch.dir, 'state')}\nsecretsFile: ${scratch.secretsFile}\nserve: {bindAddress: 127.0.0.1, dhcp: false, tftp: false}\n`);
    const run = await forseti(['doctor', '--config', config, '--lab', scratch.lab, '--no-dhcp-probe']);
    assert.equal(run.code, 1);
    neutralised(run, 'doctor');
  });

  for (const json of [false, true]) {
    it(`forseti status --agent${json ? ' --json' : ''} (a host's error as the BMC worded it)`, async () => {
      const run = await forseti(['status', '--agent', `http://127.0.0.1:${(statusServer.address() as AddressInfo).port}`, ...(json ? ['--json'] : [])]);
      assert.equal(run.code, 0, run.stderr);
      assert.doesNotMatch(run.stdout, RAW_CONTROL);
      assert.match(run.stdout, /\\u001b/);
      if (json) JSON.parse(run.stdout);
    });
  }
});

describe('programs forseti starts get none of its secrets from the environment', () => {
  let dir: string;
  let ipmi: FakeBmc;
  const secretEnv = {
    FORSETI_CREDENTIAL_GIT_PASSWORD: 'Git-Push-Token-4471',
    FORSETI_CREDENTIAL_ASGARD_ILO_PASSWORD: 'Ilo-Admin-Pw-9912',
    FORSETI_AGE_KEY: 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ',
    FORSETI_AGE_KEY_FILE: '/nonexistent/age.key',
    AWS_SECRET_ACCESS_KEY: 'not-for-children',
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fsec-env-'));
    ipmi = await startFakeBmc('sec-env');
    // Stand-ins first on PATH that record their environment, then run the real program.
    for (const [name, real] of [['ipmitool', '/usr/bin/ipmitool'], ['perl', '/usr/bin/perl']] as const) {
      const shim = join(dir, name);
      await writeFile(shim, `#!/bin/sh\nenv > '${join(dir, `${name}.env`)}'\nexec ${real} "$@"\n`);
      await chmod(shim, 0o755);
    }
  });
  after(async () => {
    await ipmi.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function environOf(text: string): Map<string, string> {
    return new Map(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }

  it('ipmitool (forseti bmc on an IPMI host): PATH, the C locale and its own BMC\'s IPMI_PASSWORD only', async () => {
    const scratch = await scratchLab({ box: `{type: ipmi, address: 127.0.0.1, port: ${ipmi.sim.port}, credential: box-ipmi}` }, `box-ipmi: {username: ${ipmi.sim.user}, password: ${ipmi.sim.password}}\n`);
    try {
      const { FORSETI_AGE_KEY_FILE: _noFile, ...secrets } = secretEnv;
      const env = { ...process.env, ...secrets, PATH: `${dir}:${process.env['PATH'] ?? ''}` };
      const run = await forseti(['bmc', 'box', 'status', '--lab', scratch.lab, '--secrets', scratch.secretsFile], { env });
      assert.equal(run.code, 0, run.stderr);
      const seen = environOf(await readFile(join(dir, 'ipmitool.env'), 'utf8'));
      assert.equal(seen.get('IPMI_PASSWORD'), ipmi.sim.password);
      for (const name of Object.keys(secretEnv)) assert.equal(seen.has(name), false, `ipmitool got ${name}`);
      const text = [...seen.values()].join('\n');
      for (const value of Object.values(secretEnv)) assert.equal(text.includes(value), false, 'a secret value reached ipmitool');
      assert.deepEqual([...seen.keys()].filter((k) => !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(k)).sort(), ['IPMI_PASSWORD', 'LC_ALL', 'PATH']);
    } finally {
      await rm(scratch.dir, { recursive: true, force: true });
    }
  });

  it('perl (binding the DHCP socket to its interface): PATH and the C locale only', async () => {
    const saved = { ...process.env };
    const socket = createSocket('udp4');
    try {
      Object.assign(process.env, secretEnv, { PATH: `${dir}:${process.env['PATH'] ?? ''}` });
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
      bindSocketToDevice(socket.address().port, '127.0.0.1', 'lo');
      const seen = environOf(await readFile(join(dir, 'perl.env'), 'utf8'));
      for (const name of Object.keys(secretEnv)) assert.equal(seen.has(name), false, `perl got ${name}`);
      assert.deepEqual([...seen.keys()].filter((k) => !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(k)).sort(), ['LC_ALL', 'PATH']);
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
      socket.close();
    }
  });
});

/**
 * Polls `check` until it holds, at most `limitMs`: a loop with no end would outlive the test that timed out and keep
 * the process from exiting.
 */
async function until(check: () => boolean, limitMs = 100_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`a condition did not hold within ${limitMs} ms: ${check.toString()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function oaHost(fake: FakeOa, extra = ''): string {
  return `{type: hp-oa, address: 127.0.0.1, port: ${fake.port}, credential: asgard-oa${extra}}`;
}

describe('an Onboard Administrator that floods is cut off after a bounded number of bytes', () => {
  const FLOOD = 256 * MIB;
  const CAP = 1024 * 1024;

  async function withOa(options: Parameters<typeof startFakeOa>[0], body: (fake: FakeOa, run: (op: string) => Promise<Run>) => Promise<void>): Promise<void> {
    const fake = await startFakeOa(options);
    const scratch = await scratchLab({}, `asgard-oa: {username: ${fake.user}, password: ${fake.password}}\n`);
    await writeFile(join(scratch.lab, 'hosts', 'bld-1.yaml'), `apiVersion: forseti/v1\nkind: Host\nname: bld-1\nmacs: [9c:8e:99:4a:10:01]\nip: 10.9.0.71\nbmc: ${oaHost(fake)}\nenclosure: {name: asgard, bay: 1}\nrole: off\npower: off\n`);
    try {
      await body(fake, (op) => forseti(['bmc', 'bld-1', op, '--lab', scratch.lab, '--secrets', scratch.secretsFile]));
    } finally {
      await fake.close();
      await rm(scratch.dir, { recursive: true, force: true });
    }
  }

  it('256 MiB of banner without a prompt at login: each login attempt stops after 1 MiB (forseti bmc)', async () => {
    await withOa({ loginFloodBytes: FLOOD }, async (fake, run) => {
      const result = await run('status');
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /the OA sent more than 1048576 bytes without a prompt at login/);
      // Two attempts (forseti bmc retries once), each 1 MiB plus what SSH's window lets through.
      assert.ok(fake.floodBytesWritten < 2 * (CAP + 8 * MIB), `${fake.floodBytesWritten} bytes of a 256 MiB banner went out`);
    });
  });

  it('256 MiB of output to a command without the prompt: the command fails after 1 MiB, the session is closed (forseti bmc)', async () => {
    await withOa({}, async (fake, run) => {
      fake.floodOnNextCommand(FLOOD);
      const result = await run('status');
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /"SHOW SERVER STATUS 1": the OA sent more than 1048576 bytes without its prompt; the session was closed/);
      assert.ok(fake.floodBytesWritten < CAP + 8 * MIB, `${fake.floodBytesWritten} bytes of 256 MiB went out`);
      assert.equal(fake.commands.length, 1, 'not sent again');
    });
  });

  it('256 MiB unasked between two commands: the idle session is closed after 1 MiB, the next command logs in anew', async () => {
    const fake = await startFakeOa();
    const session = new oa.OaSession({ address: fake.address, port: fake.port, username: fake.user, password: fake.password, retries: 0 });
    try {
      assert.equal((await oa.showServerStatus(session, 1)).power, 'off');
      fake.floodUnsolicited(FLOOD);
      await until(() => fake.openShells === 0);
      assert.ok(fake.floodBytesWritten < CAP + 8 * MIB, `${fake.floodBytesWritten} bytes of 256 MiB went out`);
      assert.equal((await oa.showServerStatus(session, 2)).power, 'off');
      assert.equal(session.logins, 2);
    } finally {
      await session.close();
      await fake.close();
    }
  });
});

describe('an Onboard Administrator\'s SSH host key is checked before the password is sent', () => {
  it('forseti bmc probe shows the key and pins it in the host file block', async () => {
    const fake = await startFakeOa();
    try {
      const run = await forseti(['bmc', 'probe', '127.0.0.1', '--type', 'hp-oa', '--port', String(fake.port)]);
      assert.equal(run.code, 0, run.stderr);
      assert.ok(run.stdout.includes(`host key ${fake.hostKeyFingerprint}`), run.stdout);
      assert.ok(run.stdout.includes(`sshHostKey: ${fake.hostKeyFingerprint}`), run.stdout);
      assert.equal(fake.passwordsReceived, 0, 'looking at the key sends no password');
    } finally {
      await fake.close();
    }
  });

  it('a pinned key (bmc.sshHostKey): the OA is driven; an impostor with another key gets no password (forseti bmc)', async () => {
    const real = await startFakeOa();
    const scratch = await scratchLab({}, `asgard-oa: {username: ${real.user}, password: ${real.password}}\n`);
    const host = (fake: FakeOa): string =>
      `apiVersion: forseti/v1\nkind: Host\nname: bld-1\nmacs: [9c:8e:99:4a:10:01]\nip: 10.9.0.71\nbmc: ${oaHost(fake, `, sshHostKey: '${real.hostKeyFingerprint}'`)}\nenclosure: {name: asgard, bay: 1}\nrole: off\npower: off\n`;
    const status = (): Promise<Run> => forseti(['bmc', 'bld-1', 'status', '--lab', scratch.lab, '--secrets', scratch.secretsFile]);
    let impostor: FakeOa | undefined;
    try {
      await writeFile(join(scratch.lab, 'hosts', 'bld-1.yaml'), host(real));
      const good = await status();
      assert.equal(good.code, 0, good.stderr);
      assert.equal(real.logins, 1);
      impostor = await startFakeOa({ password: real.password });
      await writeFile(join(scratch.lab, 'hosts', 'bld-1.yaml'), host(impostor));
      const refused = await status();
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`SSH host key ${impostor.hostKeyFingerprint.replace(/[+/]/g, '\\$&')} is not the pinned ${real.hostKeyFingerprint.replace(/[+/]/g, '\\$&')} \\(bmc\\.sshHostKey\\); refused before the password was sent`));
      assert.equal(impostor.passwordsReceived, 0, 'the impostor got no password');
      assert.equal(impostor.logins, 0);
    } finally {
      await real.close();
      await impostor?.close();
      await rm(scratch.dir, { recursive: true, force: true });
    }
  });

  it('the agent trusts the first key it sees (recorded in stateDir), and an impostor on the OA\'s address gets no password: the host fails, an error line for an alert', { timeout: 180_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fsec-oa-tofu-'));
    let git: GitServer | undefined;
    let real: FakeOa | undefined;
    let impostor: FakeOa | undefined;
    let agent: Agent | undefined;
    try {
      real = await startFakeOa();
      const [http, tftp] = [await freeTcpPort(), await freeUdpPort()];
      const blade = (role: string, power: string): string =>
        `apiVersion: forseti/v1\nkind: Host\nname: bld-1\nmacs: ['9c:8e:99:4a:10:01']\nip: 127.0.0.81\nbmc: ${oaHost(real!)}\nenclosure: {name: asgard, bay: 1}\nhardware: {firmware: bios}\nrole: ${role}\npower: ${power}\n`;
      git = await startGitServer();
      const seed = join(dir, 'seed');
      const off = 'apiVersion: forseti/v1\nkind: Profile\nname: off\nboot: {off: true}\n';
      await writeTree(seed, { ...(await loopbackLabFiles(dir, { http, tftp })), 'profiles/off.yaml': off, 'hosts/bld-1.yaml': blade('off', 'off') });
      await createBareRepo(git, 'lab', seed);
      const config = await loopbackAgentConfig(dir, git.repoUrl('lab'), { tftp: false });
      await writeFile(config.secretsFile ?? '', `asgard-oa: {username: ${real.user}, password: ${real.password}, use: [bmc], addresses: [127.0.0.1]}\n`, { mode: 0o600 });
      const lines: Array<Record<string, unknown>> = [];
      agent = new Agent(config, createLogger({ level: 'info', destination: new Writable({ write: (c: Buffer, _e, cb) => void (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) }) }));
      await agent.start();
      const base = `http://127.0.0.1:${http}`;
      await waitForView(base, (v) => v.hosts['bld-1']?.phase === 'Off', 'bld-1 off, read through the OA');
      const recorded = JSON.parse(await readFile(join(config.stateDir, 'ssh-host-keys.json'), 'utf8')) as Record<string, { fingerprint: string }>;
      assert.equal(recorded[`127.0.0.1:${real.port}`]?.fingerprint, real.hostKeyFingerprint);
      assert.equal(lines.filter((l) => /trusted on first use and recorded/.test(String(l['msg']))).length, 1);

      // Someone else answers on the OA's address and port, with the same user and password set up, but its own key.
      const port = real.port;
      await real.close();
      impostor = await startFakeOa({ port, password: real.password });
      await commitFiles(git, 'lab', 'main', { 'hosts/bld-1.yaml': blade('worker', 'on') }, 'bld-1 to worker');
      await agent.poll();
      const view = await waitForView(base, (v) => /SSH host key CHANGED/.test(v.hosts['bld-1']?.lastError?.message ?? ''), 'bld-1 refused by its changed host key');
      assert.match(view.hosts['bld-1']?.lastError?.message ?? '', new RegExp(`remove the OA's entry from ${join(config.stateDir, 'ssh-host-keys.json').replace(/[.]/g, '\\.')}`));
      assert.equal(impostor.passwordsReceived, 0, 'the impostor got no password');
      assert.equal(impostor.logins, 0);
      const alerts = lines.filter((l) => l['alert'] === 'bmc-host-key-mismatch');
      assert.ok(alerts.length >= 1, 'an error line for an alert');
      assert.equal(alerts[0]?.['level'], 50);
      assert.equal(alerts[0]?.['sshHostKey'], impostor.hostKeyFingerprint);
      assert.equal(alerts[0]?.['expected'], recorded[`127.0.0.1:${port}`]?.fingerprint);
    } finally {
      await agent?.stop();
      await impostor?.close();
      await real?.close().catch(() => undefined);
      await git?.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('TFTP: what one request can hold is bounded whatever it asks (forseti serve tftp)', () => {
  let root: string;
  const small = Buffer.from('#!ipxe\n'.repeat(300));
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'fsec-tftp-'));
    await writeFile(join(root, 'undionly.kpxe'), small);
    await writeFile(join(root, 'big.bin'), Buffer.alloc(512 * 400, 7));
  });
  after(() => rm(root, { recursive: true, force: true }));

  for (const pump of ['native', 'js'] as const) {
    it(`56 requests asking timeout=255 from 7 addresses, never acknowledged: not granted, and a machine that is there still gets its file at the cap (--pump ${pump})`, { timeout: 120_000 }, async () => {
      // The server's own retransmission timer, and retries enough that the held transfers outlive the test.
      const srv = await startServe(['tftp', '--root', root, '--listen', '127.0.0.1:0', '--pump', pump, '--timeout-ms', '300', '--retries', '100', '--max-transfers', '50', '--max-transfers-per-client', '8']);
      const attackers: RawClient[] = [];
      try {
        for (let a = 1; a <= 7; a++) for (let p = 0; p < 8; p++) attackers.push(await RawClient.open(`127.0.12.${a}`));
        for (const c of attackers) await c.send(encodeRequest(Opcode.RRQ, 'undionly.kpxe', 'octet', [['blksize', '1024'], ['timeout', '255']]), srv.port);
        await srv.waitFor((l) => l['cap'] === 'global', 'the global cap line');
        // 50 got their OACK, without the timeout they asked for; each is sent again on the server's own 300 ms timer.
        await until(() => attackers.filter((c) => c.pending >= 2).length === 50);
        const answered = attackers.filter((c) => c.pending > 0);
        assert.equal(answered.length, 50);
        for (const c of answered) {
          const first = await c.recv();
          assert.equal(first.packet.opcode, Opcode.OACK);
          assert.deepEqual(first.packet.opcode === Opcode.OACK ? [...first.packet.options] : [], [['blksize', '1024']], 'timeout=255 is left out of the OACK');
        }

        // A PXE ROM that is there asks: it gets its whole file, in place of the oldest request nobody acknowledged.
        const got = await download(srv.port, 'undionly.kpxe', [], 'octet', '127.0.12.99');
        assert.equal(sha256(got.data), sha256(small));
        const evicted = await srv.waitFor((l) => l['cap'] === 'global' && l['evicted'] !== undefined, 'the line saying a transfer was ended for the new one');
        assert.match(evicted.msg, /50 transfers are running, the most allowed at once; the oldest whose client acknowledged nothing within 300 ms is ended to serve a new request/);
        await srv.waitFor((l) => String(l['client']).startsWith('127.0.12.99:') && l['ok'] === true, 'the machine\'s transfer complete');
      } finally {
        await Promise.all(attackers.map((c) => c.close()));
        await srv.stop();
      }
    });
  }

  it('a client that acknowledges each block only after the server sent it again is ended at the longest life of a transfer', { timeout: 120_000 }, async () => {
    const srv = await startServe(['tftp', '--root', root, '--listen', '127.0.0.1:0', '--pump', 'native', '--timeout-ms', '200', '--retries', '5', '--max-transfer-seconds', '1']);
    const slow = await RawClient.open('127.0.12.50');
    try {
      await slow.send(encodeRequest(Opcode.RRQ, 'big.bin', 'octet'), srv.port);
      let acknowledged = 0;
      for (;;) {
        const r = await slow.recv();
        if (r.packet.opcode === Opcode.ERROR) {
          assert.match(r.packet.message, /the transfer ran longer than 1 s, the most one may/);
          break;
        }
        assert.equal(r.packet.opcode, Opcode.DATA);
        const block = r.packet.opcode === Opcode.DATA ? r.packet.block : -1;
        // Only the copy the server sends again is acknowledged: as slow as a client can be and keep the transfer.
        const again = await slow.recv();
        if (again.packet.opcode === Opcode.ERROR) {
          assert.match(again.packet.message, /the transfer ran longer than 1 s/);
          break;
        }
        assert.equal(again.packet.opcode === Opcode.DATA ? again.packet.block : -1, block);
        await slow.send(encodeAck(block), r.rinfo.port);
        acknowledged++;
      }
      assert.ok(acknowledged < 400, 'ended before the file was through');
      const line = await srv.waitFor((l) => String(l['client']).startsWith('127.0.12.50:') && l['ok'] === false, 'the transfer\'s failure line');
      assert.match(String(line['error']), /ran longer than 1 s/);
    } finally {
      await slow.close();
      await srv.stop();
    }
  });
});

describe('the agent\'s HTTP connection caps, held by a flood from 20 addresses, still let a host fetch its script', () => {
  const HOST_IP = '127.0.0.91';
  const HOST_MAC = '02:00:00:00:09:01';
  const lines: Array<Record<string, unknown>> = [];
  let port = 0;
  let dir: string, git: GitServer, agent: Agent;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fsec-http-'));
    const [http, tftp] = [await freeTcpPort(), await freeUdpPort()];
    port = http;
    git = await startGitServer();
    const seed = join(dir, 'seed');
    const hand = `apiVersion: forseti/v1\nkind: Host\nname: hand\nmacs: ['${HOST_MAC}']\nip: ${HOST_IP}\nbmc: {type: manual}\nhardware: {firmware: bios}\nrole: worker\n`;
    await writeTree(seed, { ...(await loopbackLabFiles(dir, { http, tftp })), 'hosts/hand.yaml': hand });
    await createBareRepo(git, 'lab', seed);
    const config = await loopbackAgentConfig(dir, git.repoUrl('lab'), { tftp: false });
    config.serve.http = { maxConnections: 40, maxConnectionsPerClient: 4, maxEventStreams: 32, maxEventStreamsPerClient: 8, headersTimeoutMs: 60_000, requestTimeoutMs: 120_000, idleTimeoutMs: 120_000 };
    agent = new Agent(config, createLogger({ level: 'info', destination: new Writable({ write: (c: Buffer, _e, cb) => void (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) }) }));
    await agent.start();
    await waitForView(`http://127.0.0.1:${port}`, (v) => v.hosts['hand'] !== undefined, 'the lab applied');
  });
  after(async () => {
    await agent?.stop();
    await git?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** One connection from `from`; `head` written at once; resolves once connected, with what the server answers and whether it closed. */
  async function open(from: string, head: string): Promise<{ socket: Socket; answer: () => string; closed: () => boolean }> {
    let answer = '';
    let closed = false;
    const socket = connect({ port, host: '127.0.0.1', localAddress: from });
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('close', () => reject(new Error(`connection from ${from} closed before it was established`)));
    });
    socket.write(head);
    return { socket, answer: () => answer, closed: () => closed };
  }

  /** A whole GET from `from`: its status and body. */
  async function get(from: string, path: string): Promise<{ status: number; body: string }> {
    const c = await open(from, `GET ${path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n`);
    await until(() => c.closed());
    const text = c.answer();
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), body: text.slice(text.indexOf('\r\n\r\n') + 4) };
  }

  it('unfinished request heads: each new connection at the cap closes the oldest one with no request in progress for the grace; the host and an operator are served', { timeout: 120_000 }, async () => {
    const held: Array<Awaited<ReturnType<typeof open>>> = [];
    const pastTheGrace = (): Promise<void> => new Promise((r) => setTimeout(r, DEFAULT_HTTP_LIMITS.headlessGraceMs + 200));
    try {
      // 20 addresses × 4 (the cap per address) = 80 heads that never end, twice the cap in all; the second 40 come
      // once the first have held their places past the grace a head on its way is given.
      for (let a = 1; a <= 10; a++) for (let i = 0; i < 4; i++) held.push(await open(`127.0.14.${a}`, 'GET /v1/status HTTP/1.1\r\nHost: x\r\n'));
      await pastTheGrace();
      for (let a = 11; a <= 20; a++) for (let i = 0; i < 4; i++) held.push(await open(`127.0.14.${a}`, 'GET /v1/status HTTP/1.1\r\nHost: x\r\n'));
      // The second 40 took the places of the first 40 (and of the status poll's idle kept-alive connection, if it
      // was still open): the flood holds no more than the cap, the newest heads are the ones kept.
      await until(() => held.slice(0, 40).every((c) => c.closed()));
      assert.equal(held.slice(40).some((c) => c.closed()), false);
      await pastTheGrace();

      const script = await get(HOST_IP, `/v1/boot/${HOST_MAC.replace(/:/g, '-')}`);
      assert.equal(script.status, 200);
      assert.match(script.body, /^#!ipxe/);
      assert.doesNotMatch(script.body, /served only to its reserved address/);
      assert.equal((await get('127.0.14.99', '/healthz')).status, 200, 'anyone else is served too');
      assert.ok(lines.some((l) => /the oldest with no request in progress made room for a new one/.test(String(l['msg']))));
    } finally {
      for (const c of held) c.socket.destroy();
    }
  });

  it('requests that never finish their body hold the cap: another address gets 503, the host is still served', { timeout: 120_000 }, async () => {
    const held: Array<Awaited<ReturnType<typeof open>>> = [];
    try {
      // Whole heads (the server said 100 Continue, so each is a request in progress), bodies that never come; each
      // answered before the next is opened, so none is still without a whole head when the cap is reached.
      for (let a = 1; a <= 10; a++) {
        for (let i = 0; i < 4; i++) {
          const c = await open(`127.0.15.${a}`, 'POST /v1/phone-home HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n');
          held.push(c);
          await until(() => c.answer() !== '' || c.closed());
        }
      }
      assert.equal(held.every((c) => c.answer().startsWith('HTTP/1.1 100 Continue')), true, 'the flood holds the whole cap');
      assert.equal((await get('127.0.15.99', '/healthz')).status, 503, 'the cap in all holds for other addresses');
      const script = await get(HOST_IP, `/v1/boot/${HOST_MAC.replace(/:/g, '-')}`);
      assert.equal(script.status, 200, 'a host\'s own address is not held to the cap in all');
      assert.match(script.body, /^#!ipxe/);
      assert.equal(held.some((c) => c.closed()), false);
    } finally {
      for (const c of held) c.socket.destroy();
    }
  });
});

describe('/v1/events: clients that do not read hold a bounded amount of the agent\'s memory', () => {
  /** About the status document of 350 hosts; the sequence number first, so a reader finds it at the head. */
  const DOC_BYTES = 512 * 1024;
  const CHANGES = 60;

  /** A StatusStream on a real HTTP server on an ephemeral port, its document numbered by `seq`. */
  async function streamServer(options: Partial<StatusStreamOptions>) {
    const state = { seq: 0 };
    const pad = 'x'.repeat(DOC_BYTES);
    const lines: Array<{ fields: Record<string, unknown>; msg: string }> = [];
    const stream = new StatusStream({
      // Shaped as the status document (the API contract checks every response of this process), padded.
      snapshot: () => JSON.stringify({ seq: state.seq, revision: null, generation: null, hosts: {}, pad }),
      // Pushes happen when the test says so, never on a timer.
      checkMs: 3_600_000,
      heartbeatMs: 3_600_000,
      log: { warn: (fields, msg) => void lines.push({ fields: fields as Record<string, unknown>, msg }) },
      ...options,
    });
    const server = createServer((req, res) => stream.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const sockets: Socket[] = [];
    /** A client of /v1/events from `from`; `reads` false: it never takes a byte from its socket. */
    const client = async (from: string, reads: boolean) => {
      const seen = { last: -1, bytes: 0, closed: false };
      let rest = '';
      const socket = connect({ port, host: '127.0.0.1', localAddress: from });
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => (seen.closed = true));
      const take = (chunk: Buffer): void => {
        seen.bytes += chunk.length;
        rest += chunk.toString('latin1');
        const events = rest.split('\n\n');
        rest = events.pop() ?? '';
        for (const e of events) {
          const seq = /^data: \{"seq":(\d+)/m.exec(e.slice(0, 200))?.[1];
          if (seq !== undefined) seen.last = Number(seq);
        }
      };
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('close', () => reject(new Error(`a stream from ${from} closed before it was established`)));
      });
      socket.write('GET /v1/events HTTP/1.1\r\nHost: agent\r\n\r\n');
      // After pause(), a 'data' listener alone does not start the flow again.
      const read = (): void => void socket.on('data', take).resume();
      if (reads) read();
      else socket.pause();
      return { seen, read };
    };
    /** Changes the document and lets the stream push it. */
    const change = async (): Promise<void> => {
      state.seq++;
      stream.notify();
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
    };
    const close = async (): Promise<void> => {
      for (const s of sockets) s.destroy();
      stream.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    };
    return { stream, state, lines, client, change, close };
  }

  it(`4 clients that never read, ${CHANGES} changes of a 512 KiB document: what the stream holds stays within one document per client; a reader gets the latest, and so does a stalled one once it reads`, { timeout: 120_000 }, async () => {
    const s = await streamServer({ writeTimeoutMs: 600_000 });
    try {
      const stalled: Array<Awaited<ReturnType<typeof s.client>>> = [];
      for (let a = 1; a <= 4; a++) stalled.push(await s.client(`127.0.16.${a}`, false));
      const reader = await s.client('127.0.16.9', true);
      await until(() => s.stream.size === 5);
      let most = 0;
      for (let i = 0; i < CHANGES; i++) {
        await s.change();
        most = Math.max(most, s.stream.buffered);
      }
      // 60 × 512 KiB is 30 MiB per client, far past what the kernel's socket buffers take on loopback: written as it
      // came, the stream would hold tens of MiB for each client that does not read.
      const perClient = DOC_BYTES + 64 * 1024;
      assert.ok(most <= 5 * perClient, `the stream held ${most} bytes at most, over ${5 * perClient}`);
      await until(() => reader.seen.last === CHANGES);
      assert.equal(s.stream.size, 5, 'a client that is only behind is not closed before writeTimeoutMs');
      assert.ok(s.stream.buffered >= 4 * 16 * 1024, 'the clients that do not read are behind (each socket past its high-water mark)');
      assert.ok(s.stream.buffered <= 4 * perClient);

      // A stalled client that starts reading gets what was already in flight, then only the latest document.
      stalled[0]?.read();
      await until(() => stalled[0]?.seen.last === CHANGES);
      assert.ok((stalled[0]?.seen.bytes ?? 0) < (CHANGES / 2) * DOC_BYTES, 'the documents in between were skipped');
    } finally {
      await s.close();
    }
  });

  it('with no change at all, a stream ends at its lifetime: a client that reads nothing (its socket still takes the heartbeats) holds it no longer than a reader', { timeout: 120_000 }, async () => {
    const s = await streamServer({ lifetimeMs: 500, heartbeatMs: 50 });
    try {
      const silent = await s.client('127.0.18.1', false);
      const reader = await s.client('127.0.18.2', true);
      await until(() => s.stream.size === 2);
      await until(() => s.stream.size === 0 && reader.seen.closed);
      assert.equal(reader.seen.last, 0, 'the reader had the document before the end');
      silent.read();
      await until(() => silent.seen.closed);
    } finally {
      await s.close();
    }
  });

  it('a client that reads nothing of what was written within writeTimeoutMs is closed (its socket\'s idle timeout is not off for good), one log line for several', { timeout: 120_000 }, async () => {
    const s = await streamServer({ writeTimeoutMs: 500 });
    try {
      const stalled: Array<Awaited<ReturnType<typeof s.client>>> = [];
      for (let a = 1; a <= 3; a++) stalled.push(await s.client(`127.0.17.${a}`, false));
      await until(() => s.stream.size === 3);
      // Enough to fill the sockets' buffers: from then on a write waits for a client that does not come.
      for (let i = 0; i < CHANGES; i++) await s.change();
      await until(() => s.stream.size === 0);
      // Its socket is closed: a client that reads again finds the end of the stream after what was in flight.
      stalled[0]?.read();
      await until(() => stalled[0]?.seen.closed === true);
      const closedLines = s.lines.filter((l) => /event stream closed: its client read nothing/.test(l.msg));
      assert.equal(closedLines.length, 1, 'throttled: one line for three streams closed');
      assert.equal(closedLines[0]?.fields['writeTimeoutMs'], 500);
      // The stream has room again.
      const next = await s.client('127.0.17.9', true);
      await until(() => next.seen.last === CHANGES);
    } finally {
      await s.close();
    }
  });
});
