// What a client can do to the agent's HTTP server, and what a port held by someone else does to the agent:
//   - malformed requests to every agent route get a 4xx and exactly one log line, without a stack;
//   - a handler that throws: 500 (or its 4xx), no stack to the client, one log line;
//   - connection caps (all clients, one client) and the /v1/events caps (in all, per address): refusals and one log line, counted by
//     connections, never by time; a slow request head gets 408;
//   - the real agent process whose HTTP port is held exits 1 naming port and service, having acted on nothing;
//   - a later commit whose site needs a held port (HTTP or TFTP) is rejected, the last good one keeps serving on its
//     ports, no host of the new commit is acted on; once the port is free the commit applies.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_IMAGE_POLICY } from '../src/render/image-limits.ts';
import { Agent } from '../src/agent/agent.ts';
import { createLogger } from '../src/log.ts';
import { Metrics } from '../src/observe/metrics.ts';
import { createBootHttpServer, listen } from '../src/serve/boot-http.ts';
import { createHttpServer, HttpError, type HttpLimits } from '../src/serve/http/http-server.ts';
import { LogThrottle } from '../src/serve/http/log-throttle.ts';
import { createWebhookRoute } from '../src/source/webhook.ts';
import { startAgent } from './e2e/agent-process.ts';
import { waitForStatus } from './e2e/status-branch.ts';
import { addNamespace, deleteNamespace, ip, nsNames, REPO_ROOT } from './fixtures/dhcp/netns.ts';
import { freeTcpPort, freeUdpPort } from './fixtures/free-port.ts';
import { commitFiles, createBareRepo, startGitServer, type GitServer } from './fixtures/git-server.ts';
import { fetchStatus, loopbackAgentConfig, loopbackLabFiles, waitForView, writeTree } from './fixtures/loopback-lab.ts';
import { startRedfishBmc, type RedfishBmc } from './fixtures/redfish/bmc.ts';
import { syntheticBmc } from './fixtures/redfish/resources.ts';
import { statusOnlyBackend } from './fixtures/status-only-backend.ts';
// Every agent response these tests see is checked against schemas/openapi.json.
import './fixtures/api-contract.ts';

interface Answer {
  status: number;
  head: string;
  body: string;
}

/** Sends `text` as is on a new connection (from `localAddress`) and reads one response; keeps the socket. */
function exchange(port: number, text: string, localAddress = '127.0.0.1'): Promise<Answer & { socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress }, () => socket.write(text));
    let data = Buffer.alloc(0);
    const done = (): boolean => {
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const head = data.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? -1);
      const body = data.subarray(end + 4);
      if (length >= 0 && body.length < length) return false;
      if (length < 0 && !socket.readableEnded && !/text\/event-stream/i.test(head)) return false;
      socket.removeAllListeners('data');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body: body.toString('utf8'), socket });
      return true;
    };
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      done();
    });
    socket.on('end', () => {
      if (!done()) reject(new Error(`connection closed before a whole response: ${JSON.stringify(data.toString('latin1').slice(0, 200))}`));
    });
    socket.on('error', reject);
  });
}

async function request(port: number, text: string, localAddress?: string): Promise<Answer> {
  const { socket, ...answer } = await exchange(port, text, localAddress);
  socket.destroy();
  return answer;
}

/** A logger whose lines (parsed) land in `lines`. */
function capturingLog(lines: Array<Record<string, unknown>>) {
  return createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => void (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) }) });
}

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: agent\r\n\r\n`;
const hasStack = (line: Record<string, unknown>): boolean => /\n\s+at /.test(JSON.stringify(line).replace(/\\n/g, '\n')) || JSON.stringify(line).includes('"stack"');

describe('malformed requests to every agent route', () => {
  const routes = [
    '/boot.ipxe', '/v1/boot/02-00-00-00-00-01', `/images/${'a'.repeat(64)}/vmlinuz`, '/ipxe.efi', '/v1/hosts/h1/config/user-data',
    '/v1/phone-home', '/v1/webhook', '/v1/status', '/v1/events', '/dashboard', '/dashboard/app.js', '/metrics', '/healthz', '/readyz',
  ];
  const malformed: Array<[string, (path: string) => string, number]> = [
    ['a malformed percent-escape', (p) => get(`${p}%E0%A4%A`), 400],
    ['a malformed escape in an absolute-form target', (p) => get(`http://agent${p}%zz`), 400],
    ['a path starting with //', (p) => get(`/${p}`), 400],
    ['a method nobody knows', (p) => `FROB ${p} HTTP/1.1\r\nHost: agent\r\n\r\n`, 405],
    ['a method the agent does not serve', (p) => `PUT ${p} HTTP/1.1\r\nHost: agent\r\nContent-Length: 0\r\n\r\n`, 405],
    ['a request line with a space in the target', (p) => `GET ${p} x HTTP/1.1\r\nHost: agent\r\n\r\n`, 400],
    ['headers over the size limit', (p) => `GET ${p} HTTP/1.1\r\nHost: agent\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`, 431],
    ['a declared body over the limit', (p) => `POST ${p} HTTP/1.1\r\nHost: agent\r\nContent-Length: 10485760\r\n\r\n`, 413],
    ['conflicting Content-Length and Transfer-Encoding', (p) => `POST ${p} HTTP/1.1\r\nHost: agent\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`, 400],
  ];

  for (const route of routes) {
    it(route, async () => {
      const lines: Array<Record<string, unknown>> = [];
      const log = capturingLog(lines);
      const webhook = createWebhookRoute(() => ({ status: 202, message: 'ok' }), { log });
      const server = createBootHttpServer(statusOnlyBackend({ statusJson: () => ({ revision: null, generation: null, hosts: {} }) }), log, { metrics: new Metrics(), webhook: { path: '/v1/webhook', route: webhook } });
      const { port } = await listen(server, '127.0.0.1', 0);
      try {
        for (const [what, text, want] of malformed) {
          // The webhook reads its body against its own limit (tested in webhook.test.ts), so an unsent body would wait.
          if (route === '/v1/webhook' && want === 413) continue;
          const before = lines.length;
          const answer = await request(port, text(route));
          assert.equal(answer.status, want, `${what}: ${answer.head}`);
          assert.doesNotMatch(answer.body, /\n\s+at |Error:/, `${what}: the client sees no stack`);
          const added = lines.slice(before);
          assert.equal(added.length, 1, `${what}: exactly one log line, got ${JSON.stringify(added)}`);
          assert.ok(!hasStack(added[0] ?? {}), `${what}: no stack in ${JSON.stringify(added[0])}`);
          assert.equal(added[0]?.['status'], want);
        }
        // A CONNECT is refused the same way (Node would otherwise drop it without a word).
        const before = lines.length;
        assert.equal((await request(port, `CONNECT agent:443 HTTP/1.1\r\nHost: agent:443\r\n\r\n`)).status, 405);
        assert.equal(lines.length - before, 1);
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });
  }
});

describe('a handler that throws', () => {
  let server: Server;
  let port = 0;
  const lines: Array<Record<string, unknown>> = [];

  before(async () => {
    const handler = (req: IncomingMessage, res: ServerResponse): void | Promise<void> => {
      switch (req.url) {
        case '/sync':
          throw new Error('a bug, synchronously');
        case '/async':
          return Promise.reject(new Error('a bug, later'));
        case '/uri':
          decodeURIComponent('%E0%A4%A');
          return;
        case '/too-big':
          throw new HttpError(413, 'body over the limit of this route', { Connection: 'close' });
        case '/midway':
          res.writeHead(200, { 'Content-Length': 10 });
          res.write('12345');
          throw new Error('failed halfway');
        default:
          res.end('ok\n');
      }
    };
    server = createHttpServer(handler, { log: capturingLog(lines) });
    port = (await listen(server, '127.0.0.1', 0)).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  for (const [path, want] of [['/sync', 500], ['/async', 500], ['/uri', 400], ['/too-big', 413]] as const) {
    it(`${path}: ${want}, no stack to the client, one log line`, async () => {
      const before = lines.length;
      const answer = await request(port, get(path));
      assert.equal(answer.status, want);
      assert.doesNotMatch(answer.body, /\n\s+at |bug|Error/);
      assert.equal(lines.length - before, 1);
      const line = lines.at(-1) ?? {};
      if (want < 500) assert.ok(!hasStack(line), JSON.stringify(line));
      else assert.equal(line['msg'], 'http handler failed');
    });
  }

  it('after the headers went out: the connection is cut, one log line', async () => {
    const before = lines.length;
    await assert.rejects(request(port, get('/midway')));
    assert.equal(lines.length - before, 1);
  });
});

describe('caps and timeouts', () => {
  it('log throttle: N lines per interval, then counted and told in the next line', () => {
    const seen: Array<Record<string, unknown>> = [];
    let now = 0;
    const throttle = new LogThrottle({ warn: (f) => void seen.push(f as Record<string, unknown>) }, { intervalMs: 1000, perInterval: 2, clock: () => now });
    for (let i = 0; i < 5; i++) throttle.warn({ i }, 'x');
    assert.deepEqual(seen, [{ i: 0 }, { i: 1, quietSeconds: 1 }]);
    now = 1000;
    throttle.warn({ i: 5 }, 'x');
    assert.deepEqual(seen.at(-1), { i: 5, notLogged: 3 });
  });

  async function capped(limits: Partial<HttpLimits>, maxEventStreams?: number, maxEventStreamsPerClient?: number) {
    const lines: Array<Record<string, unknown>> = [];
    const streams = { ...(maxEventStreams ? { maxEventStreams } : {}), ...(maxEventStreamsPerClient ? { maxEventStreamsPerClient } : {}) };
    const server = createBootHttpServer(statusOnlyBackend({ statusJson: () => ({ revision: null, generation: null, hosts: {} }) }), capturingLog(lines), { limits, ...streams });
    const { port } = await listen(server, '127.0.0.1', 0);
    return { lines, port, server, close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }) };
  }

  /** Retries `attempt` a bounded number of times until it gives `want` (the server learns of a close a moment later). */
  async function eventually(attempt: () => Promise<number>, want: number): Promise<number> {
    let got = 0;
    for (let i = 0; i < 100 && got !== want; i++) {
      got = await attempt();
      if (got !== want) await new Promise((r) => setTimeout(r, 20));
    }
    return got;
  }

  it('connections per client and in all: 503 over either cap, one log line per cap and interval, room again once one closes', async () => {
    // No grace for a connection with no request in progress: the idle one below makes room at once.
    const { lines, port, close } = await capped({ maxConnectionsPerClient: 2, maxConnections: 3, headlessGraceMs: 0 }, 8);
    const held: Socket[] = [];
    try {
      // Event streams: requests in progress, which the cap in all never closes to make room.
      const keep = async (from: string): Promise<number> => {
        const { socket, status } = await exchange(port, get('/v1/events'), from);
        held.push(socket);
        return status;
      };
      assert.deepEqual([await keep('127.0.0.1'), await keep('127.0.0.1')], [200, 200]);
      const refused = [await request(port, get('/healthz'), '127.0.0.1'), await request(port, get('/healthz'), '127.0.0.1')];
      assert.deepEqual(refused.map((a) => a.status), [503, 503]);
      assert.match(refused[0]?.head ?? '', /retry-after: 5/i);
      const perClient = lines.filter((l) => /connection refused.*one client: 2/.test(String(l['msg'])));
      assert.equal(perClient.length, 1, 'one line for two refusals');
      assert.equal(await keep('127.0.0.2'), 200);
      assert.equal((await request(port, get('/healthz'), '127.0.0.3')).status, 503);
      assert.equal(lines.filter((l) => /connection refused.*all clients: 3/.test(String(l['msg']))).length, 1);
      held.shift()?.destroy();
      assert.equal(await eventually(async () => (await request(port, get('/healthz'), '127.0.0.1')).status, 200), 200);
      // A connection kept alive with no request in progress is what makes room at the cap in all.
      const idle = await exchange(port, get('/healthz'), '127.0.0.4');
      held.push(idle.socket);
      const idleClosed = new Promise<void>((resolve) => idle.socket.once('close', () => resolve()));
      assert.equal((await request(port, get('/healthz'), '127.0.0.5')).status, 200);
      await idleClosed;
      assert.equal(lines.filter((l) => /the oldest with no request in progress made room/.test(String(l['msg']))).length, 1);
    } finally {
      for (const s of held) s.destroy();
      await close();
    }
  });

  it('a storm of new connections at the cap in all: each gets an answer, none is closed to make room for the next', async () => {
    // Connections arriving together each send their head at once; before the grace, none may be taken for a flood's.
    const { port, close } = await capped({ maxConnections: 4, headlessGraceMs: 60_000 }, 8);
    const held: Socket[] = [];
    try {
      for (const from of ['127.0.0.1', '127.0.0.2']) {
        const { socket, status } = await exchange(port, get('/v1/events'), from);
        held.push(socket);
        assert.equal(status, 200);
      }
      const storm = await Promise.allSettled(Array.from({ length: 24 }, (_, i) => request(port, get('/healthz'), `127.0.1.${i + 1}`)));
      const unanswered = storm.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
      assert.deepEqual(unanswered, [], 'every connection of the storm is answered');
      const statuses = storm.map((r) => (r.status === 'fulfilled' ? r.value.status : 0));
      assert.ok(statuses.every((s) => s === 200 || s === 503), `200 or 503 each: ${statuses.join(' ')}`);
    } finally {
      for (const s of held) s.destroy();
      await close();
    }
  });

  it('/v1/events streams: one over the cap gets 503 and one log line; a closed stream makes room', async () => {
    const { lines, port, close } = await capped({}, 1);
    try {
      const first = await exchange(port, get('/v1/events'));
      assert.equal(first.status, 200);
      const second = [await request(port, get('/v1/events')), await request(port, get('/v1/events'))];
      assert.deepEqual(second.map((a) => a.status), [503, 503]);
      assert.equal(lines.filter((l) => /event stream refused/.test(String(l['msg']))).length, 1);
      first.socket.destroy();
      const again = async (): Promise<number> => {
        const { socket, status } = await exchange(port, get('/v1/events'));
        socket.destroy();
        return status;
      };
      assert.equal(await eventually(again, 200), 200);
    } finally {
      await close();
    }
  });

  it('/v1/events streams from one address: one over its cap gets 503, another address is served', async () => {
    const { lines, port, close } = await capped({}, 8, 2);
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const { socket, status } = await exchange(port, get('/v1/events'), '127.0.0.1');
        held.push(socket);
        assert.equal(status, 200);
      }
      assert.equal((await request(port, get('/v1/events'), '127.0.0.1')).status, 503);
      assert.equal(lines.filter((l) => /event stream refused.*one client: 2/.test(String(l['msg']))).length, 1);
      const other = await exchange(port, get('/v1/events'), '127.0.0.2');
      held.push(other.socket);
      assert.equal(other.status, 200);
    } finally {
      for (const s of held) s.destroy();
      await close();
    }
  });

  it('a request head that does not finish in time gets 408 and one log line', async () => {
    const { lines, port, close } = await capped({ headersTimeoutMs: 300, requestTimeoutMs: 600 });
    try {
      const answer = await request(port, 'GET /healthz HTTP/1.1\r\nHost: agent\r\nX-Slow: ');
      assert.equal(answer.status, 408);
      assert.equal(lines.filter((l) => l['status'] === 408).length, 1);
    } finally {
      await close();
    }
  });
});

describe('ports the agent cannot bind', () => {
  let dir = '';
  let git: GitServer;
  let bmc: RedfishBmc;
  const holders: Array<TcpServer | UdpSocket> = [];

  const holdTcp = async (): Promise<number> => {
    const server = createTcpServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    holders.push(server);
    return (server.address() as AddressInfo).port;
  };
  const holdUdp = async (): Promise<number> => {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    holders.push(socket);
    return socket.address().port;
  };
  const release = (): Promise<void[]> =>
    Promise.all(holders.splice(0).map((h) => new Promise<void>((resolve) => ('listen' in h ? h.close(() => resolve()) : h.close(() => resolve())))));
  const redfishHost = (name: string, n: number): string =>
    `apiVersion: forseti/v1\nkind: Host\nname: ${name}\nmacs: ['02:00:00:00:0b:0${n}']\nip: 127.0.0.${80 + n}\n` +
    `bmc: {type: redfish, address: 127.0.0.1, port: ${bmc.port}, credential: vlab-bmc, tls: {insecure: true}}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: worker\n`;
  const manualHost = 'apiVersion: forseti/v1\nkind: Host\nname: hand\nmacs: [\'02:00:00:00:0b:01\']\nip: 127.0.0.81\nbmc: {type: manual}\nhardware: {memoryGiB: 4, disks: [{sizeGB: 10}]}\nrole: worker\n';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'forseti-ports-'));
    git = await startGitServer();
    const { selfSignedCert } = await import('./fixtures/redfish/certs.ts');
    const cert = selfSignedCert('IP:127.0.0.1');
    bmc = await startRedfishBmc({ resources: syntheticBmc(), tls: { key: cert.key, cert: cert.cert }, username: 'admin', password: 'vlabpass' });
  });
  after(async () => {
    await release();
    await bmc?.close();
    await git?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the agent process whose HTTP port is held exits 1 naming port and service, and acts on no host', { timeout: 120_000 }, async () => {
    const held = await holdTcp();
    const seed = join(dir, 'seed-process');
    await writeTree(seed, { ...(await loopbackLabFiles(dir, { http: held, tftp: await freeUdpPort() })), 'hosts/node-1.yaml': redfishHost('node-1', 2) });
    await createBareRepo(git, 'lab-process', seed);
    const workDir = join(dir, 'process');
    const agent = await startAgent({ workDir, labUrl: git.repoUrl('lab-process'), extraConfig: `serve: {bindAddress: 127.0.0.1, dhcp: false, tftp: false}\nimages: {fileRoots: [${join(dir, 'mirror')}]}\n` });
    try {
      const code = await new Promise<number | null>((resolve) => {
        if (agent.child.exitCode !== null) resolve(agent.child.exitCode);
        else agent.child.once('exit', (c) => resolve(c));
      });
      const lines = agent.logLines();
      const stderr = lines.filter((l) => l['stream'] === 'stderr').map((l) => String(l['msg'])).join('');
      assert.equal(code, 1, JSON.stringify(lines.slice(-10)));
      assert.match(stderr, new RegExp(`cannot start the agent's HTTP service on 127\\.0\\.0\\.1:${held}: the port is in use by another program \\(EADDRINUSE\\)`));
      assert.ok(lines.some((l) => l['level'] === 60 && l['port'] === held && l['service'] === 'http'), 'a fatal log line names port and service');
      assert.ok(!lines.some((l) => l['msg'] === 'commit applied'), 'no commit was applied');
      assert.equal(bmc.requests.length, 0, 'no BMC was touched');
    } finally {
      await agent.stop();
      await release();
    }
  });

  it('a later commit whose site needs a held port is rejected, the last good one keeps serving and no new host is acted on', { timeout: 180_000 }, async () => {
    const [httpA, tftpA] = [await freeTcpPort(), await freeUdpPort()];
    const seed = join(dir, 'seed-later');
    await writeTree(seed, { ...(await loopbackLabFiles(dir, { http: httpA, tftp: tftpA })), 'hosts/hand.yaml': manualHost });
    await createBareRepo(git, 'lab-later', seed);
    await mkdir(join(dir, 'later'));
    const config = await loopbackAgentConfig(join(dir, 'later'), git.repoUrl('lab-later'), { tftp: true });
    config.images = { ...DEFAULT_IMAGE_POLICY, fileRoots: [join(dir, 'mirror')] };
    const lines: Array<Record<string, unknown>> = [];
    const agent = new Agent(config, capturingLog(lines));
    const baseA = `http://127.0.0.1:${httpA}`;
    await agent.start();
    try {
      const first = agent.current?.revision ?? '';
      assert.match(first, /^[0-9a-f]{40}$/);
      const siteWith = async (http: number, tftp: number): Promise<string> => (await loopbackLabFiles(dir, { http, tftp }))['site.yaml'] ?? '';

      // A new HTTP port that is free and a TFTP port that is held: the HTTP server started for it closes again.
      const [httpC, tftpHeld] = [await freeTcpPort(), await holdUdp()];
      const second = await commitFiles(git, 'lab-later', 'main', { 'site.yaml': await siteWith(httpC, tftpHeld), 'hosts/node-2.yaml': redfishHost('node-2', 2) }, 'tftp on a held port');
      await agent.poll();
      let view = await waitForView(baseA, (v) => v.site?.rejected?.revision === second, 'the second commit rejected');
      assert.match(view.site?.rejected?.errors[0] ?? '', new RegExp(`TFTP service on 127\\.0\\.0\\.1:${tftpHeld}: the port is in use`));
      assert.equal(view.revision, first);
      await assert.rejects(fetch(`http://127.0.0.1:${httpC}/healthz`), 'the HTTP server started for the refused commit is closed');

      // The HTTP port held, the TFTP port back to the served one.
      await release();
      const httpHeld = await holdTcp();
      const third = await commitFiles(git, 'lab-later', 'main', { 'site.yaml': await siteWith(httpHeld, tftpA) }, 'http on a held port');
      await agent.poll();
      await agent.poll(); // applied again at each poll while refused: still refused, still nothing acted on
      view = await waitForView(baseA, (v) => v.site?.rejected?.revision === third, 'the third commit rejected');
      assert.match(view.site?.rejected?.errors[0] ?? '', new RegExp(`HTTP service on 127\\.0\\.0\\.1:${httpHeld}: the port is in use by another program`));
      assert.deepEqual([view.revision, agent.current?.revision, Object.keys(view.hosts)], [first, first, ['hand']]);
      assert.equal(bmc.requests.length, 0, 'node-2 of the refused commits was never acted on');
      assert.ok(!lines.some((l) => l['msg'] === 'commit applied' && l['revision'] !== first));
      const branch = await waitForStatus(git, 'lab-later', (s) => s.site?.rejected?.revision === third, 60_000, 'the rejection on the status branch');
      assert.match(branch.site?.rejected?.errors[0] ?? '', /HTTP service .* in use/);

      // Once the port is free the same commit applies, served on its new port; the old port is closed.
      await release();
      await agent.poll();
      const applied = await waitForView(`http://127.0.0.1:${httpHeld}`, (v) => v.revision === third, 'the third commit applied on its port');
      assert.equal(applied.site?.rejected ?? null, null);
      await assert.rejects(fetchStatus(baseA));
    } finally {
      await agent.stop();
    }
  });

  it('a DHCP mode whose port is held (proxy needs 4011) is refused and the DHCP server it was to replace serves again', { timeout: 60_000 }, async () => {
    // In a namespace of its own (port 67 is no test's to take on this machine), with the template site's interface.
    const { rebind: ns } = nsNames('rebind');
    addNamespace(ns);
    try {
      ip('-n', ns, 'link', 'add', 'eno2', 'type', 'veth', 'peer', 'name', 'eno2-peer');
      ip('-n', ns, 'addr', 'add', '10.77.0.5/24', 'dev', 'eno2');
      for (const dev of ['eno2', 'eno2-peer']) ip('-n', ns, 'link', 'set', dev, 'up');
      const script = join(REPO_ROOT, 'test/fixtures/dhcp-rebind-in-netns.ts');
      const out = await new Promise<string>((resolve, reject) =>
        execFile('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', script], { cwd: REPO_ROOT, timeout: 50_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
      );
      const result = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { error: Record<string, unknown> | null; port67HeldAfterRefusal: boolean; health: number; port67FreeAfterStop: boolean };
      assert.deepEqual([result.error?.['name'], result.error?.['service'], result.error?.['port'], result.error?.['code']], ['ServiceBindError', 'dhcp', 4011, 'EADDRINUSE'], JSON.stringify(result));
      assert.match(String(result.error?.['message']), /cannot start the agent's DHCP service on 0\.0\.0\.0:4011: the port is in use by another program/);
      assert.equal(result.port67HeldAfterRefusal, true, 'the full-mode DHCP server holds port 67 again');
      assert.equal(result.health, 200, 'HTTP kept serving');
      assert.equal(result.port67FreeAfterStop, true, 'stop() releases it');
    } finally {
      deleteNamespace(ns);
    }
  });
});
