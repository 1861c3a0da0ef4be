// Throwaway stand-in for forseti's agent, used only by test/vlab-smoke.test.ts: answers DHCP (iPXE gets an
// HTTP boot script, the guest OS just an address) and serves kernel, initrd and /phone-home over HTTP.
// Runs inside the vlab namespace. Usage: node --import tsx test/vlab/smoke-responder.ts CONFIG_JSON
// Prints "ready", then one JSON event per line on stdout.
import { createSocket } from 'node:dgram';
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';

interface ResponderConfig {
  serverAddress: string;
  broadcastAddress: string;
  httpPort: number;
  kernel: string;
  initrd: string;
  role: string;
  token: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ResponderConfig;
const base = `http://${config.serverAddress}:${config.httpPort}`;
const emit = (event: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(event)}\n`);

const bootScript = `#!ipxe
kernel ${base}/vmlinuz initrd=initrd.img console=ttyS0 role=${config.role} forseti.callback=${base}/phone-home forseti.token=${config.token}
initrd ${base}/initrd.img
boot
`;

// --- DHCP -------------------------------------------------------------------------------------------------
const MAGIC_COOKIE = 0x63825363;
const leases = new Map<string, string>();

function parseOptions(packet: Buffer): Map<number, Buffer> {
  const options = new Map<number, Buffer>();
  let at = 240;
  while (at < packet.length) {
    const code = packet[at] ?? 255;
    if (code === 255) break;
    if (code === 0) {
      at += 1;
      continue;
    }
    const length = packet[at + 1] ?? 0;
    options.set(code, packet.subarray(at + 2, at + 2 + length));
    at += 2 + length;
  }
  return options;
}

function option(code: number, data: number[] | Buffer): Buffer {
  return Buffer.concat([Buffer.from([code, data.length]), Buffer.from(data)]);
}

function ipBytes(address: string): number[] {
  return address.split('.').map(Number);
}

function reply(request: Buffer, type: 2 | 5, address: string, ipxe: boolean): Buffer {
  const head = Buffer.alloc(240);
  head[0] = 2; // BOOTREPLY
  head[1] = 1;
  head[2] = 6;
  request.copy(head, 4, 4, 8); // xid
  head.writeUInt16BE(0x8000, 10); // broadcast
  Buffer.from(ipBytes(address)).copy(head, 16); // yiaddr
  Buffer.from(ipBytes(config.serverAddress)).copy(head, 20); // siaddr
  request.copy(head, 28, 28, 44); // chaddr
  if (ipxe) head.write(`${base}/boot.ipxe`, 108, 127, 'ascii');
  head.writeUInt32BE(MAGIC_COOKIE, 236);
  const options = [
    option(53, [type]),
    option(54, ipBytes(config.serverAddress)),
    option(51, [0, 0, 0x0e, 0x10]),
    option(1, [255, 255, 255, 0]),
    // iPXE setting no-pxedhcp (175.176 = 1): do not wait ~3 s for ProxyDHCP offers
    ...(ipxe ? [option(175, [176, 1, 1]), option(67, Buffer.from(`${base}/boot.ipxe`))] : []),
    Buffer.from([255]),
  ];
  return Buffer.concat([head, ...options]);
}

const dhcp = createSocket({ type: 'udp4', reuseAddr: true });
dhcp.on('message', (packet) => {
  if (packet.length < 240 || packet[0] !== 1 || packet.readUInt32BE(236) !== MAGIC_COOKIE) return;
  const options = parseOptions(packet);
  const type = options.get(53)?.[0];
  if (type !== 1 && type !== 3) return;
  const mac = [...packet.subarray(28, 34)].map((byte) => byte.toString(16).padStart(2, '0')).join(':');
  const ipxe = options.get(77)?.toString('latin1').includes('iPXE') ?? false;
  const vendorClass = options.get(60)?.toString('latin1') ?? '';
  const address = leases.get(mac) ?? `10.77.0.${100 + leases.size}`;
  leases.set(mac, address);
  emit({ event: 'dhcp', type: type === 1 ? 'discover' : 'request', mac, ipxe, vendorClass, address });
  // No default route in the namespace: 255.255.255.255 fails with ENETUNREACH, the directed broadcast works.
  dhcp.send(reply(packet, type === 1 ? 2 : 5, address, ipxe), 68, config.broadcastAddress);
});

// --- HTTP -------------------------------------------------------------------------------------------------
const files: Record<string, string> = { '/vmlinuz': config.kernel, '/initrd.img': config.initrd };

const http = createServer((req, res) => {
  const path = new URL(req.url ?? '/', base).pathname;
  emit({ event: 'http', method: req.method, path, from: req.socket.remoteAddress });
  if (path === '/boot.ipxe') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(bootScript);
    return;
  }
  const file = files[path];
  if (file) {
    res.writeHead(200, { 'content-length': statSync(file).size });
    createReadStream(file).pipe(res);
    return;
  }
  if (path === '/phone-home' && req.method === 'POST') {
    let body = '';
    req.on('data', (chunk: Buffer) => void (body += chunk.toString()));
    req.on('end', () => {
      const authorization = req.headers.authorization ?? '';
      const accepted = authorization === `Bearer ${config.token}`;
      emit({ event: 'phone-home', authorization, body: Object.fromEntries(new URLSearchParams(body)), accepted });
      res.writeHead(accepted ? 200 : 401).end(accepted ? 'ok\n' : 'bad token\n');
    });
    return;
  }
  res.writeHead(404).end();
});

let pending = 2;
const ready = (): void => {
  pending -= 1;
  if (pending === 0) process.stdout.write('ready\n');
};
dhcp.bind(67, '0.0.0.0', () => {
  dhcp.setBroadcast(true);
  ready();
});
http.listen(config.httpPort, config.serverAddress, ready);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(0));
