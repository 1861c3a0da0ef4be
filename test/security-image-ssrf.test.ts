// Red-team finding 16: an image URL was a blind SSRF with an oracle: the agent fetched any http(s) address a commit
// named (its own loopback services, the BMC network), followed redirects anywhere, and the rejection on the status
// branch said what answered (HTTP 401, ECONNREFUSED). Now the operator's images.httpAllow decides; without it,
// loopback, link-local and the agent's own addresses are refused, by address literal, by name (resolved once, every
// address checked, the connection made to those) and by redirect; a refusal says "not allowed" and nothing else.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadAgentConfig } from '../src/agent/config.ts';
import { createLogger } from '../src/log.ts';
import { ImageCache, ImageUrlRefusedError } from '../src/render/image-cache.ts';
import { HttpAllowList, httpAllowProblem } from '../src/render/image-http-allow.ts';
import { DEFAULT_IMAGE_POLICY } from '../src/render/image-limits.ts';

const log = createLogger({ level: 'silent' });
const BODY = 'kernel bytes';
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const NOT_ALLOWED = /^image probe: \S+ refused: not allowed \(images\.httpAllow of the agent config\)$/;

interface Recorder {
  server: Server;
  port: number;
  paths: string[];
}

/** An HTTP server on `address` that records every request: /vmlinuz answers, /redirect?to=… redirects, /admin is 401. */
async function recorder(address: string): Promise<Recorder> {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname.endsWith('/vmlinuz')) res.end(BODY);
    else if (url.pathname.endsWith('/redirect')) res.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end();
    else if (url.pathname === '/admin') res.writeHead(401).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, address, r));
  return { server, port: (server.address() as AddressInfo).port, paths };
}

let dir = '';
let inside: Recorder;
let other: Recorder;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forseti-ssrf-'));
  inside = await recorder('127.0.0.1');
  other = await recorder('127.0.0.2');
});
after(async () => {
  inside.server.close();
  other.server.close();
  await rm(dir, { recursive: true, force: true });
});

const cache = (httpAllow?: string[]): ImageCache =>
  new ImageCache(join(dir, `cache-${Math.random().toString(36).slice(2)}`), log, { ...DEFAULT_IMAGE_POLICY, ...(httpAllow ? { httpAllow } : {}) });

async function refusal(c: ImageCache, url: string): Promise<string> {
  const err = await c.ensureFile('probe', { url, sha256: sha(BODY) }).then(
    () => assert.fail(`${url} was fetched`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ImageUrlRefusedError, String(err));
  return err.message;
}

describe('without images.httpAllow', () => {
  it('loopback, link-local, unspecified and the agent\'s own addresses are refused without a request, all alike', async () => {
    const c = cache();
    const own = Object.values(networkInterfaces()).flatMap((l) => l ?? []).find((i) => !i.internal && i.family === 'IPv4')?.address;
    const urls = [
      `http://127.0.0.1:${inside.port}/vmlinuz`,
      `http://127.0.0.1:${inside.port}/admin`,
      'http://127.0.0.1:1/closed',
      `http://127.0.0.2:${other.port}/vmlinuz`,
      `http://[::1]:${inside.port}/vmlinuz`,
      `http://[::ffff:127.0.0.1]:${inside.port}/vmlinuz`,
      'http://169.254.169.254/latest/meta-data/',
      'http://0.0.0.0:1/',
      ...(own ? [`http://${own}:1/`] : []),
    ];
    for (const url of urls) assert.match(await refusal(c, url), NOT_ALLOWED, url);
    assert.deepEqual([inside.paths, other.paths], [[], []], 'nothing reached the servers');
  });

  it('a name that resolves to loopback is refused at the connection (the lookup the connection uses checks it)', async () => {
    assert.match(await refusal(cache(), `http://localhost:${inside.port}/vmlinuz`), NOT_ALLOWED);
    assert.deepEqual(inside.paths, []);
  });
});

describe('with images.httpAllow', () => {
  it('an address entry opens that address, and the image is fetched', async () => {
    const c = cache(['127.0.0.1']);
    await c.ensureFile('probe', { url: `http://127.0.0.1:${inside.port}/vmlinuz`, sha256: sha(BODY) });
    assert.ok(await c.has(sha(BODY)));
    assert.match(await refusal(cache(['127.0.0.1']), `http://127.0.0.2:${other.port}/vmlinuz`), NOT_ALLOWED, 'another address stays refused');
    assert.deepEqual(other.paths, []);
  });

  it('a host name or prefix entry never opens a guarded address; a network entry does', async () => {
    assert.match(await refusal(cache(['localhost']), `http://localhost:${inside.port}/vmlinuz`), NOT_ALLOWED);
    assert.match(await refusal(cache([`http://127.0.0.1:${inside.port}/`]), `http://127.0.0.1:${inside.port}/vmlinuz`), NOT_ALLOWED);
    const c = cache(['localhost', '127.0.0.0/8']);
    await c.ensureFile('probe', { url: `http://localhost:${inside.port}/vmlinuz?n=1`, sha256: sha(BODY) });
    assert.ok(await c.has(sha(BODY)));
  });

  it('redirects are followed only within what the list allows; a refused hop reads like any refusal', async () => {
    const allow = [`http://127.0.0.1:${inside.port}/ok/`, '127.0.0.1'];
    const inList = cache(allow);
    await inList.ensureFile('probe', { url: `http://127.0.0.1:${inside.port}/ok/redirect?to=/ok/vmlinuz`, sha256: sha(BODY) });
    assert.ok(await inList.has(sha(BODY)));
    const before = other.paths.length;
    const off = `http://127.0.0.1:${inside.port}/ok/redirect?to=${encodeURIComponent(`http://127.0.0.2:${other.port}/vmlinuz`)}`;
    const message = await refusal(cache(allow), off);
    assert.equal(message, `image probe: ${off} refused: not allowed (images.httpAllow of the agent config)`, 'the URL the lab wrote, nothing the server said');
    assert.equal(other.paths.length, before, 'the redirect target got no request');
  });
});

describe('the allow-list and its entries', () => {
  it('checks addresses as the connection sees them', () => {
    const none = new HttpAllowList([], ['192.0.2.10']);
    assert.deepEqual(['10.1.2.3', '192.0.2.11', '2001:db8::1'].map((a) => none.allows(a, false)), [true, true, true]);
    assert.deepEqual(['127.0.0.1', '169.254.1.1', '::1', 'fe80::1', '::ffff:127.0.0.1', '192.0.2.10', '0.0.0.0', '224.0.0.251'].map((a) => none.allows(a, false)), Array(8).fill(false));
    const listed = new HttpAllowList(['mirror.lan', '10.5.0.0/16'], []);
    assert.equal(listed.allows('10.5.3.4', false), true, 'in a listed network');
    assert.equal(listed.allows('10.6.0.1', false), false, 'not named, not in a network');
    assert.equal(listed.allows('10.6.0.1', true), true, 'reached through a listed name');
    assert.equal(listed.allows('127.0.0.1', true), false, 'a listed name never opens loopback');
    assert.equal(listed.namesUrl(new URL('http://MIRROR.lan./x')), true);
  });

  it('the agent config takes prefixes, names, addresses and networks, and refuses anything else by entry', async () => {
    for (const entry of ['https://mirror.lan/images/', 'mirror.lan', '10.0.5.7', '10.0.5.0/24', 'fd00::/8']) assert.equal(httpAllowProblem(entry), null, entry);
    for (const entry of ['10.0.5.0/33', 'ftp://x/', 'mirror lan', '*.lan', '10.0.0.0/8/1']) assert.ok(httpAllowProblem(entry), entry);
    const file = join(dir, 'agent.yaml');
    await writeFile(file, "lab: {url: 'http://127.0.0.1:1/lab.git'}\nimages: {httpAllow: [mirror.lan, 10.0.5.0/24]}\n");
    assert.deepEqual((await loadAgentConfig(file)).images?.httpAllow, ['mirror.lan', '10.0.5.0/24']);
    await writeFile(file, "lab: {url: 'http://127.0.0.1:1/lab.git'}\nimages: {httpAllow: ['10.0.5.0/33']}\n");
    await assert.rejects(loadAgentConfig(file), /images\.httpAllow: "10\.0\.5\.0\/33" is not an address or a network/);
  });
});
