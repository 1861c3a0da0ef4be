// `forseti bmc HOST OPERATION`: one BMC operation on one host of the lab, with the credential resolved the way
// the agent resolves it (secrets file, environment, the lab's secrets.sops.yaml). For checking a BMC by hand
// before the agent drives it.
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { BmcState } from '../../bmc/bmc-state.ts';
import { createDriver } from '../../bmc/driver-factory.ts';
import { CredentialMissingError, Secrets } from '../../secrets/secrets.ts';
import type { BmcDriver, Inventory } from '../../bmc/driver.ts';
import type { BootOverride, PowerState } from '../../core/power.ts';
import { BmcCommandError, BmcError } from '../../bmc/errors.ts';
import { createLogger } from '../../log.ts';
import { formatProblem, loadLab } from '../../model/load.ts';
import { Redactor } from '../../redact/redactor.ts';
import { terminalSafe } from '../../redact/terminal.ts';
import type { Host } from '../../model/types.ts';
import { flag, parseArgs, UsageError } from '../args.ts';
import { errorMessage } from '../../core/errors.ts';

const OPERATIONS = ['status', 'on', 'off', 'cycle', 'pxe', 'disk', 'inventory'] as const;
type Operation = (typeof OPERATIONS)[number];

const USAGE = 'forseti bmc HOST status|on|off|cycle|pxe|disk|inventory [--lab DIR] [--json] [--secrets FILE] [--age-key FILE]\n       forseti bmc probe ADDRESS [--type auto|redfish|ipmi|hp-oa] [--port N] [--credential NAME] [--check-boot] [--json]';

export interface BmcCommandIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** Exit 0 on success, 1 on a BMC (or credential, secrets file, or lab) error, 2 on a usage error. */
export async function bmcCommand(argv: string[], io: BmcCommandIo = {}): Promise<number> {
  // Everything printed goes through the redactor once the secrets are known (a BMC may echo what it was sent), and
  // has its control characters escaped (a BMC may answer with terminal escape sequences).
  const redactor = new Redactor();
  const plainOut = io.stdout ?? ((t: string) => void process.stdout.write(t));
  const plainErr = io.stderr ?? ((t: string) => void process.stderr.write(t));
  const rawOut = (t: string): void => plainOut(terminalSafe(t));
  const rawErr = (t: string): void => plainErr(terminalSafe(t));
  const out = (t: string): void => rawOut(redactor.redact(t));
  const err = (t: string): void => rawErr(redactor.redact(t));
  const env = io.env ?? process.env;
  if (argv[0] === 'probe') return (await import('./bmc-probe.ts')).bmcProbeCommand(argv.slice(1), io);
  const args = parseArgs(argv, ['json']);
  const [hostName, op, ...extra] = args.positional;
  if (!hostName || !op) throw new UsageError(`usage: ${USAGE}`);
  if (!(OPERATIONS as readonly string[]).includes(op)) throw new UsageError(`unknown operation "${op}"; one of ${OPERATIONS.join(', ')}`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const json = args.flags.get('json') === true;
  const labDir = resolve(flag(args, 'lab') ?? '.');

  const { lab, problems } = await loadLab(labDir);
  if (!lab) {
    for (const p of problems) err(`${formatProblem(p)}\n`);
    err(`forseti bmc: the lab in ${labDir} is not valid\n`);
    return 1;
  }
  const host = lab.hosts.get(hostName);
  if (!host) throw new UsageError(`no host named ${hostName} in ${labDir} (hosts: ${[...lab.hosts.keys()].join(', ')})`);

  const ageKey = flag(args, 'age-key');
  const secretsFile = flag(args, 'secrets') ?? env['FORSETI_SECRETS_FILE'];
  let secrets: Secrets;
  try {
    secrets = await (await Secrets.load(secretsFile, env, ageKey ? { ageKeyFile: ageKey } : {})).withLab(labDir);
  } catch (e) {
    err(`forseti bmc: cannot read the credentials (${secretsFile ?? 'no secrets file'}, ${labDir}/secrets.sops.yaml): ${errorMessage(e)}\n`);
    return 1;
  }
  redactor.set('secrets', secrets.values());
  const sink = new Writable({ write: (chunk, _encoding, done) => (rawErr(String(chunk)), done()) });
  const log = createLogger({ level: env['FORSETI_LOG_LEVEL'] ?? 'warn', destination: sink, redactor });
  const instructions: string[] = [];
  let driver: BmcDriver;
  try {
    // This command's own BMC state: nothing is shared with an agent or another command in this process.
    driver = createDriver(host, secrets, { minIntervalMs: 0, timeoutMs: 20_000, retries: 1 }, log, { state: new BmcState(), site: lab.site, onInstruction: (i) => instructions.push(i.text) });
  } catch (e) {
    err(`forseti bmc: ${e instanceof CredentialMissingError ? e.message : `host ${host.name}: ${errorMessage(e)}`}\n`);
    return 1;
  }
  try {
    const result = await run(driver, op as Operation, host);
    const report = { host: host.name, bmc: describeBmc(host), operation: op, ...result, ...(instructions.length > 0 && { operator: instructions }) };
    out(json ? `${JSON.stringify(report, null, 2)}\n` : human(report));
    return 0;
  } catch (e) {
    // Whatever went wrong talking to the BMC is a BMC failure (exit 1), never a usage error (exit 2).
    if (e instanceof UsageError) throw e;
    err(`forseti bmc: ${isBmcError(e) ? e.message : `host ${host.name}: ${errorMessage(e)}`}\n`);
    return 1;
  } finally {
    await driver.close?.();
  }
}

interface Result {
  power?: PowerState;
  bootOverride?: BootOverride | null;
  inventory?: Inventory;
}

async function run(driver: BmcDriver, op: Operation, host: Host): Promise<Result> {
  switch (op) {
    case 'status':
      return { power: await driver.powerState(), bootOverride: await driver.getBootOverride() };
    case 'on':
      await driver.powerOn();
      return { power: await driver.powerState() };
    case 'off':
      await driver.powerOff();
      return { power: await driver.powerState() };
    case 'cycle':
      await driver.powerCycle();
      return { power: await driver.powerState() };
    case 'pxe':
    case 'disk':
      await driver.setBootOverride({ device: op, persistent: false, mode: host.hardware.firmware });
      return { bootOverride: await driver.getBootOverride() };
    case 'inventory':
      if (!driver.inventory) throw new BmcCommandError(host.name, describeBmc(host).display, 'inventory', `the ${driver.kind} driver cannot read an inventory`);
      return { inventory: await driver.inventory() };
  }
}

function describeBmc(host: Host): { type: string; address?: string; port?: number; bay?: number; display: string } {
  const b = host.bmc;
  const bay = b.type === 'hp-oa' ? host.enclosure?.bay : undefined;
  const where = b.address ? `${b.address}${b.port ? `:${b.port}` : ''}${bay !== undefined ? ` bay ${bay}` : ''}` : b.type === 'wol' ? `wake ${host.macs[0] ?? '?'}` : '';
  return { type: b.type, ...(b.address && { address: b.address }), ...(b.port && { port: b.port }), ...(bay !== undefined && { bay }), display: `${b.type}${where ? ` ${where}` : ''}` };
}

function human(report: { host: string; bmc: { display: string }; operation: string; operator?: string[] } & Result): string {
  const lines: string[] = [];
  const boot = (o: BootOverride | null | undefined): string => (o ? `${o.device} (${o.persistent ? 'persistent' : 'next boot only'}${o.mode ? `, ${o.mode}` : ''})` : 'none');
  const head = `${report.host} (${report.bmc.display})`;
  switch (report.operation) {
    case 'status':
      lines.push(`${head}: power ${report.power}, boot override ${boot(report.bootOverride)}`);
      break;
    case 'pxe':
    case 'disk':
      lines.push(`${head}: boot override ${boot(report.bootOverride)}`);
      break;
    case 'inventory':
      lines.push(`${head}:`);
      for (const [key, value] of Object.entries(report.inventory ?? {})) lines.push(`  ${key}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`);
      break;
    default:
      lines.push(`${head}: ${report.operation} done, power ${report.power}`);
  }
  for (const instruction of report.operator ?? []) lines.push(`  operator: ${instruction}`);
  return `${lines.join('\n')}\n`;
}

/** Every BMC failure kind (unreachable, auth, TLS, command, read-back, power) and a missing credential. */
function isBmcError(e: unknown): e is Error {
  return e instanceof BmcError || e instanceof CredentialMissingError;
}
