// `forseti discover oa|redfish|ipmi ADDRESS --credential NAME`: the machines behind an enclosure manager or a BMC,
// proposed as host files (role left to a human) that validate with the lab: written into the lab's hosts/, to a
// directory, or committed on a new branch of the lab repository. Machines the lab declares already are skipped.
// Credentials are resolved as `forseti bmc` resolves them; everything printed goes through the redactor.
import { resolve } from 'node:path';
import { CredentialMissingError, Secrets } from '../../secrets/secrets.ts';
import { probeBmc } from '../../bmc/probe.ts';
import { DiscoveryAnswerError, DiscoveryAuthError, DiscoveryUnreachableError, BranchRefusedError, FileExistsError } from '../../discover/errors.ts';
import type { MachineFacts } from '../../discover/facts.ts';
import { discoverIpmi } from '../../discover/from-ipmi.ts';
import { discoverOa } from '../../discover/from-oa.ts';
import type { Credential } from '../../discover/from-oa.ts';
import { discoverRedfish } from '../../discover/from-redfish.ts';
import { indexLab } from '../../discover/lab-index.ts';
import { NamePatternError, placeholdersOf } from '../../core/name-pattern.ts';
import { proposeHosts } from '../../discover/propose-host.ts';
import { openStage, loadStage, publish, stageProposals } from '../../discover/publish.ts';
import type { Destination, Stage } from '../../discover/publish.ts';
import { formatHuman, formatJson } from '../../discover/report.ts';
import type { RunReport } from '../../discover/report.ts';
import { ipv4ToNumber } from '../../model/ipv4.ts';
import type { Lab } from '../../model/types.ts';
import { Redactor } from '../../redact/redactor.ts';
import { terminalSafe } from '../../redact/terminal.ts';
import { flag, parseArgs, UsageError } from '../args.ts';
import type { BmcCommandIo } from './bmc.ts';
import { errorMessage } from '../../core/errors.ts';

export const DISCOVER_USAGE = `forseti discover oa|redfish|ipmi ADDRESS --credential NAME [--lab DIR] [--out DIR | --branch NAME] [--dry-run]
       [--name-pattern PATTERN] [--first-ip ADDR] [--port N] [--secrets FILE] [--age-key FILE] [--json]
  oa:   [--enclosure NAME] [--blade-bmc oa|ilo] [--ilo-credential NAME] [--ilo-port N]
  ipmi: --mac MAC[,MAC…] (IPMI does not report the host's NIC MACs)`;

type Kind = 'oa' | 'redfish' | 'ipmi';
const KINDS: readonly Kind[] = ['oa', 'redfish', 'ipmi'];

/** Placeholders of --name-pattern per kind; the default pattern, and the one used when a machine lacks its values. */
const PATTERNS: Record<Kind, { known: string[]; default: string; fallback: string }> = {
  oa: { known: ['enclosure', 'bay', 'address', 'serial', 'model', 'manufacturer', 'mac'], default: '{enclosure}-{bay:02}', fallback: '{enclosure}-{bay:02}' },
  redfish: { known: ['system', 'address', 'hostname', 'serial', 'model', 'manufacturer', 'mac'], default: '{serial}', fallback: '{address}-{system}' },
  ipmi: { known: ['address', 'serial', 'model', 'manufacturer', 'mac'], default: '{serial}', fallback: '{address}' },
};

const ADDRESS = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;
const MAC = /^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$/;

interface Options {
  kind: Kind;
  address: string;
  port: number | undefined;
  credential: string;
  labDir: string;
  destination: Destination;
  dryRun: boolean;
  json: boolean;
  namePattern: string | undefined;
  firstIp: string | undefined;
  enclosure: string | undefined;
  bladeBmc: 'oa' | 'ilo';
  iloCredential: string | undefined;
  iloPort: number | undefined;
  macs: string[];
  secretsFile: string | undefined;
  ageKey: string | undefined;
}

/**
 * Exit 0: every machine found was proposed (and written) or is declared already; 1: a machine was refused, the BMC
 * refused the credential or did not answer, or the lab is not valid (before, or with the proposals); 2: usage.
 */
export async function discoverCommand(argv: string[], io: BmcCommandIo = {}): Promise<number> {
  const redactor = new Redactor();
  // What a BMC answered is printed: control characters (terminal escape sequences) escaped.
  const out = (t: string): void => (io.stdout ?? ((x: string) => void process.stdout.write(x)))(terminalSafe(redactor.redact(t)));
  const err = (t: string): void => (io.stderr ?? ((x: string) => void process.stderr.write(x)))(terminalSafe(redactor.redact(t)));
  const env = io.env ?? process.env;
  const o = parseOptions(argv);
  const command = `forseti discover ${o.kind} ${o.address}${o.port !== undefined ? `:${o.port}` : ''}`;
  const report: RunReport = { command, found: [], proposals: [], notes: [], problems: [] };
  const finish = (code: number): number => {
    (o.json ? out : code === 0 ? out : err)(o.json ? formatJson(report) : formatHuman(report));
    return code;
  };

  let credential: Credential;
  let iloCredential: Credential | undefined;
  try {
    const secrets = await (await Secrets.load(o.secretsFile ?? env['FORSETI_SECRETS_FILE'], env, o.ageKey ? { ageKeyFile: o.ageKey } : {})).withLab(o.labDir);
    redactor.set('secrets', secrets.values());
    credential = { name: o.credential, ...secrets.resolve(o.credential) };
    if (o.iloCredential !== undefined) iloCredential = { name: o.iloCredential, ...secrets.resolve(o.iloCredential) };
  } catch (e) {
    report.error = `${command}: ${e instanceof CredentialMissingError ? e.message : `cannot read the credentials: ${errorMessage(e)}`}`;
    return finish(1);
  }

  let stage: Stage;
  try {
    stage = await openStage(o.labDir, o.destination);
  } catch (e) {
    report.error = `${command}: ${e instanceof BranchRefusedError ? e.message : `cannot read the lab in ${o.labDir}: ${errorMessage(e)}`}`;
    return finish(1);
  }
  try {
    const before = await loadStage(stage);
    if (!before.lab) {
      report.problems = before.problems;
      report.error = `${command}: the lab in ${o.labDir}${stage.git ? ' (HEAD)' : ''} is not valid; fix it before importing machines into it`;
      return finish(1);
    }
    try {
      const found = await collect(o, credential, iloCredential);
      report.notes.push(...found.notes);
      report.found = found.machines;
      if (o.kind === 'oa') nameEnclosure(found.machines, o, before.lab);
    } catch (e) {
      if (!(e instanceof DiscoveryAuthError || e instanceof DiscoveryUnreachableError || e instanceof DiscoveryAnswerError)) throw e;
      report.error = `${command}: ${e.message}`;
      return finish(1);
    }

    const pattern = PATTERNS[o.kind];
    const index = indexLab(before.lab, stage.hostFiles, stage.schemaComment);
    report.proposals = proposeHosts(report.found, index, {
      namePattern: o.namePattern ?? pattern.default,
      ...(o.namePattern === undefined ? { fallbackPattern: pattern.fallback } : {}),
      ...(o.firstIp !== undefined ? { firstIp: o.firstIp } : {}),
      command,
    });
    const files = new Map(report.proposals.flatMap((p) => (p.kind === 'proposed' ? [[p.file, p.yaml] as const] : [])));
    const refused = report.proposals.some((p) => p.kind === 'refused');
    if (files.size === 0) return finish(refused ? 1 : 0);

    const staged = await stageProposals(stage, files);
    if (!staged.lab) {
      report.problems = staged.problems;
      report.error = `${command}: the lab with the proposed hosts is not valid; nothing was written`;
      return finish(1);
    }
    if (o.dryRun) return finish(refused ? 1 : 0);
    try {
      const done = await publish(stage, files, commitMessage(command, [...files.keys()]));
      report.written = { destination: destinationText(o), paths: done.paths, ...(done.commit ? { commit: done.commit } : {}) };
      if (done.after && !done.after.lab) {
        report.problems = done.after.problems;
        report.error = `${command}: the lab in ${o.labDir} is not valid after the files were written (changed meanwhile?)`;
        return finish(1);
      }
    } catch (e) {
      if (!(e instanceof FileExistsError || e instanceof BranchRefusedError)) throw e;
      report.error = `${command}: ${e.message}; nothing was written`;
      return finish(1);
    }
    return finish(refused ? 1 : 0);
  } finally {
    await stage.close();
  }
}

const SWITCHES = ['json', 'dry-run'];

function parseOptions(argv: string[]): Options {
  const args = parseArgs(argv, SWITCHES);
  const [kind, address, ...extra] = args.positional;
  if (!kind || !address) throw new UsageError(`usage: ${DISCOVER_USAGE}`);
  if (!(KINDS as readonly string[]).includes(kind)) throw new UsageError(`discover what: ${KINDS.join(', ')}, not "${kind}"`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (!ADDRESS.test(address)) throw new UsageError(`"${address}" is not an IPv4 address or a host name`);
  const credential = flag(args, 'credential');
  if (!credential) throw new UsageError('--credential NAME is required: the credential the agent holds for this BMC');
  const outDir = flag(args, 'out');
  const branch = flag(args, 'branch');
  if (outDir !== undefined && branch !== undefined) throw new UsageError('--out and --branch exclude each other');
  const k = kind as Kind;
  const namePattern = flag(args, 'name-pattern');
  try {
    if (namePattern !== undefined) placeholdersOf(namePattern, PATTERNS[k].known);
  } catch (e) {
    if (e instanceof NamePatternError) throw new UsageError(e.message);
    throw e;
  }
  const firstIp = flag(args, 'first-ip');
  if (firstIp !== undefined && ipv4ToNumber(firstIp) === undefined) throw new UsageError(`--first-ip must be an IPv4 address, not "${firstIp}"`);
  const bladeBmc = flag(args, 'blade-bmc') ?? 'oa';
  if (bladeBmc !== 'oa' && bladeBmc !== 'ilo') throw new UsageError('--blade-bmc must be oa or ilo');
  const iloCredential = flag(args, 'ilo-credential');
  if (bladeBmc === 'ilo' && iloCredential === undefined) throw new UsageError('--blade-bmc ilo needs --ilo-credential NAME (the iLOs\' credential)');
  const macs = (flag(args, 'mac') ?? '').split(',').filter((m) => m !== '');
  for (const mac of macs) if (!MAC.test(mac)) throw new UsageError(`--mac: "${mac}" is not a MAC address`);
  const onlyFor: Array<[string, Kind]> = [['enclosure', 'oa'], ['blade-bmc', 'oa'], ['ilo-credential', 'oa'], ['ilo-port', 'oa'], ['mac', 'ipmi']];
  for (const [name, only] of onlyFor) if (args.flags.has(name) && k !== only) throw new UsageError(`--${name} applies to discover ${only} only`);
  return {
    kind: k,
    address,
    port: portFlag(flag(args, 'port'), '--port'),
    credential,
    labDir: resolve(flag(args, 'lab') ?? '.'),
    destination: branch !== undefined ? { kind: 'branch', name: branch } : outDir !== undefined ? { kind: 'out', dir: resolve(outDir) } : { kind: 'lab' },
    dryRun: args.flags.get('dry-run') === true,
    json: args.flags.get('json') === true,
    namePattern,
    firstIp,
    enclosure: flag(args, 'enclosure'),
    bladeBmc,
    iloCredential,
    iloPort: portFlag(flag(args, 'ilo-port'), '--ilo-port'),
    macs,
    secretsFile: flag(args, 'secrets'),
    ageKey: flag(args, 'age-key'),
  };
}

function portFlag(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`${name} must be a port number, not "${text}"`);
  return port;
}

async function collect(o: Options, credential: Credential, iloCredential: Credential | undefined): Promise<{ machines: MachineFacts[]; notes: string[] }> {
  const port = o.port !== undefined ? { port: o.port } : {};
  switch (o.kind) {
    case 'oa': {
      const probeIlo = iloCredential ? (address: string) => probeBmc(address, { type: 'redfish', ...(o.iloPort !== undefined ? { port: o.iloPort } : {}), credential: iloCredential }) : undefined;
      const machines = await discoverOa({ address: o.address, ...port, credential, bladeBmc: o.bladeBmc, ...(iloCredential ? { iloCredential } : {}), ...(o.iloPort !== undefined ? { iloPort: o.iloPort } : {}), ...(probeIlo ? { probeIlo } : {}) });
      return { machines, notes: [] };
    }
    case 'redfish':
      return discoverRedfish({ address: o.address, ...port, credential, probe: () => probeBmc(o.address, { type: 'redfish', ...port, credential }) });
    case 'ipmi':
      return { machines: await discoverIpmi({ address: o.address, ...port, credential, macs: o.macs }), notes: [] };
  }
}

/**
 * The enclosure's name in the lab: --enclosure, else the one the lab's hosts on this OA (or on these blades' iLOs)
 * declare. A lab that names none needs --enclosure.
 */
function nameEnclosure(machines: MachineFacts[], o: Options, lab: Lab): void {
  let name = o.enclosure;
  if (name === undefined) {
    const ilos = new Set(machines.map((m) => m.managementAddress?.toLowerCase()).filter((a) => a !== undefined));
    const names = new Set<string>();
    for (const host of lab.hosts.values()) {
      if (!host.enclosure) continue;
      const onThisOa = host.bmc.type === 'hp-oa' && host.bmc.address?.toLowerCase() === o.address.toLowerCase() && (host.bmc.port ?? 22) === (o.port ?? 22);
      const ownIlo = [host.bmc.address, host.labels['management-address']].some((a) => a !== undefined && ilos.has(a.toLowerCase()));
      if (onThisOa || ownIlo) names.add(host.enclosure.name);
    }
    if (names.size !== 1) {
      const why = names.size === 0 ? 'the lab declares no host in this enclosure' : `the lab's hosts name it ${[...names].join(' and ')}`;
      throw new UsageError(`name the enclosure with --enclosure NAME (${why})`);
    }
    name = [...names][0]!;
  }
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) throw new UsageError(`--enclosure must be a lower-case DNS label, not "${name}"`);
  for (const m of machines) {
    if (m.enclosure) m.enclosure.name = name;
    m.fields['enclosure'] = name;
    m.source = m.source.replace(/ bay (\d+)$/, ` (enclosure ${name}) bay $1`);
  }
}

function destinationText(o: Options): string {
  const d = o.destination;
  if (d.kind === 'lab') return `written into ${o.labDir}/hosts`;
  if (d.kind === 'out') return `written to ${d.dir}`;
  return `committed on the new branch ${d.name} of ${o.labDir}`;
}

function commitMessage(command: string, paths: string[]): string {
  return `Discovered: ${paths.length} proposed host${paths.length === 1 ? '' : 's'} (role off until set)\n\n${command}\n\n${paths.map((p) => `- ${p}`).join('\n')}\n`;
}
