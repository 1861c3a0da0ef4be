import { destination } from 'pino';
import { Agent } from '../../agent/agent.ts';
import { ServiceBindError } from '../../serve/boot-services.ts';
import { loadAgentConfig } from '../../agent/config.ts';
import { createLogger } from '../../log.ts';
import { Redactor } from '../../redact/redactor.ts';
import { flag, parseArgs, UsageError } from '../args.ts';
import { StopSignals } from '../stop-signals.ts';
import { capYoungGeneration } from '../young-generation.ts';

/** SIGTERM or SIGINT ends the agent within this, whatever still runs; a second signal ends it at once. */
export const STOP_DEADLINE_MS = 10_000;

/** Exit 0 after SIGINT/SIGTERM; 1 when a service cannot take its port at start (the message names both). */
export async function agentCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const file = flag(args, 'config');
  if (!file) throw new UsageError('agent needs --config FILE');
  capYoungGeneration();
  const config = await loadAgentConfig(file);
  // Written synchronously: the last lines before a forced exit must not wait in a queue of the thread pool that a
  // hung read may hold, and the signal that ends the process would drop them.
  // (pino takes its own SonicBoom stream; createLogger's option is typed for Node streams.)
  // The agent fills the redactor with every secret it resolves; every log line goes through it.
  const redactor = new Redactor();
  const log = createLogger({ destination: destination({ dest: 1, sync: true }) as unknown as NodeJS.WritableStream, redactor });
  const agent = new Agent(config, log, { redactor });
  // Listening before start: a signal while the first commit is fetched or applied stops the agent too.
  const signals = new StopSignals();
  let startError: unknown = null;
  const started = agent.start().then(
    () => true,
    (err: unknown) => {
      startError = err ?? new Error('the agent could not start');
      return false;
    },
  );
  if (await Promise.race([started, signals.first.then(() => false)])) await signals.first;
  const signal = signals.signal;
  log.info({ signal: signal ?? undefined }, 'stopping');
  let deadline: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    agent.stop().then(() => 'stopped' as const),
    new Promise<'deadline'>((resolve) => (deadline = setTimeout(() => resolve('deadline'), STOP_DEADLINE_MS))),
    signals.second.then(() => 'second signal' as const),
  ]);
  clearTimeout(deadline);
  const left = agent.running();
  if (outcome !== 'stopped' || (signal && left.length > 0)) {
    const why = outcome === 'deadline' ? `not stopped within ${STOP_DEADLINE_MS / 1000} s` : outcome === 'second signal' ? 'a second signal' : 'stopped with work left behind';
    log.error({ stillRunning: left, signal }, `exiting now (${why}); still running: ${left.length > 0 ? left.join('; ') : 'nothing known'}`);
    return signals.exitBy(signal ?? 'SIGTERM');
  }
  signals.dispose();
  // Stopped: the process ends when its last handle closes. Should one that nobody tracks stay open, it ends anyway.
  setTimeout(() => {
    log.warn('stopped, but something still holds the process; exiting');
    process.exit();
  }, LINGER_MS).unref();
  if (startError instanceof ServiceBindError) {
    process.stderr.write(`forseti agent: ${redactor.redact(startError.message)}\n`);
    return 1;
  }
  if (startError !== null) throw startError;
  return 0;
}

const LINGER_MS = 3000;
