// One process playing many PXE machines that boot at once, each doing what a blade does: DHCP
// DISCOVER and REQUEST as PXE firmware (broadcast, vendor class PXEClient), TFTP of the boot file
// the answer names from the next-server it names (a tsize probe aborted with ERROR 8, then the file
// at blksize 1428, lock-step, as PXE ROMs do), then over HTTP its iPXE script and the kernel and
// initrd the script names. Machine i has the MAC stormMac(i) and uses the address DHCP gave it as
// the source of everything after DHCP (the client namespace routes the whole range to itself, so any
// address in it is local). Retransmissions as a ROM makes them; a step that still fails fails the
// machine. Run inside a network namespace only (it broadcasts DHCP); prints one JSON line.
//
//   ip netns exec NS node --import tsx bench/lib/boot-storm-client.ts '<StormPlan as JSON>'
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { encodeAck, encodeError, encodeRequest, Opcode, parsePacket } from '../../src/serve/tftp/packet.ts';
import { broadcastingMain, discover, parseReply, request } from './dhcp-load.ts';

export interface Digest {
  size: number;
  sha256: string;
}

export interface StormPlan {
  machines: number;
  /** Machine i starts at i * spreadMs / machines. */
  spreadMs: number;
  httpPort: number;
  blksize: number;
  /** The script's path on the HTTP server; `{mac}` is the machine's MAC with dashes. */
  scriptPath: string;
  expect: { bootFile: Digest; kernel: Digest; initrd: Digest };
  /** Full digests of kernel and initrd for every Nth machine (1: every one); the others by size. */
  digestEvery: number;
  /** Only DHCP, for machine `first` (a readiness probe). */
  dhcpOnly?: boolean;
  /** Index of the first machine. Default 0. */
  first?: number;
  /** A step left out, to see what the other costs alone (BOOT_STORM_SKIP in the benchmark). */
  skip?: 'tftp' | 'http';
}

export interface MachineResult {
  index: number;
  mac: string;
  ip?: string;
  ok: boolean;
  error?: string;
  /** From the storm's start. */
  startMs: number;
  endMs: number;
  /** Milliseconds each step took. */
  steps: Record<string, number>;
  /** DATA blocks the TFTP server sent again (it took an ACK for lost), and requests or ACKs this machine sent again. */
  resent: { byServer: number; byMachine: number };
  /** HTTP requests answered 503 with Retry-After and asked again after it, as iPXE does. */
  httpRetries: number;
}

const DHCP_TIMEOUT_MS = 2000;
const DHCP_TRIES = 6;
const TFTP_TIMEOUT_MS = 2000;
const TFTP_TRIES = 6;
const HTTP_LIMIT_MS = 600_000; // a safety net: nothing a working server makes a machine wait for
/** 503 answers with Retry-After a machine waits out and asks again after (iPXE has no count; this is a safety net). */
const HTTP_RETRIES = 20;

export function stormMac(i: number): string {
  return ['02', 'b5', ((i >> 16) & 255).toString(16).padStart(2, '0'), ((i >> 8) & 255).toString(16).padStart(2, '0'), (i & 255).toString(16).padStart(2, '0'), '01'].join(':');
}

/** The address machine i is reserved: inside 10.77.16.0/20, never .0 or .255. */
export function stormIp(i: number): string {
  return `10.77.${16 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

/** The iPXE script machine `mac` is served: it names itself, then the kernel and initrd every machine boots. */
export function stormScript(mac: string, server: string, httpPort: number): string {
  return `#!ipxe\n# ${mac}\nkernel http://${server}:${httpPort}/images/kernel console=ttyS0\ninitrd http://${server}:${httpPort}/images/initrd\nboot\n`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** DHCP for every machine through one socket on port 68: replies are told apart by xid. */
class DhcpPort {
  readonly #socket = createSocket({ type: 'udp4', reuseAddr: true });
  readonly #waiting = new Map<number, (reply: NonNullable<ReturnType<typeof parseReply>>) => void>();

  async open(): Promise<void> {
    this.#socket.on('message', (msg) => {
      const reply = parseReply(msg);
      if (reply) this.#waiting.get(reply.xid)?.(reply);
    });
    await new Promise<void>((resolve, reject) => {
      this.#socket.once('error', reject);
      this.#socket.bind(68, '0.0.0.0', () => resolve());
    });
    this.#socket.setBroadcast(true);
    this.#socket.setRecvBufferSize(8 * 1024 * 1024);
  }

  close(): void {
    this.#socket.close();
  }

  /** The reply of one of `types` to `xid`, or undefined after the timeout. */
  async exchange(packet: Buffer, xid: number, types: number[]): Promise<ReturnType<typeof parseReply>> {
    const reply = new Promise<ReturnType<typeof parseReply>>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(xid);
        resolve(undefined);
      }, DHCP_TIMEOUT_MS);
      this.#waiting.set(xid, (r) => {
        if (!types.includes(r.type)) return;
        clearTimeout(timer);
        this.#waiting.delete(xid);
        resolve(r);
      });
    });
    this.#socket.send(packet, 67, '255.255.255.255');
    return reply;
  }

  /** DISCOVER, OFFER, REQUEST, ACK; again from the start on silence or a NAK. */
  async lease(index: number, mac: string): Promise<{ ip: string; server: string; file: string }> {
    for (let attempt = 0; attempt < DHCP_TRIES; attempt++) {
      const xid = (0x40000000 + index * 16 + attempt) >>> 0;
      const offer = await this.exchange(discover(xid, mac, true), xid, [2]);
      if (!offer) continue;
      const ack = await this.exchange(request(xid, mac, true, offer.ip, offer.serverId), xid, [5, 6]);
      if (ack?.type !== 5) continue;
      return { ip: ack.ip, server: ack.siaddr !== '0.0.0.0' ? ack.siaddr : ack.serverId, file: ack.file };
    }
    throw new Error(`DHCP: no lease after ${DHCP_TRIES} tries`);
  }
}

/**
 * A PXE ROM's download: the tsize probe (refused with ERROR 8 once its OACK is in), then the file at
 * `blksize`, lock-step, with the ROM's retransmissions. Event-driven, one timer per download: the
 * generator handles every datagram of hundreds of machines, and must not be what a benchmark measures.
 */
function tftpGet(local: string, server: string, file: string, blksize: number, resent: MachineResult['resent']): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const chunks: Buffer[] = [];
    let phase: 'probe' | 'get' = 'probe';
    let probeTid: number | undefined;
    let tid: number | undefined;
    let size = 512;
    let expected = 1;
    let last = encodeRequest(Opcode.RRQ, file, 'octet', [['tsize', '0']]);
    let lastPort = 69;
    let tries = 0;
    let deadline = 0;
    let settled = false;
    const send = (packet: Buffer, port: number, then?: () => void): void => {
      [last, lastPort] = [packet, port];
      deadline = performance.now() + TFTP_TIMEOUT_MS;
      socket.send(packet, port, server, then);
    };
    const end = (err: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      socket.close();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const timer = setInterval(() => {
      if (performance.now() < deadline) return;
      if (++tries >= TFTP_TRIES) end(new Error(`TFTP: no answer ${phase === 'probe' ? 'to the size probe' : `with DATA ${expected}`} after ${tries} tries`));
      else {
        resent.byMachine++;
        send(last, lastPort);
      }
    }, TFTP_TIMEOUT_MS / 4);
    socket.on('message', (msg, rinfo) => {
      if (settled || msg.length < 4) return;
      const op = msg.readUInt16BE(0);
      if (op === Opcode.ERROR) {
        if (phase === 'probe' || rinfo.port === tid) end(new Error(`TFTP: ${msg.toString('utf8', 4).replace(/\0.*$/s, '')}`));
        return;
      }
      if (phase === 'probe') {
        if (op !== Opcode.OACK) return;
        probeTid = rinfo.port;
        socket.send(encodeError(8, 'tsize probe'), probeTid, server);
        phase = 'get';
        tries = 0;
        send(encodeRequest(Opcode.RRQ, file, 'octet', [['blksize', String(blksize)], ['tsize', '0']]), 69);
        return;
      }
      if (rinfo.port === probeTid) return; // the probe's late retransmissions
      tid ??= rinfo.port;
      if (rinfo.port !== tid) return;
      if (op === Opcode.OACK && expected === 1) {
        const packet = parsePacket(msg);
        if (packet.opcode === Opcode.OACK) size = Number(packet.options.get('blksize') ?? 512);
        tries = 0;
        send(encodeAck(0), tid);
        return;
      }
      if (op !== Opcode.DATA) return;
      const block = msg.readUInt16BE(2);
      if (block === ((expected - 1) & 0xffff)) {
        resent.byServer++;
        send(last, lastPort); // our ACK was lost: the server sent the block again
        return;
      }
      if (block !== (expected & 0xffff)) return;
      tries = 0;
      chunks.push(msg.subarray(4));
      const lastBlock = msg.length - 4 < size;
      // The final ACK must leave before the socket closes, or the server waits for it in vain.
      send(encodeAck(expected), tid, lastBlock ? () => end(undefined) : undefined);
      expected++;
    });
    socket.bind(0, local, () => send(last, lastPort));
  });
}

interface HttpBody {
  bytes: number;
  sha256?: string;
  text?: string;
}

/**
 * GET as iPXE does it: a 503 with `Retry-After: N` is asked again after N seconds (iPXE's src/net/tcp/httpcore.c,
 * http_rx_retry_after: "If we received a 503 Service Unavailable response, then retry after the specified number of
 * seconds"); any other answer but 200 fails the machine.
 */
async function httpGetRetrying(local: string, server: string, port: number, path: string, keep: 'digest' | 'text' | 'count', result: MachineResult): Promise<HttpBody> {
  for (let tries = 0; ; tries++) {
    const got = await httpGet(local, server, port, path, keep);
    if (!('retryAfterS' in got)) return got;
    if (tries >= HTTP_RETRIES) throw new Error(`HTTP ${path}: 503 ${HTTP_RETRIES + 1} times`);
    result.httpRetries++;
    await sleep(got.retryAfterS * 1000);
  }
}

/** GET over a connection of its own from `local`; the body counted, and hashed or kept when asked. */
function httpGet(local: string, server: string, port: number, path: string, keep: 'digest' | 'text' | 'count'): Promise<HttpBody | { retryAfterS: number }> {
  return new Promise((resolve, reject) => {
    const hash = keep === 'digest' ? createHash('sha256') : undefined;
    const text: Buffer[] = [];
    let head = Buffer.alloc(0);
    let length = -1;
    let bytes = 0;
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`HTTP ${path}: no complete answer in ${HTTP_LIMIT_MS} ms`)), HTTP_LIMIT_MS);
    const body = (chunk: Buffer): void => {
      bytes += chunk.length;
      hash?.update(chunk);
      if (keep === 'text') text.push(Buffer.from(chunk));
    };
    const socket = connect({
      host: server, port, localAddress: local,
      // One reused buffer per connection: gigabytes go through here, none of it needs to be kept.
      onread: {
        buffer: Buffer.allocUnsafe(64 * 1024),
        callback: (n: number, buf: Uint8Array): boolean => {
          const chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
          if (length >= 0) {
            body(chunk);
            return true;
          }
          head = Buffer.concat([head, chunk]);
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return true;
          const lines = head.toString('latin1', 0, end).split('\r\n');
          const status = /^HTTP\/1\.1 (\d+)/.exec(lines[0] ?? '')?.[1];
          const retryAfter = /^retry-after: *(\d+) *$/im.exec(lines.slice(1).join('\n'))?.[1];
          if (status === '503' && retryAfter !== undefined) {
            clearTimeout(timer);
            socket.destroy();
            resolve({ retryAfterS: Number(retryAfter) });
            return false;
          }
          if (status !== '200') {
            fail(new Error(`HTTP ${path}: ${lines[0] ?? 'no status line'}`));
            return false;
          }
          length = Number(lines.find((l) => /^content-length:/i.test(l))?.split(':')[1] ?? NaN);
          body(head.subarray(end + 4));
          return true;
        },
      },
    }, () => socket.write(`GET ${path} HTTP/1.1\r\nHost: ${server}\r\nConnection: close\r\n\r\n`));
    socket.on('error', fail);
    socket.on('close', () => {
      clearTimeout(timer);
      if (length < 0 || bytes !== length) reject(new Error(`HTTP ${path}: ${bytes} of ${length} bytes`));
      else resolve({ bytes, ...(hash ? { sha256: hash.digest('hex') } : {}), ...(keep === 'text' ? { text: Buffer.concat(text).toString('utf8') } : {}) });
    });
  });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function boot(plan: StormPlan, dhcp: DhcpPort, index: number, t0: number): Promise<MachineResult> {
  const mac = stormMac(index);
  await sleep(t0 + ((index - (plan.first ?? 0)) * plan.spreadMs) / plan.machines - performance.now());
  const startMs = performance.now() - t0;
  const result: MachineResult = { index, mac, ok: false, startMs, endMs: startMs, steps: {}, resent: { byServer: 0, byMachine: 0 }, httpRetries: 0 };
  let stepStart = performance.now();
  const step = (name: string): void => {
    const now = performance.now();
    result.steps[name] = Math.round(now - stepStart);
    stepStart = now;
  };
  try {
    const lease = await dhcp.lease(index, mac);
    result.ip = lease.ip;
    step('dhcp');
    if (!plan.dhcpOnly) {
      if (plan.skip !== 'tftp') {
        const bootFile = await tftpGet(lease.ip, lease.server, lease.file, plan.blksize, result.resent);
        if (bootFile.length !== plan.expect.bootFile.size || sha256(bootFile) !== plan.expect.bootFile.sha256) throw new Error(`TFTP ${lease.file}: wrong bytes (${bootFile.length})`);
      }
      step('tftp');
    }
    if (!plan.dhcpOnly && plan.skip !== 'http') {
      const script = await httpGetRetrying(lease.ip, lease.server, plan.httpPort, plan.scriptPath.replace('{mac}', mac.replaceAll(':', '-')), 'text', result);
      if (!script.text?.includes(`# ${mac}\n`)) throw new Error('HTTP script: not this machine\'s');
      step('script');
      for (const what of ['kernel', 'initrd'] as const) {
        const url = new RegExp(`^${what} http://([^/:]+):(\\d+)(/\\S*)`, 'm').exec(script.text ?? '');
        if (!url) throw new Error(`HTTP script: no ${what} line`);
        const got = await httpGetRetrying(lease.ip, url[1] ?? '', Number(url[2]), url[3] ?? '/', index % plan.digestEvery === 0 ? 'digest' : 'count', result);
        const want = plan.expect[what];
        if (got.bytes !== want.size || (got.sha256 !== undefined && got.sha256 !== want.sha256)) throw new Error(`HTTP ${what}: wrong bytes (${got.bytes})`);
        step(what);
      }
    }
    result.ok = true;
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
  }
  result.endMs = performance.now() - t0;
  return result;
}

export async function runStorm(plan: StormPlan): Promise<MachineResult[]> {
  const dhcp = new DhcpPort();
  await dhcp.open();
  try {
    const first = plan.first ?? 0;
    const t0 = performance.now();
    return await Promise.all(Array.from({ length: plan.machines }, (_, i) => boot(plan, dhcp, first + i, t0)));
  } finally {
    dhcp.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await broadcastingMain('boot-storm-client', runStorm);
  // Its own CPU: the generator shares the two cores with the servers, and what a server makes it do counts.
  const used = process.cpuUsage();
  process.stdout.write(`generator CPU ms ${Math.round((used.user + used.system) / 1000)}\n`);
}
