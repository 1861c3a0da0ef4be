// Whether an IPMI BMC answers at an address, without credentials: one session-less "Get Channel Authentication
// Capabilities" request over RMCP (IPMI v2.0 §13 and §22.13; the request every client sends before a session).
import { createSocket } from 'node:dgram';

export interface IpmiPresence {
  /** The BMC answers "IPMI v2.0 / RMCP+" sessions (extended capabilities, byte 5 bit 1). */
  ipmi20: boolean;
  /** IPMI v1.5 authentication types it offers (none, MD2, MD5, straight password, OEM). */
  authTypes: string[];
}

/** RMCP (06 00 ff 07, class IPMI), IPMI v1.5 session header with no auth, the request to the BMC (rsSA 20h, NetFn App). */
export function channelAuthCapabilitiesRequest(): Buffer {
  const body = [0x81, 0x00, 0x38, 0x8e, 0x04]; // rqSA 81h, rqSeq 0, command 38h; channel Eh (this one) + v2.0 data, admin
  const header = [0x20, 0x18]; // rsSA 20h; NetFn 06h (App) << 2, LUN 0
  const sum = (bytes: number[]): number => (0x100 - (bytes.reduce((a, b) => a + b, 0) & 0xff)) & 0xff;
  const message = [...header, sum(header), ...body, sum(body)];
  return Buffer.from([0x06, 0x00, 0xff, 0x07, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, message.length, ...message]);
}

/** The answer's capabilities; null when it is not an answer to that request (or one with an error completion code). */
export function parseChannelAuthCapabilities(packet: Buffer): IpmiPresence | null {
  if (packet.length < 14 || packet[0] !== 0x06 || packet[3] !== 0x07) return null;
  const authType = packet[4]!;
  const offset = authType === 0 ? 14 : 30; // a session header with an authcode is 16 bytes longer
  const message = packet.subarray(offset);
  // rqSA, NetFn/LUN, checksum, rsSA, rqSeq, command, completion code, data…
  if (message.length < 15 || message[5] !== 0x38 || message[6] !== 0x00) return null;
  const data = message.subarray(7);
  const types = data[1]!;
  const names: Array<[number, string]> = [[0x01, 'none'], [0x02, 'MD2'], [0x04, 'MD5'], [0x10, 'password'], [0x20, 'OEM']];
  return { ipmi20: (data[1]! & 0x80) !== 0 && (data[3]! & 0x02) !== 0, authTypes: names.filter(([bit]) => (types & bit) !== 0).map(([, n]) => n) };
}

/** Sends the request and waits for its answer; null when nothing answers within `timeoutMs`. */
export function probeIpmiPresence(address: string, port = 623, timeoutMs = 2000): Promise<IpmiPresence | null> {
  return new Promise((resolve) => {
    const socket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
    let done = false;
    const finish = (result: IpmiPresence | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      resolve(result);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    socket.on('error', () => finish(null));
    socket.on('message', (packet) => {
      const answer = parseChannelAuthCapabilities(packet);
      if (answer) finish(answer);
    });
    socket.send(channelAuthCapabilitiesRequest(), port, address, (err) => {
      if (err) finish(null);
    });
  });
}
