import { UsageError } from './args.ts';
import { errorMessage } from '../core/errors.ts';

const USAGE = `usage: forseti <command> [options]

  validate [LAB_DIR]               check a lab repository; one line per problem, file:line:col
  render [LAB_DIR] --host NAME     print the iPXE script that host would get now (--what config: its config)
  agent --config FILE              run the agent
  plan --base REV --head REV [LAB_DIR]   what merging HEAD would do to each host
  status                           hosts, roles, phases, sync and health
  bmc HOST status|on|off|cycle|pxe|disk|inventory [--lab DIR]   one BMC operation
  bmc probe ADDRESS [--type auto|redfish|ipmi|hp-oa] [--credential NAME]   what BMC answers there, and its bmc: block
  discover oa|redfish|ipmi ADDRESS --credential NAME [--lab DIR] [--out DIR | --branch NAME]   propose host files
  serve tftp|http|dhcp ...         run one boot service alone, for debugging
  init [DIR]                       a new lab repository for your network (flags or prompts)
  image add NAME URL...            download kernel/initrd once, write images/NAME.yaml with their sha256
  doctor --config FILE [--json]    check the agent's machine before the first start
`;

// Loaded on demand: `validate` in a pull request's CI should not pay for the agent's dependencies.
const commands: Record<string, (argv: string[]) => Promise<number>> = {
  validate: async (argv) => (await import('./commands/validate.ts')).validateCommand(argv),
  render: async (argv) => (await import('./commands/render.ts')).renderCommand(argv),
  agent: async (argv) => (await import('./commands/agent.ts')).agentCommand(argv),
  plan: async (argv) => (await import('./commands/plan.ts')).planCommand(argv),
  status: async (argv) => (await import('./commands/status.ts')).statusCommand(argv),
  bmc: async (argv) => (await import('./commands/bmc.ts')).bmcCommand(argv),
  discover: async (argv) => (await import('./commands/discover.ts')).discoverCommand(argv),
  serve: async (argv) => (await import('./commands/serve.ts')).serveCommand(argv),
  init: async (argv) => (await import('./commands/init.ts')).initCommand(argv),
  image: async (argv) => (await import('./commands/image-add.ts')).imageCommand(argv),
  doctor: async (argv) => (await import('./commands/doctor.ts')).doctorCommand(argv),
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`unknown command "${name}"\n${USAGE}`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`forseti ${name}: ${errorMessage(err)}\n`);
    return 2;
  }
}

// Not a top-level await: the release bundle is CommonJS (Node 20's single executables run CommonJS only).
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
