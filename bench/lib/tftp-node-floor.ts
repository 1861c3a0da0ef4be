// The least a TFTP server on Node can do per block, as a reference for the lock-step benchmark: files
// held in memory, one DATA packet built and sent per ACK, no retransmission, no window, no
// confinement, no logging. Whatever separates forseti from in.tftpd beyond what separates this from
// in.tftpd is forseti's own cost; the rest is Node's (libuv, one JS callback and one allocation per
// datagram). Never a server to use.
//
//   node --import tsx bench/lib/tftp-node-floor.ts '{"root":"/tmp/dir","port":16971}'
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const config = JSON.parse(process.argv[2] ?? '{}') as { root: string; port: number; host?: string };
const host = config.host ?? '127.0.0.1';
const files = new Map<string, Buffer>();

function udp(port: number, ready: (s: Socket) => void): void {
  const s = createSocket({ type: 'udp4', lookup: (address, _options, cb) => cb(null, address, 4) });
  s.bind(port, host, () => ready(s));
}

function oack(options: Array<[string, string]>): Buffer {
  return Buffer.concat([Buffer.from([0, 6]), ...options.map(([k, v]) => Buffer.from(`${k}\0${v}\0`, 'latin1'))]);
}

udp(config.port, (listener) => {
  listener.on('message', (msg, client) => {
    if (msg.readUInt16BE(0) !== 1) return;
    const [name = '', , ...rest] = msg.subarray(2).toString('latin1').split('\0');
    let data = files.get(name);
    if (!data) {
      data = readFileSync(path.join(config.root, name));
      files.set(name, data);
    }
    const file = data;
    const accepted: Array<[string, string]> = [];
    let blksize = 512;
    for (let i = 0; i + 1 < rest.length; i += 2) {
      const key = (rest[i] ?? '').toLowerCase();
      if (key === 'blksize') accepted.push([key, String((blksize = Number(rest[i + 1])))]);
      if (key === 'tsize') accepted.push([key, String(file.length)]);
    }
    const last = Math.floor(file.length / blksize) + 1;
    udp(0, (s) => {
      const send = (block: number): void => {
        const start = (block - 1) * blksize;
        const end = Math.min(start + blksize, file.length);
        const packet = Buffer.allocUnsafe(4 + end - start);
        packet.writeUInt16BE(3, 0);
        packet.writeUInt16BE(block & 0xffff, 2);
        file.copy(packet, 4, start, end);
        s.send(packet, client.port, client.address);
      };
      let next = 1;
      s.on('message', (ack) => {
        if (ack.readUInt16BE(0) !== 4 || ack.readUInt16BE(2) !== ((next - 1) & 0xffff)) return;
        if (next > last) {
          s.close();
          return;
        }
        send(next++);
      });
      if (accepted.length > 0) s.send(oack(accepted), client.port, client.address);
      else send(next++);
    });
  });
  process.stdout.write(`floor ready on ${host}:${config.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
