// The test suite's git server (git's own `git http-backend` behind node:http) in a process of its own, for a benchmark
// whose agent runs in the benchmark's process: a lab's Git server is another machine's work, and run in the agent's
// process its CGI spawns (a fork of a 10,000-host heap each, ~4 ms of the event loop per request) would be timed as
// the agent's. Prints the server's URL and root as one JSON line, then serves until its standard input closes.
import { startGitServer } from '../../test/fixtures/git-server.ts';

const server = await startGitServer(process.argv[2] ? { root: process.argv[2] } : {});
process.stdout.write(`${JSON.stringify({ url: server.url, root: server.root })}\n`);
process.stdin.resume();
process.stdin.on('end', () => void server.close({ keepRoot: true }).then(() => process.exit(0)));
