import { Agent } from '../../agent/agent.ts';
import { ServiceBindError } from '../../agent/boot-services.ts';
import { loadAgentConfig } from '../../agent/config.ts';
import { createLogger } from '../../log.ts';
import { Redactor } from '../../redact/redactor.ts';
import { flag, parseArgs, UsageError } from '../args.ts';

/** Exit 0 after SIGINT/SIGTERM; 1 when a service cannot take its port at start (the message names both). */
export async function agentCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const file = flag(args, 'config');
  if (!file) throw new UsageError('agent needs --config FILE');
  const config = await loadAgentConfig(file);
  // The agent fills it with every secret it resolves; every log line goes through it.
  const redactor = new Redactor();
  const log = createLogger({ redactor });
  const agent = new Agent(config, log, { redactor });
  try {
    await agent.start();
  } catch (err) {
    await agent.stop().catch((e: unknown) => log.error({ err: e }, 'the agent did not stop cleanly'));
    if (!(err instanceof ServiceBindError)) throw err;
    process.stderr.write(`forseti agent: ${redactor.redact(err.message)}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await agent.stop();
  return 0;
}
