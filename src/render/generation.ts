import { mkdir, readdir, rename, rm, symlink, writeFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab } from '../model/types.ts';
import { renderHost, RenderError, type RenderContext, type RenderedHost } from './host.ts';

/** One commit's rendered boot artifacts. Never modified after it is written; a new commit is a new generation. */
export interface Generation {
  id: string;
  revision: string;
  dir: string;
  lab: Lab;
  hosts: Map<string, RenderedHost>;
  /** Boot-NIC and other MACs (lower-case, colon form) to host name. */
  byMac: Map<string, string>;
}

export class RenderFailedError extends Error {
  constructor(readonly errors: RenderError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.name = 'RenderFailedError';
  }
}

export function renderLab(ctx: RenderContext): { hosts: Map<string, RenderedHost>; byMac: Map<string, string> } {
  const hosts = new Map<string, RenderedHost>();
  const byMac = new Map<string, string>();
  const errors: RenderError[] = [];
  for (const host of ctx.lab.hosts.values()) {
    try {
      hosts.set(host.name, renderHost(host, ctx));
      for (const mac of host.macs) byMac.set(mac, host.name);
    } catch (err) {
      if (err instanceof RenderError) errors.push(err);
      else throw err;
    }
  }
  if (errors.length > 0) throw new RenderFailedError(errors);
  return { hosts, byMac };
}

const KEEP_GENERATIONS = 5;
/** The rendered hosts of a generation: `{ revision, hosts: { name: RenderedHost } }`. */
export const GENERATION_FILE = 'hosts.json';

/**
 * Writes a generation next to the others and makes it current. The files land in a temporary directory that
 * is renamed into place, and `current` is a symlink replaced by rename: a reader sees the old generation or the
 * new one, never half of one.
 */
export async function writeGeneration(stateDir: string, ctx: RenderContext): Promise<Generation> {
  const { hosts, byMac } = renderLab(ctx);
  const root = join(stateDir, 'generations');
  await mkdir(root, { recursive: true });
  const id = `${ctx.revision.slice(0, 12)}-${Date.now().toString(36)}`;
  const tmp = join(root, `.tmp-${id}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  // One file for the whole generation: 10,000 hosts as 40,000 small files took seconds to write; the boot
  // services serve from memory, and this file is what a restart or an operator reads back. It holds host
  // tokens (on kernel command lines), hence mode 0600.
  await writeFile(join(tmp, GENERATION_FILE), JSON.stringify({ revision: ctx.revision, hosts: Object.fromEntries(hosts) }), { mode: 0o600 });
  await writeFile(join(tmp, 'revision'), `${ctx.revision}\n`);
  const dir = join(root, id);
  await rename(tmp, dir);
  const link = join(stateDir, `.current-${id}`);
  await symlink(join('generations', id), link);
  await rename(link, join(stateDir, 'current'));
  await pruneGenerations(root, id);
  return { id, revision: ctx.revision, dir, lab: ctx.lab, hosts, byMac };
}

async function pruneGenerations(root: string, keep: string): Promise<void> {
  const ids = (await readdir(root)).filter((n) => !n.startsWith('.')).sort((a, b) => generationTime(a) - generationTime(b));
  const stale = ids.filter((id) => id !== keep).slice(0, Math.max(0, ids.length - KEEP_GENERATIONS));
  for (const id of stale) await rm(join(root, id), { recursive: true, force: true });
}

function generationTime(id: string): number {
  return parseInt(id.slice(id.lastIndexOf('-') + 1), 36) || 0;
}

export async function currentGenerationDir(stateDir: string): Promise<string | null> {
  try {
    return join(stateDir, await readlink(join(stateDir, 'current')));
  } catch {
    return null;
  }
}
