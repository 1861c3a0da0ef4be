import { Agent } from '../../agent/agent.ts';
import { loadAgentConfig } from '../../agent/config.ts';
import { createLogger } from '../../log.ts';
import { flag, parseArgs, UsageError } from '../args.ts';

export async function agentCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const file = flag(args, 'config');
  if (!file) throw new UsageError('agent needs --config FILE');
  const config = await loadAgentConfig(file);
  const log = createLogger();
  const agent = new Agent(config, log);
  await agent.start();
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
