// A storm of TFTP read requests that are never acknowledged: `count` RRQs over `seconds`, each from
// its own address (127.1.x.y: any address of 127/8 is the loopback's) and port, to a server on
// 127.0.0.1. The sockets stay open, so the server's retransmissions land somewhere, until `holdMs`
// after the last request. Prints one JSON line: how many requests got any answer.
//
//   ip netns exec NS node --import tsx bench/lib/tftp-storm.ts '{"port":16969,"count":2000,"seconds":10,"file":"big.bin"}'
import { createSocket, type Socket } from 'node:dgram';
import { encodeRequest, Opcode } from '../../src/serve/tftp/packet.ts';

export interface StormConfig {
  port: number;
  count: number;
  seconds: number;
  file: string;
  /** How long the sockets stay open after the last request. Default 1000. */
  holdMs?: number;
}

/** A distinct loopback address per request, up to 50,000 of them. */
export function stormAddress(i: number): string {
  return `127.${1 + Math.floor(i / 50_000)}.${Math.floor((i % 50_000) / 200)}.${(i % 200) + 1}`;
}

export async function storm(config: StormConfig): Promise<{ sent: number; answered: number }> {
  const sockets: Socket[] = [];
  const answered = new Set<number>();
  const rrq = encodeRequest(Opcode.RRQ, config.file, 'octet');
  const started = performance.now();
  for (let i = 0; i < config.count; i++) {
    const socket = createSocket('udp4');
    sockets.push(socket);
    socket.on('message', () => answered.add(i));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.bind(0, stormAddress(i), resolve));
    socket.send(rrq, config.port, '127.0.0.1');
    // Evenly over the period: wait until this request's turn comes.
    const due = started + ((i + 1) * config.seconds * 1000) / config.count;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await new Promise((r) => setTimeout(r, config.holdMs ?? 1000));
  for (const s of sockets) s.close();
  return { sent: config.count, answered: answered.size };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await storm(JSON.parse(process.argv[2] ?? '{}') as StormConfig);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
