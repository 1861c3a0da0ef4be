// An alert receiver for the end-to-end test: listens on a Unix socket in the root namespace, which the virtual
// lab forwards into its namespace, and records every delivery with its signature checked.
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';

export interface ReceivedAlert {
  event: string;
  signatureValid: boolean;
  body: Record<string, unknown>;
}

export class AlertReceiver {
  readonly received: ReceivedAlert[] = [];
  private server: Server | null = null;

  constructor(private readonly secret: string) {}

  async listen(socketPath: string): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const expected = `sha256=${createHmac('sha256', this.secret).update(raw).digest('hex')}`;
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
        } catch {
          // recorded as an empty body; the test's assertions will say so
        }
        this.received.push({ event: String(req.headers['x-forseti-event'] ?? ''), signatureValid: req.headers['x-forseti-signature'] === expected, body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(socketPath, resolve));
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
