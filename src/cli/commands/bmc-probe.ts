// `forseti bmc probe ADDRESS`: what BMC answers there, how it logs in, what it can do and which quirks it shows, and
// a ready `bmc:` block for the host file (valid against schemas/host.schema.json). The credential, when named, is
// resolved the way the agent resolves it (secrets file, environment, the lab's secrets.sops.yaml).
import { resolve } from 'node:path';
import { stringify } from 'yaml';
import { CredentialMissingError, Secrets } from '../../secrets/secrets.ts';
import { CREDENTIAL_PLACEHOLDER, probeBmc, PROBE_TYPES } from '../../bmc/probe.ts';
import type { ProbeOptions, ProbeReport, ProbeType } from '../../bmc/probe.ts';
import { Redactor } from '../../redact/redactor.ts';
import { terminalSafe } from '../../redact/terminal.ts';
import { flag, parseArgs, UsageError } from '../args.ts';
import type { BmcCommandIo } from './bmc.ts';
import { errorMessage } from '../../core/errors.ts';

export const PROBE_USAGE =
  'forseti bmc probe ADDRESS [--type auto|redfish|ipmi|hp-oa] [--port N] [--credential NAME] [--check-boot] [--json] [--secrets FILE] [--lab DIR] [--age-key FILE]';

/** As schemas/host.schema.json takes `bmc.address`. */
const ADDRESS = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/** Exit 0: a BMC answered (and took the credential, if one was named); 1: nothing answered, or the login failed; 2: usage. */
export async function bmcProbeCommand(argv: string[], io: BmcCommandIo = {}): Promise<number> {
  // A BMC may echo the login it was sent, or answer with terminal escape sequences: everything printed goes through
  // the redactor, then has its control characters escaped.
  const redactor = new Redactor();
  const out = (t: string): void => (io.stdout ?? ((x: string) => void process.stdout.write(x)))(terminalSafe(redactor.redact(t)));
  const err = (t: string): void => (io.stderr ?? ((x: string) => void process.stderr.write(x)))(terminalSafe(redactor.redact(t)));
  const env = io.env ?? process.env;
  const args = parseArgs(argv, ['json', 'check-boot']);
  const [address, ...extra] = args.positional;
  if (!address) throw new UsageError(`usage: ${PROBE_USAGE}`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (!ADDRESS.test(address)) throw new UsageError(`"${address}" is not an IPv4 address or a host name`);
  const type = flag(args, 'type') ?? 'auto';
  if (type !== 'auto' && !(PROBE_TYPES as readonly string[]).includes(type)) throw new UsageError(`--type must be auto, ${PROBE_TYPES.join(', ')}`);
  const portText = flag(args, 'port');
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new UsageError(`--port must be a port number, not "${portText}"`);

  const options: ProbeOptions = { type: type as ProbeType | 'auto', ...(port !== undefined ? { port } : {}), checkBoot: args.flags.get('check-boot') === true };
  const name = flag(args, 'credential');
  if (name !== undefined) {
    try {
      const ageKey = flag(args, 'age-key');
      let secrets = await Secrets.load(flag(args, 'secrets') ?? env['FORSETI_SECRETS_FILE'], env, ageKey ? { ageKeyFile: ageKey } : {});
      const lab = flag(args, 'lab');
      if (lab !== undefined) secrets = await secrets.withLab(resolve(lab));
      options.credential = { name, ...secrets.resolve(name) };
      redactor.set('secrets', [options.credential]);
    } catch (e) {
      err(`forseti bmc probe: ${e instanceof CredentialMissingError ? e.message : `cannot read the credentials: ${errorMessage(e)}`}\n`);
      return 1;
    }
  }

  const report = await probeBmc(address, options);
  out(args.flags.get('json') === true ? `${JSON.stringify(report, null, 2)}\n` : human(report));
  if (report.type === null) return 1;
  return report.auth?.startsWith('refused') ? 1 : 0;
}

function human(r: ProbeReport): string {
  const lines = [`forseti bmc probe ${r.address}`];
  for (const t of r.tried) lines.push(`  tried: ${t}`);
  if (r.type === null) return `${[...lines, ...r.notes.map((n) => `  ${n}`)].join('\n')}\n`;
  lines.push(`  answers: ${r.type}${r.transport ? ` over ${r.transport}` : ''}`);
  for (const i of r.identity) lines.push(`  ${i}`);
  if (r.auth) lines.push(`  login: ${r.auth}`);
  for (const c of r.capabilities) lines.push(`  can: ${c}`);
  for (const q of r.quirks) lines.push(`  quirk: ${q}`);
  for (const f of r.facts ?? []) lines.push(`  fact: ${f}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  lines.push('', '# for the host file (hosts/<name>.yaml):');
  if (r.bmc?.credential === CREDENTIAL_PLACEHOLDER) lines.push('# credential: the NAME of a credential the agent holds for this BMC (--credential NAME)');
  lines.push(stringify({ bmc: r.bmc }, { lineWidth: 0 }).trimEnd());
  if (r.type === 'hp-oa') lines.push(`enclosure: {name: ENCLOSURE, bay: ${r.bays?.[0] ?? 1}}${r.bays ? `  # populated bays: ${r.bays.join(', ')}` : ''}`);
  return `${lines.join('\n')}\n`;
}
