// `forseti init [DIR]`: a new lab repository for the user's own network. The answers come from flags, or from
// prompts when stdin is a terminal (defaults from this machine's interfaces); the result validates, is committed
// as the first commit of a new Git repository (isomorphic-git: no git binary needed) and plans.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import * as fs from 'node:fs';
import git from 'isomorphic-git';
import { formatProblem, loadLab } from '../../model/load.ts';
import { ipv4ToNumber, numberToIpv4, parseSubnet } from '../../model/ipv4.ts';
import { flag, parseArgs, UsageError } from '../args.ts';
import { checkAnswers, DHCP_MODES, InitAnswerError, labRepositoryFiles, type DhcpMode, type InitAnswers } from './init-files.ts';

const FLAGS = { name: 'name', subnet: 'subnet', gateway: 'gateway', agentAddress: 'agent-address', dhcpMode: 'dhcp-mode', interface: 'interface' } as const;
type Field = keyof typeof FLAGS;

export async function initCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['force', 'no-git']);
  const dir = resolve(args.positional[0] ?? '.');
  if (existsSync(dir) && readdirSync(dir).length > 0 && !args.flags.has('force')) {
    process.stderr.write(`forseti init: ${dir} is not empty; choose an empty directory or add --force to write into it\n`);
    return 2;
  }
  const given: Partial<Record<Field, string>> = {};
  for (const [field, name] of Object.entries(FLAGS) as Array<[Field, string]>) {
    const value = flag(args, name);
    if (value !== undefined) given[field] = value;
  }
  const labUrl = flag(args, 'lab-url');
  const answers = process.stdin.isTTY ? await prompt(given, dir) : fromFlags(given, dir);
  const full: InitAnswers = { ...answers, ...(labUrl ? { labUrl } : {}) };
  try {
    checkAnswers(full);
  } catch (err) {
    if (err instanceof InitAnswerError) throw new UsageError(`forseti init: ${err.message}`);
    throw err;
  }
  const files = labRepositoryFiles(full);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  const { lab, problems } = await loadLab(dir);
  if (!lab) {
    for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
    process.stderr.write('forseti init: the new lab does not validate (a bug in forseti init; please report it)\n');
    return 1;
  }
  process.stdout.write(`wrote ${Object.keys(files).length} files to ${dir}\n`);
  if (!args.flags.has('no-git')) {
    const commit = await commitAll(dir, Object.keys(files), authorFromEnv());
    process.stdout.write(`committed ${commit.slice(0, 12)} on branch main ("forseti init")\n`);
  }
  process.stdout.write(`next: forseti image add NAME KERNEL-URL INITRD-URL, hosts in hosts/, then forseti validate ${args.positional[0] ?? '.'}\n`);
  return 0;
}

/** The machine's IPv4 interfaces (not loopback): what the prompts offer as defaults. */
function localNetworks(): Array<{ name: string; address: string; subnet: string }> {
  return Object.entries(networkInterfaces()).flatMap(([name, addrs]) =>
    (addrs ?? [])
      .filter((a) => a.family === 'IPv4' && !a.internal && a.cidr)
      .map((a) => {
        const s = parseSubnet(a.cidr ?? '');
        return { name, address: a.address, subnet: s ? `${numberToIpv4(s.network)}/${s.prefix}` : '' };
      })
      .filter((n) => n.subnet !== ''),
  );
}

function defaults(given: Partial<Record<Field, string>>, dir: string): Partial<Record<Field, string>> {
  const subnet = given.subnet;
  const local = localNetworks().find((n) => !subnet || n.subnet === subnet) ?? localNetworks()[0];
  const chosenSubnet = subnet ?? local?.subnet;
  const parsed = chosenSubnet ? parseSubnet(chosenSubnet) : undefined;
  const firstHost = parsed ? numberToIpv4(parsed.network + 1) : undefined;
  const inSubnet = local && parsed && ipv4ToNumber(local.address) !== undefined && local.subnet === chosenSubnet;
  return {
    name: dir.split('/').pop()?.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'lab',
    ...(chosenSubnet ? { subnet: chosenSubnet } : {}),
    ...(firstHost ? { gateway: firstHost } : {}),
    ...(inSubnet ? { agentAddress: local.address, interface: local.name } : {}),
    dhcpMode: 'proxy',
  };
}

function fromFlags(given: Partial<Record<Field, string>>, dir: string): Omit<InitAnswers, 'labUrl'> {
  const d = { ...defaults(given, dir), ...given };
  const missing = (['subnet', 'agentAddress', 'interface'] as const).filter((f) => given[f] === undefined).map((f) => `--${FLAGS[f]}`);
  if (missing.length > 0) throw new UsageError(`forseti init: stdin is not a terminal, so give ${missing.join(', ')} (and --gateway, --dhcp-mode ${DHCP_MODES.join('|')} if not ${d.gateway ?? 'the first address'} and proxy)`);
  return { name: d.name ?? 'lab', subnet: d.subnet ?? '', gateway: d.gateway ?? '', agentAddress: d.agentAddress ?? '', dhcpMode: (d.dhcpMode ?? 'proxy') as DhcpMode, interface: d.interface ?? '' };
}

const QUESTIONS: Record<Field, string> = {
  name: 'Lab name',
  subnet: 'Provisioning subnet (CIDR)',
  gateway: 'Gateway (the router)',
  agentAddress: "Agent's address on that subnet",
  dhcpMode: `DHCP mode (${DHCP_MODES.join('/')}; proxy keeps the router's DHCP server)`,
  interface: "Agent machine's interface on that subnet",
};

async function prompt(given: Partial<Record<Field, string>>, dir: string): Promise<Omit<InitAnswers, 'labUrl'>> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: false });
  // The iterator keeps lines typed (or pasted) ahead of their question.
  const lines = rl[Symbol.asyncIterator]();
  const answers: Partial<Record<Field, string>> = { ...given };
  try {
    for (const field of Object.keys(QUESTIONS) as Field[]) {
      if (answers[field] !== undefined) continue;
      // Defaults follow earlier answers (the gateway from the subnet).
      const fallback = defaults(answers, dir)[field];
      while (answers[field] === undefined) {
        process.stdout.write(`${QUESTIONS[field]}${fallback ? ` [${fallback}]` : ''}: `);
        const line = await lines.next();
        if (line.done) throw new UsageError(`forseti init: no answer for "${QUESTIONS[field]}"`);
        const reply = String(line.value).trim() || fallback;
        if (reply) answers[field] = reply;
      }
    }
  } finally {
    rl.close();
  }
  return { name: answers.name ?? 'lab', subnet: answers.subnet ?? '', gateway: answers.gateway ?? '', agentAddress: answers.agentAddress ?? '', dhcpMode: (answers.dhcpMode ?? 'proxy') as DhcpMode, interface: answers.interface ?? '' };
}

function authorFromEnv(): { name: string; email: string } {
  return { name: process.env.GIT_AUTHOR_NAME ?? 'forseti init', email: process.env.GIT_AUTHOR_EMAIL ?? 'forseti@localhost' };
}

async function commitAll(dir: string, paths: string[], author: { name: string; email: string }): Promise<string> {
  if (!existsSync(join(dir, '.git'))) await git.init({ fs, dir, defaultBranch: 'main' });
  for (const filepath of paths.sort()) await git.add({ fs, dir, filepath });
  return git.commit({ fs, dir, message: 'forseti init\n', author });
}
