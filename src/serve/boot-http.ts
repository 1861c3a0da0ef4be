import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.ts';
import { readBody, sendFile, sendText } from './http/send-file.ts';

/** What the boot HTTP service asks of the agent. Small on purpose: the HTTP layer knows no lab model. */
export interface BootBackend {
  entryScript(): string;
  /** The iPXE script for a machine asking with this MAC (lower-case, colon form). */
  scriptFor(mac: string, remoteIp: string): { script: string; host?: string; answer: string };
  /** Disk path of a cached image file, or null if not in the current generation. */
  imagePath(sha256: string, remoteIp: string): string | null;
  config(host: string, name: string, token: string): { status: 'ok'; content: string } | { status: 'forbidden' | 'missing' };
  phoneHome(token: string, fields: Record<string, string>, remoteIp: string): { status: number; message: string };
  statusJson(): unknown;
}

const MAC_IN_PATH = /^\/v1\/boot\/([0-9a-fA-F]{2}(?:[-:][0-9a-fA-F]{2}){5})$/;
const IMAGE_PATH = /^\/images\/([0-9a-f]{64})\/[^/]+$/;
const CONFIG_PATH = /^\/v1\/hosts\/([a-z0-9-]+)\/config\/([^/]+)$/;

export function createBootHttpServer(backend: BootBackend, log: Logger): Server {
  const server = createServer((req, res) => {
    handle(req, res, backend, log).catch((err: unknown) => {
      log.error({ err, url: redactUrl(req.url ?? '') }, 'http handler failed');
      if (!res.headersSent) sendText(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  return server;
}

async function handle(req: IncomingMessage, res: ServerResponse, backend: BootBackend, log: Logger): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://agent');
  const remote = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const path = url.pathname;
  const isRead = req.method === 'GET' || req.method === 'HEAD';

  if (isRead && path === '/boot.ipxe') return sendText(res, 200, backend.entryScript());

  const mac = MAC_IN_PATH.exec(path);
  if (isRead && mac?.[1]) {
    const answer = backend.scriptFor(mac[1].replace(/-/g, ':').toLowerCase(), remote);
    log.info({ mac: mac[1], host: answer.host, answer: answer.answer, remote }, 'ipxe script served');
    return sendText(res, 200, answer.script);
  }

  const image = IMAGE_PATH.exec(path);
  if (isRead && image?.[1]) {
    const file = backend.imagePath(image[1], remote);
    if (file && (await sendFile(req, res, file))) return;
    return sendText(res, 404, 'no such image file\n');
  }

  const config = CONFIG_PATH.exec(path);
  if (isRead && config?.[1] && config[2]) {
    const result = backend.config(config[1], decodeURIComponent(config[2]), url.searchParams.get('token') ?? '');
    if (result.status === 'ok') return sendText(res, 200, result.content, 'application/yaml');
    log.warn({ host: config[1], remote, status: result.status }, 'config request refused');
    return sendText(res, result.status === 'forbidden' ? 403 : 404, `${result.status}\n`);
  }

  if (req.method === 'POST' && path === '/v1/phone-home') {
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7).trim() : (url.searchParams.get('token') ?? '');
    const body = await readBody(req);
    const fields = Object.fromEntries(new URLSearchParams(body));
    const result = backend.phoneHome(token, fields, remote);
    return sendText(res, result.status, `${result.message}\n`);
  }

  if (isRead && path === '/v1/status') return sendText(res, 200, `${JSON.stringify(backend.statusJson(), null, 2)}\n`, 'application/json');
  if (isRead && path === '/healthz') return sendText(res, 200, 'ok\n');
  sendText(res, 404, 'not found\n');
}

function redactUrl(url: string): string {
  return url.replace(/token=[^&]*/g, 'token=[redacted]');
}

export async function listen(server: Server, address: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}
