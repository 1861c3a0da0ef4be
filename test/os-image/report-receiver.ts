// Stand-in for the agent's report endpoint in test/os-image.test.ts: runs inside the test's network namespace,
// answers every POST 200 (or `status` when given), prints "ready", then one JSON line per request on stdout.
// Usage: node --import tsx test/os-image/report-receiver.ts ADDRESS PORT [STATUS]
import { createServer } from 'node:http';

const [address = '127.0.0.1', port = '0', status = '200'] = process.argv.slice(2);
const MAX_BODY = 1024 * 1024;

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  let size = 0;
  request.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  request.on('end', () => {
    process.stdout.write(`${JSON.stringify({
      method: request.method,
      path: request.url,
      authorization: request.headers.authorization ?? null,
      contentType: request.headers['content-type'] ?? null,
      remote: request.socket.remoteAddress,
      body: Buffer.concat(chunks).toString('utf8'),
    })}\n`);
    response.writeHead(Number(status), { 'content-type': 'text/plain' });
    response.end('ok\n');
  });
});
server.listen(Number(port), address, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
