import { link, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab } from '../model/types.ts';
import { renderHost, RenderError, type RenderContext, type RenderedHost } from './host.ts';
import { RenderFailedError } from './render-failed-error.ts';
import { LabRenderer } from './renderer.ts';
import type { AgentUrls } from './urls.ts';
import type { TalosBase } from './talos/base.ts';
import { errorMessage } from '../core/errors.ts';

export { RenderFailedError } from './render-failed-error.ts';

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

/** Renders every host from scratch (for one-shot callers; the agent keeps a GenerationWriter). */
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
/** A generation's manifest: `{ revision, shards: [file, …] }`. */
export const GENERATION_FILE = 'generation.json';
/**
 * Hosts are spread over this many shard files by a hash of their name, each `{ name: RenderedHost }`. A commit
 * that changes one host writes one shard; the others are hard links to the previous generation's files, so a
 * host's `desired.revision` in its shard is the revision it was last written at, and the generation's revision
 * is the manifest's (readGeneration applies it). One file per host took seconds to write at 10,000 hosts, one
 * file for all hosts ~60 ms (22 MB) for every commit.
 */
const SHARDS = 64;
/** A generation being written; renamed to its id when complete. */
const TMP_PREFIX = '.tmp-';
/** The new `current` link, renamed over `current`. */
const LINK_PREFIX = '.current-';

export interface GenerationWriterOptions {
  /**
   * Told when old generations or the leftovers of failed writes cannot be removed. The write itself has
   * succeeded by then (`current` already names the new generation); the next write tries again.
   * Default: a process warning.
   */
  onPruneError?: (err: unknown) => void;
}

/**
 * Writes generations commit after commit: hosts whose inputs did not change are not rendered again (LabRenderer),
 * and shards whose hosts did not change are linked from the previous generation instead of written. One writer
 * owns `stateDir`'s generations, and its writes are one after the other.
 */
export class GenerationWriter {
  private readonly renderer: LabRenderer;
  private readonly onPruneError: (err: unknown) => void;
  /** The last generation written: its directory and the file of each shard. */
  private previous: { dir: string; shards: Map<number, string> } | null = null;
  /** Whether the leftovers of an earlier process were removed (before this writer's first write). */
  private swept = false;

  constructor(private readonly stateDir: string, token: (host: string) => string, options: GenerationWriterOptions = {}) {
    this.renderer = new LabRenderer(token);
    this.onPruneError = options.onPruneError ?? ((err) => process.emitWarning(`forseti: old generations could not be removed: ${errorMessage(err)}`));
  }

  /**
   * Renders `lab` and writes it next to the other generations, then makes it current. The files land in a
   * temporary directory that is renamed into place, and `current` is a symlink replaced by rename: a reader sees
   * the old generation or the new one, never half of one. Throws RenderFailedError naming each host that fails.
   */
  async write(lab: Lab, revision: string, urls?: AgentUrls, talosBases?: ReadonlyMap<string, TalosBase>): Promise<Generation> {
    const { hosts, byMac } = this.renderer.render(lab, revision, urls, talosBases);
    const root = join(this.stateDir, 'generations');
    await mkdir(root, { recursive: true });
    if (!this.swept) {
      await this.removeLeftovers(root);
      this.swept = true;
    }
    const id = `${revision.slice(0, 12)}-${Date.now().toString(36)}`;
    const tmp = join(root, `${TMP_PREFIX}${id}`);
    const linkPath = join(this.stateDir, `${LINK_PREFIX}${id}`);
    const dir = join(root, id);
    let shards: Map<number, string>;
    try {
      shards = await this.writeShards(tmp, hosts);
      const files = [...shards].sort(([a], [b]) => a - b).map(([, file]) => file);
      await writeFile(join(tmp, GENERATION_FILE), JSON.stringify({ revision, shards: files }));
      await writeFile(join(tmp, 'revision'), `${revision}\n`);
      await rename(tmp, dir);
      await symlink(join('generations', id), linkPath);
      await rename(linkPath, join(this.stateDir, 'current'));
    } catch (err) {
      // a full disk fails every poll: each failed write must not leave another partial directory behind
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      await rm(linkPath, { force: true }).catch(() => undefined);
      throw err;
    }
    this.previous = { dir, shards };
    this.renderer.clearChanges();
    // `current` names the new generation now: what remains is housekeeping, whose failure fails nothing
    await this.removeLeftovers(root);
    await this.pruneGenerations(root, id);
    return { id, revision, dir, lab, hosts, byMac };
  }

  /**
   * Points `current` back at `generation` (null: no generation), after a later step of the commit whose generation
   * was written last failed: `current` names what is served. The written generation stays until pruned.
   */
  async restoreCurrent(generation: Pick<Generation, 'id' | 'dir'> | null): Promise<void> {
    const current = join(this.stateDir, 'current');
    if (!generation) {
      await rm(current, { force: true });
      return;
    }
    const linkPath = join(this.stateDir, `${LINK_PREFIX}${generation.id}`);
    try {
      await symlink(join('generations', generation.id), linkPath);
      await rename(linkPath, current);
    } catch (err) {
      await rm(linkPath, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** Writes each shard of hosts into `tmp`, or links it from the previous generation when its hosts did not change. */
  private async writeShards(tmp: string, hosts: Map<string, RenderedHost>): Promise<Map<number, string>> {
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });

    const grouped = new Map<number, string[]>();
    for (const name of hosts.keys()) {
      const shard = shardOf(name);
      const names = grouped.get(shard);
      if (names) names.push(name);
      else grouped.set(shard, [name]);
    }
    const dirty = new Set<number>();
    for (const name of this.renderer.changes) dirty.add(shardOf(name));
    const previous = this.previous;
    const shards = new Map<number, string>();
    // allSettled: no shard is still being written into `tmp` when a failed write removes it
    const written = await Promise.allSettled(
      [...grouped].map(async ([shard, names]) => {
        const file = `hosts-${shard.toString(16).padStart(2, '0')}.json`;
        shards.set(shard, file);
        const before = previous?.shards.get(shard);
        if (previous && before && !dirty.has(shard)) {
          try {
            await link(join(previous.dir, before), join(tmp, file));
            return;
          } catch {
            // the previous generation was removed meanwhile: write the shard
          }
        }
        // Rendered configs may carry secrets (a Talos PKI, a join token), hence mode 0600; tokens are never here.
        await writeFile(join(tmp, file), JSON.stringify(Object.fromEntries(names.map((name) => [name, hosts.get(name)]))), { mode: 0o600 });
      }),
    );
    const failed = written.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return shards;
  }

  /** Removes what failed writes (of this process or one that died) left: `.tmp-*` directories, `.current-*` links. */
  private async removeLeftovers(root: string): Promise<void> {
    const leftovers = [
      ...(await this.list(root)).filter((n) => n.startsWith(TMP_PREFIX)).map((n) => join(root, n)),
      ...(await this.list(this.stateDir)).filter((n) => n.startsWith(LINK_PREFIX)).map((n) => join(this.stateDir, n)),
    ];
    for (const path of leftovers) await rm(path, { recursive: true, force: true }).catch(this.onPruneError);
  }

  /** Removes all but the newest KEEP_GENERATIONS generations, never `keep` (the current one). */
  private async pruneGenerations(root: string, keep: string): Promise<void> {
    const ids = (await this.list(root)).filter((n) => !n.startsWith('.')).sort((a, b) => generationTime(a) - generationTime(b));
    const stale = ids.filter((id) => id !== keep).slice(0, Math.max(0, ids.length - KEEP_GENERATIONS));
    for (const id of stale) await rm(join(root, id), { recursive: true, force: true }).catch(this.onPruneError);
  }

  private async list(dir: string): Promise<string[]> {
    try {
      return await readdir(dir);
    } catch (err) {
      this.onPruneError(err);
      return [];
    }
  }
}

/** Renders and writes one generation from scratch. */
export async function writeGeneration(stateDir: string, ctx: RenderContext): Promise<Generation> {
  return new GenerationWriter(stateDir, ctx.token).write(ctx.lab, ctx.revision, ctx.urls);
}

/** The rendered hosts of a written generation, as they were in memory. */
export async function readGeneration(dir: string): Promise<{ revision: string; hosts: Map<string, RenderedHost> }> {
  const manifest = JSON.parse(await readFile(join(dir, GENERATION_FILE), 'utf8')) as { revision: string; shards: string[] };
  const hosts = new Map<string, RenderedHost>();
  for (const file of manifest.shards) {
    const shard = JSON.parse(await readFile(join(dir, file), 'utf8')) as Record<string, RenderedHost>;
    for (const [name, host] of Object.entries(shard)) hosts.set(name, { ...host, desired: { ...host.desired, revision: manifest.revision } });
  }
  return { revision: manifest.revision, hosts };
}

/** FNV-1a of the name: the same host lands in the same shard in every generation. */
function shardOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return (h >>> 0) % SHARDS;
}

function generationTime(id: string): number {
  return parseInt(id.slice(id.lastIndexOf('-') + 1), 36) || 0;
}
