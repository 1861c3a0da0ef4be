// Sends a Wake-on-LAN magic packet as one UDP datagram, normally to the directed broadcast address of the
// sleeping machine's subnet (e.g. 10.77.0.255) on port 9 (discard).
import { createSocket } from 'node:dgram';
import { magicPacket } from './magic-packet.ts';

export const WOL_PORT = 9;

export interface WakeOptions {
  /** Where to send: the subnet's directed broadcast address, or a unicast address (tests). */
  address: string;
  /** Default 9. */
  port?: number;
  /** Local address to send from (the agent's address on the provisioning network); default: any. */
  bindAddress?: string;
  /** Copies sent (UDP can drop one); default 3. */
  copies?: number;
}

export async function sendMagicPacket(mac: string, opts: WakeOptions): Promise<void> {
  const packet = magicPacket(mac);
  const socket = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: opts.bindAddress, port: 0 }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.setBroadcast(true);
    for (let i = 0; i < (opts.copies ?? 3); i++) {
      await new Promise<void>((resolve, reject) => socket.send(packet, opts.port ?? WOL_PORT, opts.address, (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
