// A static file server for one directory: GET and HEAD of regular files under the root, nothing
// else. `forseti serve http` runs it; every exchange is reported once, when its response closes. Requests
// the HTTP layer refuses (malformed, other methods, over a cap) are logged there instead, one line each.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createHttpServer, type HttpLimits, type HttpLog } from './http-server.ts';
import { ChunkPool, sendOpenFile, sendText, type SendOutcome } from './send-file.ts';
import { openUnderRoot, StaticPathError } from './static-root.ts';

export interface HttpExchange {
  remote: string;
  method: string;
  path: string;
  status: number;
  /** Body bytes handed to the socket. */
  bytes: number;
  /** False when the client went away before the whole body was sent. */
  complete: boolean;
  ms: number;
  error?: string;
}

export interface StaticServerOptions {
  root: string;
  onExchange?: (e: HttpExchange) => void;
  /** Where refusals of the HTTP layer are logged; default nowhere. */
  log?: HttpLog;
  limits?: Partial<HttpLimits>;
}

const SILENT: HttpLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

export function createStaticServer(options: StaticServerOptions): Server {
  const chunks = new ChunkPool();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const remote = `${(req.socket.remoteAddress ?? '').replace(/^::ffff:/, '')}:${req.socket.remotePort ?? 0}`;
    const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
    let outcome: SendOutcome | undefined;
    let error: string | undefined;
    const closed = new Promise<void>((resolve) => res.once('close', () => resolve()));
    const served = serve(req, res, rawPath, options.root, chunks).then(
      (o) => {
        if (typeof o === 'string') error = o;
        else outcome = o;
      },
      (err: unknown) => {
        error = err instanceof Error ? err.message : String(err);
        if (!res.headersSent) sendText(res, 500, 'internal error\n');
        else res.destroy();
      },
    );
    // Reported once both the response has closed and the handler has settled, so the byte count is final.
    void Promise.all([closed, served]).then(() => {
      const e: HttpExchange = {
        remote,
        method: req.method ?? '?',
        path: rawPath,
        status: res.statusCode,
        bytes: outcome?.bytes ?? 0,
        complete: outcome?.complete ?? res.writableFinished,
        ms: Math.round(performance.now() - started),
      };
      if (error !== undefined) e.error = error;
      options.onExchange?.(e);
    });
  };
  return createHttpServer(handler, { log: options.log ?? SILENT, methods: ['GET', 'HEAD'], ...(options.limits ? { limits: options.limits } : {}) });
}

/** What was sent, or why the request was refused. */
async function serve(req: IncomingMessage, res: ServerResponse, rawPath: string, root: string, chunks: ChunkPool): Promise<SendOutcome | string> {
  let file;
  try {
    file = openUnderRoot(root, rawPath);
  } catch (err) {
    if (!(err instanceof StaticPathError)) throw err;
    sendText(res, err.status, `${err.message}\n`);
    return err.message;
  }
  return sendOpenFile(req, res, file, undefined, { chunks });
}
