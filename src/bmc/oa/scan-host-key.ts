// The SSH host key an address presents, without logging in: the handshake is refused at the key check, before any
// authentication (what `ssh-keyscan` does). For `forseti bmc probe`, so the operator can pin the key it shows.
import ssh2 from 'ssh2';
import { sshFingerprint } from './host-key.ts';

// ssh2 is CommonJS: its classes come through the default export.
const { Client } = ssh2;

/** `SHA256:…` of the host key at address:port; rejects when no SSH handshake got that far. */
export function scanHostKey(address: string, port: number, timeoutMs: number): Promise<string> {
  const client = new Client();
  return new Promise<string>((resolve, reject) => {
    let seen: string | undefined;
    const done = (err?: Error): void => {
      clearTimeout(timer);
      client.end();
      if (seen !== undefined) resolve(seen);
      else reject(err ?? new Error('no host key'));
    };
    const timer = setTimeout(() => done(new Error(`no SSH host key within ${timeoutMs} ms`)), timeoutMs);
    client.on('error', (err: Error) => done(err));
    client.on('ready', () => done());
    client.connect({
      host: address,
      port,
      username: 'forseti-keyscan',
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
        seen = sshFingerprint(key);
        verify(false);
      },
    });
  });
}
