// Response bodies by sendfile(2) (native/sendfile.c, built by node-gyp at `npm ci`): the kernel moves
// the bytes from the page cache to the socket, as nginx does with `sendfile on`, instead of Node
// reading each chunk into a buffer and writing it back. Used for plain TCP responses; TLS, a
// response that is not the one its socket is writing now, and a machine where the addon was not
// built take send-file.ts's read-and-write path.

import type { ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

type Job = object;

interface SendfileBinding {
  start(socketFd: number, fileFd: number, offset: number, length: number, onDone: (error: string | undefined, bytes: number) => void): Job;
  cancel(job: Job): void;
}

const ADDON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../build/Release/http_sendfile.node');

/** The addon, loaded once when this module is first imported and never changed after: the process's own, like its code. */
const ADDON_LOAD: Readonly<{ binding?: SendfileBinding; error?: string }> = loadAddon();

function loadAddon(): { binding?: SendfileBinding; error?: string } {
  // Its jobs live on the main event loop.
  if (!isMainThread) return { error: 'sendfile runs on the main thread only' };
  try {
    return { binding: createRequire(import.meta.url)(ADDON) as SendfileBinding };
  } catch (err) {
    return { error: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  }
}

/** Why responses cannot use sendfile here (the addon was not built, or failed to load); undefined when they can. */
export function sendfileUnavailable(): string | undefined {
  return ADDON_LOAD.binding ? undefined : `${ADDON_LOAD.error ?? 'not loaded'} (run npm ci with a C compiler to build it)`;
}

/** What Node keeps of a TCP socket's libuv handle: its descriptor (not in the typings). */
interface HandleWithFd {
  fd?: number;
}

/**
 * The descriptor of the socket `res` is written to, when sendfile can send its body: a plain TCP
 * socket (not TLS), and `res` the response it is writing now (a pipelined response waits for the one
 * before it; its writes are queued by Node, not the kernel).
 */
export function sendfileSocket(res: ServerResponse): number | undefined {
  if (!ADDON_LOAD.binding) return undefined;
  const socket = res.socket as (Socket & { encrypted?: boolean; _httpMessage?: unknown; _handle?: HandleWithFd }) | null;
  if (!socket || socket.encrypted || socket._httpMessage !== res || socket.destroyed) return undefined;
  const fd = socket._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * Sends bytes [start, start + length) of the file as the body of `res`, whose headers are set; ends
 * the response when all is sent and destroys it when the file ends early or the socket fails (the
 * status line is gone by then, so a cut connection is the only honest signal).
 */
export async function sendfileBody(res: ServerResponse, socketFd: number, fileFd: number, start: number, length: number): Promise<{ bytes: number; complete: boolean }> {
  const sendfile = ADDON_LOAD.binding;
  if (!sendfile) throw new Error(`sendfile unavailable: ${sendfileUnavailable()}`);
  const socket = res.socket;
  // The headers must be in the kernel before the body: Node writes them, sendfile then follows them.
  res.flushHeaders();
  if (socket && socket.writableLength > 0) await new Promise<void>((resolve) => socket.write('', () => resolve()));
  if (res.destroyed || !res.socket) return { bytes: 0, complete: false };
  let job: Job | undefined;
  const cancel = (): void => {
    if (job) sendfile.cancel(job);
  };
  const outcome = await new Promise<{ error: string | undefined; bytes: number }>((resolve) => {
    job = sendfile.start(socketFd, fileFd, start, length, (error, bytes) => resolve({ error, bytes }));
    res.once('close', cancel);
  });
  res.off('close', cancel);
  if (outcome.error !== undefined) {
    if (!res.destroyed) res.destroy();
    return { bytes: outcome.bytes, complete: false };
  }
  const finished = new Promise<void>((resolve) => {
    res.once('finish', resolve);
    res.once('close', resolve);
  });
  res.end();
  await finished;
  return { bytes: outcome.bytes, complete: res.writableFinished };
}
