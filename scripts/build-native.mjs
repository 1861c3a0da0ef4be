// Builds the native addons with npm's own node-gyp at `npm ci`: the TFTP transfer engine
// (src/serve/tftp/native/) and sendfile for HTTP bodies (src/serve/http/native/). Both are optional:
// where they cannot be built (no C compiler), forseti says so at start and serves TFTP with its
// JavaScript pump, which is slower per datagram on fast links, and HTTP bodies by reading and writing.
import { spawnSync } from 'node:child_process';

const gyp = process.env.npm_config_node_gyp;
const command = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const result = spawnSync(command[0], command[1], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (result.status !== 0) {
  const detail = (result.error?.message ?? `${result.stderr}`.trim().split('\n').slice(-5).join('\n')) || `exit ${result.status}`;
  process.stderr.write(`forseti: the native addons were not built; TFTP will use the JavaScript pump, HTTP no sendfile.\n${detail}\n`);
} else {
  process.stdout.write('forseti: native addons built (build/Release/tftp_engine.node, http_sendfile.node)\n');
}
