// `forseti image add NAME KERNEL-URL [INITRD-URL...]` and `forseti image add NAME --talos VERSION [--schematic ID |
// --extension E ...]`: downloads each file once, hashing it as it streams, and writes images/NAME.yaml with the
// real sha256 values. Every download is bounded (--max-size, --timeout without data, --max-time overall).
import { closeSync, constants, mkdirSync, openSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LabTree, printablePath } from '../../model/lab-tree.ts';
import { validatorFor } from '../../model/schemas.ts';
import { flag, parseArgs, UsageError } from '../args.ts';
import { downloadSha256, DownloadError, type DownloadLimits } from './download.ts';
import { schemaLine } from './init-files.ts';
import { progressReport } from './progress.ts';
import { checkTalosRequest, createSchematic, DEFAULT_FACTORY, DEFAULT_SCHEMATIC, factoryCmdline, TalosFactoryError, talosBootUrls } from './talos-factory.ts';

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MiB = 1024 * 1024;

interface Source {
  label: string;
  url: string;
}

interface Plan {
  kernel: Source;
  initrds: Source[];
  /** Comment lines above the files: where they came from. */
  notes: string[];
}

export async function imageCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'add') throw new UsageError('usage: forseti image add NAME KERNEL-URL [INITRD-URL...] | forseti image add NAME --talos VERSION [--schematic ID | --extension E ...]');
  const extensions = repeated(rest, 'extension');
  const args = parseArgs(withoutRepeated(rest, 'extension'), ['force']);
  const [name, ...urls] = args.positional;
  if (!name) throw new UsageError('image add needs a NAME');
  if (!NAME.test(name)) throw new UsageError(`image name "${name}" must be a lower-case DNS label (a-z, 0-9 and '-')`);
  const limits: DownloadLimits = {
    maxBytes: number(args, 'max-size', 2048) * MiB,
    idleMs: number(args, 'timeout', 30) * 1000,
    totalMs: number(args, 'max-time', 3600) * 1000,
  };
  const lab = resolve(flag(args, 'lab') ?? '.');
  const file = join(lab, 'images', `${name}.yaml`);
  const tree = new LabTree(lab);
  const imagesDir = tree.listDir('images').refusal;
  const existing = tree.entryKind(`images/${name}.yaml`);
  if (imagesDir || (existing !== 'missing' && existing !== 'file')) {
    return fail(`${printablePath(file)}: ${imagesDir?.message ?? 'not a regular file (a link, a directory, a FIFO or a device); forseti writes regular files only'}`);
  }
  if (existing === 'file' && !args.flags.has('force')) {
    process.stderr.write(`forseti image add: ${file} exists; add --force to replace it\n`);
    return 2;
  }
  let plan: Plan;
  try {
    plan = flag(args, 'talos') !== undefined ? await talosPlan(args, extensions, limits) : urlPlan(urls);
  } catch (err) {
    if (err instanceof TalosFactoryError || err instanceof DownloadError) return fail(err.message);
    throw err;
  }
  // Each URL once, whatever the number of times it is named.
  const digests = new Map<string, { sha256: string; bytes: number }>();
  for (const source of [plan.kernel, ...plan.initrds]) {
    if (digests.has(source.url)) continue;
    const report = progressReport(source.label, source.url);
    try {
      const got = await downloadSha256(source.url, limits, (p) => report.update(p));
      report.done(`${got.bytes} bytes, sha256 ${got.sha256}`);
      digests.set(source.url, got);
    } catch (err) {
      report.done('failed');
      if (err instanceof DownloadError) return fail(err.message);
      throw err;
    }
  }
  const text = imageYaml(lab, name, plan, (url) => digests.get(url)?.sha256 ?? '');
  const validate = validatorFor('Image');
  if (!validate((await import('yaml')).parse(text))) return fail(`the image file would not validate: ${JSON.stringify(validate.errors)}`);
  mkdirSync(join(lab, 'images'), { recursive: true });
  // O_NOFOLLOW: a link put there meanwhile is not written through
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  process.stdout.write(`wrote ${file}\n`);
  return 0;
}

function urlPlan(urls: string[]): Plan {
  const [kernel, ...initrds] = urls;
  if (!kernel) throw new UsageError('image add needs a kernel URL (then the initrd URLs), or --talos VERSION');
  for (const url of urls) {
    if (!/^(https?|file):\/\/\S+$/.test(url)) throw new UsageError(`${url}: an image file is an http://, https:// or file:// URL`);
  }
  return { kernel: { label: 'kernel', url: kernel }, initrds: initrds.map((url, i) => ({ label: initrds.length > 1 ? `initrd ${i + 1}` : 'initrd', url })), notes: [] };
}

async function talosPlan(args: ReturnType<typeof parseArgs>, extensions: string[], limits: DownloadLimits): Promise<Plan> {
  const version = flag(args, 'talos') ?? '';
  const given = flag(args, 'schematic');
  if (args.positional.length > 1) throw new UsageError('with --talos the factory gives the URLs: no URLs after the name');
  checkTalosRequest(version, given, extensions);
  const factory = flag(args, 'factory') ?? DEFAULT_FACTORY;
  const arch = flag(args, 'arch') ?? 'amd64';
  if (!/^(amd64|arm64)$/.test(arch)) throw new UsageError(`--arch ${arch}: amd64 or arm64`);
  const schematic = given ?? (extensions.length > 0 ? await createSchematic(factory, extensions, limits.idleMs) : DEFAULT_SCHEMATIC);
  if (extensions.length > 0) process.stderr.write(`schematic ${schematic} (${extensions.join(', ')}) from ${factory}\n`);
  const urls = talosBootUrls(factory, schematic, version, arch);
  const cmdline = await factoryCmdline(urls.cmdline, limits.idleMs);
  return {
    kernel: { label: 'kernel', url: urls.kernel },
    initrds: [{ label: 'initramfs', url: urls.initrd }],
    notes: [
      `Talos ${version} (${arch}) from the Image Factory ${factory}, schematic ${schematic}${extensions.length ? `: ${[...extensions].sort().join(', ')}` : given ? '' : ' (no customization)'}.`,
      ...(cmdline ? [`The factory's kernel arguments for bare metal (for the profile's cmdline): ${cmdline}`] : []),
    ],
  };
}

function imageYaml(lab: string, name: string, plan: Plan, sha: (url: string) => string): string {
  const header = schemaHeader(lab);
  const file = (s: Source, indent: string): string => `${indent}url: ${s.url}\n${indent.replace(/-/g, ' ')}sha256: ${sha(s.url)}\n`;
  const initrds = plan.initrds.length === 1 && plan.initrds[0]
    ? `initrd:\n${file(plan.initrds[0], '  ')}`
    : plan.initrds.length > 1 ? `initrds:\n${plan.initrds.map((s) => file(s, '  - ')).join('')}` : '';
  return `${header}apiVersion: forseti/v1\nkind: Image\nname: ${name}\n${plan.notes.map((n) => `# ${n}\n`).join('')}# Checksums written by forseti image add on ${new Date().toISOString().slice(0, 10)}.\nkernel:\n${file(plan.kernel, '  ')}${initrds}`;
}

/**
 * The $schema line other image files of this lab use, else one for the lab's own schemas/, else none. Read through
 * the lab's tree reader: an images/ file that is a link out of the lab, a FIFO or /dev/zero is not read.
 */
function schemaHeader(lab: string): string {
  const tree = new LabTree(lab);
  const sibling = tree.listDir('images').entries.find((e) => e.kind !== 'dir' && e.name.endsWith('.yaml'));
  const first = sibling ? (tree.read(`images/${sibling.name}`).text ?? '').split('\n')[0] ?? '' : '';
  if (first.startsWith('# yaml-language-server: $schema=')) return `${first}\n`;
  return tree.entryKind('schemas/image.schema.json') === 'file' ? schemaLine('images/x.yaml', 'image') : '';
}

function number(args: ReturnType<typeof parseArgs>, name: string, fallback: number): number {
  const v = flag(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number`);
  return n;
}

function repeated(argv: string[], name: string): string[] {
  return argv.flatMap((a, i) => (a === `--${name}` ? [argv[i + 1] ?? ''] : a.startsWith(`--${name}=`) ? [a.slice(name.length + 3)] : [])).flatMap((v) => v.split(',')).filter(Boolean);
}

function withoutRepeated(argv: string[], name: string): string[] {
  return argv.filter((a, i) => a !== `--${name}` && argv[i - 1] !== `--${name}` && !a.startsWith(`--${name}=`));
}

function fail(message: string): number {
  process.stderr.write(`forseti image add: ${message}; nothing written\n`);
  return 1;
}
