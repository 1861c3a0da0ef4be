// A user-space relay that delays every TFTP datagram by a fixed time in each direction: a path with
// a round-trip time, where `tc netem` is not available and nftables cannot delay.
//
// TFTP changes ports after the request (the server answers from a new TID), so the relay keeps one
// session per client: an upstream socket that talks to the server, and a downstream socket that is
// the "server TID" the client sees. Datagrams keep their order (timers of equal delay fire in order).
//
//   node --import tsx bench/lib/udp-delay-relay.ts '{"listen":17000,"server":16969,"delayMs":1}'
import { createSocket, type Socket } from 'node:dgram';

interface RelayConfig {
  listen: number;
  server: number;
  delayMs: number;
  host?: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as RelayConfig;
const host = config.host ?? '127.0.0.1';

function udp(port = 0): Promise<Socket> {
  const s = createSocket({ type: 'udp4', lookup: (address, _options, cb) => cb(null, address, 4) });
  return new Promise((resolve) => s.bind(port, host, () => {
    s.setRecvBufferSize(8 * 1024 * 1024);
    s.setSendBufferSize(8 * 1024 * 1024);
    resolve(s);
  }));
}

const later = (fn: () => void): void => {
  setTimeout(fn, config.delayMs);
};

interface Session {
  up: Socket;
  down: Socket;
  serverPort: number;
  idle: NodeJS.Timeout | undefined;
}

const front = await udp(config.listen);
const sessions = new Map<string, Promise<Session>>();

async function open(key: string, clientPort: number, clientAddress: string): Promise<Session> {
  const [up, down] = await Promise.all([udp(), udp()]);
  const s: Session = { up, down, serverPort: config.server, idle: undefined };
  up.on('message', (reply, from) => {
    s.serverPort = from.port;
    touch(key, s);
    later(() => down.send(reply, clientPort, clientAddress));
  });
  down.on('message', (m) => {
    touch(key, s);
    later(() => up.send(m, s.serverPort, host));
  });
  return s;
}

front.on('message', (msg, client) => {
  const key = `${client.address}:${client.port}`;
  let session = sessions.get(key);
  if (!session) {
    session = open(key, client.port, client.address);
    sessions.set(key, session);
  }
  void session.then((s) => {
    touch(key, s);
    later(() => s.up.send(msg, config.server, host));
  });
});

/** Sessions close after 30 s without traffic. */
function touch(key: string, s: Session): void {
  if (s.idle) clearTimeout(s.idle);
  s.idle = setTimeout(() => {
    sessions.delete(key);
    s.up.close();
    s.down.close();
  }, 30_000);
  s.idle.unref();
}

process.stdout.write(`relay ready on ${host}:${config.listen} -> ${config.server}, ${config.delayMs} ms each way\n`);
process.on('SIGTERM', () => process.exit(0));
