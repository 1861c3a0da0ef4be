// The Talos Image Factory's HTTP frontend (the public instance is https://factory.talos.dev), as its README
// documents it (github.com/siderolabs/image-factory, "HTTP Frontend API"; talos.dev "Image Factory"):
//   POST /schematics                      body: a YAML or JSON schematic → {"id": "<64 hex digits>"}
//   GET  /image/:schematic/:version/:path  kernel-<arch>, initramfs-<arch>.xz, cmdline-metal-<arch>
// A schematic is content-addressed: the same extensions always give the same id.
import { DownloadError } from './download.ts';
import { errorMessage } from '../../core/errors.ts';

export const DEFAULT_FACTORY = 'https://factory.talos.dev';
/** The factory's well-known id of the schematic without customization. */
export const DEFAULT_SCHEMATIC = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';

const SCHEMATIC_ID = /^[0-9a-f]{64}$/;
const VERSION = /^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;
const EXTENSION = /^[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._-]*$/;
const ANSWER_LIMIT = 64 * 1024;

export class TalosFactoryError extends Error {
  override readonly name = 'TalosFactoryError';
  constructor(message: string) {
    super(message);
  }
}

export function checkTalosRequest(version: string, schematic: string | undefined, extensions: string[]): void {
  if (!VERSION.test(version)) throw new TalosFactoryError(`--talos ${version}: a Talos version looks like v1.10.1`);
  if (schematic !== undefined && !SCHEMATIC_ID.test(schematic)) throw new TalosFactoryError(`--schematic ${schematic}: a schematic id is 64 lower-case hexadecimal digits`);
  if (schematic !== undefined && extensions.length > 0) throw new TalosFactoryError('give either --schematic or --extension: the extensions make the schematic');
  for (const e of extensions) if (!EXTENSION.test(e)) throw new TalosFactoryError(`--extension ${e}: an official extension is named like siderolabs/intel-ucode`);
}

/** The schematic's YAML: official system extensions only, sorted, so equal sets give equal ids. */
export function schematicYaml(extensions: string[]): string {
  const list = [...new Set(extensions)].sort();
  return `customization:\n  systemExtensions:\n    officialExtensions:\n${list.map((e) => `      - ${e}\n`).join('')}`;
}

/** POST /schematics: the id of the schematic with these extensions. */
export async function createSchematic(factory: string, extensions: string[], timeoutMs: number): Promise<string> {
  const url = new URL('schematics', withSlash(factory));
  const res = await fetch(url, { method: 'POST', body: schematicYaml(extensions), headers: { 'Content-Type': 'application/yaml' }, signal: AbortSignal.timeout(timeoutMs) }).catch((err: unknown) => {
    throw new DownloadError(url.href, errorMessage(err));
  });
  const text = await boundedText(res, url.href);
  if (res.status !== 200 && res.status !== 201) throw new TalosFactoryError(`${url.href}: HTTP ${res.status}: ${text.trim().slice(0, 200)}`);
  let id: unknown;
  try {
    id = (JSON.parse(text) as { id?: unknown }).id;
  } catch {
    throw new TalosFactoryError(`${url.href}: the answer is not JSON`);
  }
  if (typeof id !== 'string' || !SCHEMATIC_ID.test(id)) throw new TalosFactoryError(`${url.href}: the answer has no schematic id`);
  return id;
}

export function talosBootUrls(factory: string, schematic: string, version: string, arch: string): { kernel: string; initrd: string; cmdline: string } {
  const base = new URL(`image/${schematic}/${version}/`, withSlash(factory));
  return { kernel: new URL(`kernel-${arch}`, base).href, initrd: new URL(`initramfs-${arch}.xz`, base).href, cmdline: new URL(`cmdline-metal-${arch}`, base).href };
}

/** The kernel arguments the factory gives for bare metal (a hint for the profile's cmdline); undefined if it does not say. */
export async function factoryCmdline(url: string, timeoutMs: number): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await boundedText(res, url);
    return res.status === 200 && /^[\x20-\x7e]+$/.test(text.trim()) ? text.trim() : undefined;
  } catch {
    return undefined;
  }
}

async function boundedText(res: Response, url: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > ANSWER_LIMIT) {
      await res.body?.cancel().catch(() => undefined);
      throw new TalosFactoryError(`${url}: the answer is larger than ${ANSWER_LIMIT} bytes`);
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
