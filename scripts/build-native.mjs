// Builds the native TFTP transfer engine (src/serve/tftp/native/) with npm's own node-gyp at `npm ci`.
// It is optional: where it cannot be built (no C compiler), forseti says so at start and serves TFTP
// with its JavaScript pump, which is slower per datagram on fast links.
import { spawnSync } from 'node:child_process';

const gyp = process.env.npm_config_node_gyp;
const command = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const result = spawnSync(command[0], command[1], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (result.status !== 0) {
  const detail = (result.error?.message ?? `${result.stderr}`.trim().split('\n').slice(-5).join('\n')) || `exit ${result.status}`;
  process.stderr.write(`forseti: the native TFTP engine was not built; TFTP will use the JavaScript pump.\n${detail}\n`);
} else {
  process.stdout.write('forseti: native TFTP engine built (build/Release/tftp_engine.node)\n');
}
