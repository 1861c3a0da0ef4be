// The one way forseti reads a file on behalf of a commit: YAML documents, config templates, CA files and the SOPS
// file all come through `LabTree`. A path is resolved component by component below the tree's root, following
// symbolic links only while they stay inside the tree (never into a `.git` directory), without ever looking at
// anything outside it; the file must be a regular file (a FIFO or device is never opened), at most
// `maxFileBytes`, and all reads of one load together at most `maxLabBytes`. What is refused comes back as a
// `Refusal` the caller places at the YAML that named the path.

import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, realpathSync, type Stats } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DEFAULT_LAB_LIMITS, formatBytes, type LabLimits } from './lab-limits.ts';
import type { ProblemCode } from './problems.ts';
import { errorMessage } from '../core/errors.ts';

export interface Refusal {
  code: ProblemCode;
  message: string;
}

/** A file's text; `refusal` when it exists but may not or cannot be read; neither when it does not exist. */
export interface FileRead {
  text?: string;
  refusal?: Refusal;
  /** Bytes read (0 unless `text`). */
  bytes: number;
}

/** What a directory entry is, by lstat: a link is classified by what it leads to only when read. */
export type EntryKind = 'file' | 'link' | 'dir' | 'other' | 'missing';

export interface DirEntry {
  name: string;
  kind: EntryKind;
}

export interface LabTreeOptions {
  limits?: LabLimits;
  /** Called with the real path of every file opened, right after opening it (tests check where reads go). */
  onOpen?: (realPath: string) => void;
}

/**
 * What a load reads the lab through: the working tree (LabTree), or the same commit's files in memory, read from the
 * object store (SnapshotTree, src/model/snapshot-tree.ts). Either answers every call as the other would.
 */
export interface LabFiles {
  /** The working tree's absolute path (named in messages). */
  readonly root: string;
  readonly limits: LabLimits;
  /** Bytes read so far by this load (a caller continuing from an earlier load may start it higher). */
  used: number;
  read(path: string): FileRead;
  listDir(path: string): { entries: DirEntry[]; refusal?: Refusal };
  entryKind(path: string): EntryKind;
  pathsWithControlChars(): string[];
}

/** The reads of one load went past `maxLabBytes`: the load stops at `file`. */
export class LabTooLargeError extends Error {
  override readonly name = 'LabTooLargeError';
  constructor(readonly file: string, readonly limit: number) {
    super(`the lab is larger than ${formatBytes(limit)} (the files forseti reads, together); reading ${printablePath(file)} would go past it`);
  }
}

/** Control characters (C0, DEL, C1) and the Unicode line and paragraph separators. */
export const CONTROL_CHAR = /[\p{Cc}\p{Zl}\p{Zp}]/u;
const MAX_LINK_HOPS = 40;

/** `path` with control characters and backslashes escaped, safe to print on one line. */
export function printablePath(path: string): string {
  return path.replace(/[\p{Cc}\p{Zl}\p{Zp}\\]/gu, (c) => {
    if (c === '\\') return '\\\\';
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** `U+000A` for the first control character of `text`, if any. */
export function firstControlChar(text: string): { offset: number; name: string } | undefined {
  const m = CONTROL_CHAR.exec(text);
  return m ? { offset: m.index, name: `U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}` } : undefined;
}

/**
 * Why a path named in the lab can never be read, before looking at the disk: control characters, absolute, `..`,
 * `.git`. Refusal messages speak of "the path" or "the file": the caller shows which (at the file, or as
 * `field "path": message` where the lab names it).
 */
export function pathRefusal(path: string): Refusal | undefined {
  const control = firstControlChar(path);
  if (control) return { code: 'unsafe-path', message: `the path contains a control character (${control.name})` };
  if (path === '') return { code: 'unsafe-path', message: 'the path is empty' };
  if (path.startsWith('/') || isAbsolute(path)) return { code: 'unsafe-path', message: 'the path is absolute; it must be relative to the lab repository root' };
  const parts = path.split('/');
  if (parts.includes('..')) return { code: 'unsafe-path', message: "the path contains '..'; it must stay inside the lab repository" };
  if (parts.some(isGitDir)) return { code: 'unsafe-path', message: 'the path names a .git directory, which is not part of the lab' };
  return undefined;
}

export function isGitDir(name: string): boolean {
  return name.toLowerCase() === '.git';
}

type Resolved = { kind: 'found'; real: string; stats: Stats } | { kind: 'missing' } | { kind: 'refused'; refusal: Refusal };

/** A working tree of the lab repository, read only through here. One instance per load: it counts the bytes read. */
export class LabTree implements LabFiles {
  readonly root: string;
  private readonly realRoot: string | null;
  readonly limits: LabLimits;
  private readonly onOpen: ((realPath: string) => void) | undefined;
  /** Bytes read so far by this load (a caller continuing from an earlier load may start it higher). */
  used = 0;
  /**
   * Directories resolved by this load (`hosts` of `hosts/h1.yaml`): 10,000 files in one directory resolve it once,
   * not once each. A load reads a tree nothing else writes meanwhile (the source moves it only between loads).
   */
  private readonly dirs = new Map<string, Resolved>();

  constructor(dir: string, options: LabTreeOptions = {}) {
    this.root = resolve(dir);
    this.limits = options.limits ?? DEFAULT_LAB_LIMITS;
    this.onOpen = options.onOpen;
    let real: string | null;
    try {
      real = realpathSync(this.root);
    } catch {
      real = null; // no tree: every file is missing
    }
    this.realRoot = real;
  }

  /**
   * Reads `path` (relative to the root, forward slashes). Throws LabTooLargeError when the file would take the
   * load past `maxLabBytes`; everything else that prevents the read is a refusal.
   */
  read(path: string): FileRead {
    const unsafe = pathRefusal(path);
    if (unsafe) return { refusal: unsafe, bytes: 0 };
    const found = this.resolve(path);
    if (found.kind === 'missing') return { bytes: 0 };
    if (found.kind === 'refused') return { refusal: found.refusal, bytes: 0 };
    const { real, stats } = found;
    if (!stats.isFile()) return { refusal: notRegular(stats), bytes: 0 };
    const { maxFileBytes, maxLabBytes } = this.limits;
    if (stats.size > maxFileBytes) return { refusal: tooLarge(stats.size, maxFileBytes), bytes: 0 };
    if (this.used + stats.size > maxLabBytes) throw new LabTooLargeError(path, maxLabBytes);
    let fd: number;
    try {
      // O_NOFOLLOW: the path has no links left; O_NONBLOCK: should a FIFO appear here after all, opening it does not wait.
      fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      return { refusal: readError(err), bytes: 0 };
    }
    try {
      this.onOpen?.(real);
      const opened = fstatSync(fd);
      if (!opened.isFile() || opened.ino !== stats.ino || opened.dev !== stats.dev) {
        return { refusal: { code: 'unsafe-path', message: 'the file changed while it was being read' }, bytes: 0 };
      }
      const buffer = readUpTo(fd, opened.size, maxFileBytes + 1);
      if (buffer.length > maxFileBytes) return { refusal: tooLarge(buffer.length, maxFileBytes), bytes: 0 };
      if (this.used + buffer.length > maxLabBytes) throw new LabTooLargeError(path, maxLabBytes);
      this.used += buffer.length;
      return { text: buffer.toString('utf8'), bytes: buffer.length };
    } catch (err) {
      if (err instanceof LabTooLargeError) throw err;
      return { refusal: readError(err), bytes: 0 };
    } finally {
      closeSync(fd);
    }
  }

  /** The entries of directory `path` (a link to a directory inside the tree counts), sorted by name. */
  listDir(path: string): { entries: DirEntry[]; refusal?: Refusal } {
    const unsafe = pathRefusal(path);
    if (unsafe) return { entries: [], refusal: unsafe };
    const found = this.resolve(path);
    if (found.kind === 'missing') return { entries: [] };
    if (found.kind === 'refused') return { entries: [], refusal: found.refusal };
    if (!found.stats.isDirectory()) return { entries: [], refusal: notADirectory() };
    try {
      const entries = readdirSync(found.real, { withFileTypes: true }).map((e) => ({ name: e.name, kind: kindOf(e) }));
      return { entries: entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) };
    } catch (err) {
      return { entries: [], refusal: readError(err) };
    }
  }

  /**
   * What `path` itself is (its last component is not followed), its directories resolved inside the tree. Throws
   * on file system errors other than "no such file" (a name too long, permissions).
   */
  entryKind(path: string): EntryKind {
    if (pathRefusal(path) || this.realRoot === null) return 'missing';
    const slash = path.lastIndexOf('/');
    const parent = slash < 0 ? { kind: 'found' as const, real: this.realRoot } : this.resolve(path.slice(0, slash));
    if (parent.kind !== 'found') return 'missing';
    try {
      return kindOf(lstatSync(join(parent.real, path.slice(slash + 1))));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
      throw err;
    }
  }

  /**
   * Every path below the root (not below `.git`) whose name has a control character, printable, sorted. Links are
   * not followed. forseti refuses such a tree whole: its paths cannot be shown or named safely.
   */
  pathsWithControlChars(): string[] {
    const found: string[] = [];
    if (this.realRoot === null) return found;
    const walk = (dir: string, rel: string): void => {
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        if (rel === '' && isGitDir(entry.name)) continue;
        const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
        if (CONTROL_CHAR.test(entry.name)) found.push(printablePath(path));
        else if (entry.isDirectory()) walk(join(dir, entry.name), path);
      }
    };
    walk(this.realRoot, '');
    return found.sort();
  }

  /**
   * Resolves `path` below the root as the kernel would, one component at a time, expanding each link into its
   * target: a `..` above the root, an absolute target elsewhere, or a `.git` component ends it as outside, before
   * anything outside is looked at (so not even whether a file exists there can be learned).
   */
  private resolve(path: string): Resolved {
    const slash = path.lastIndexOf('/');
    const name = path.slice(slash + 1);
    if (slash <= 0 || name === '' || name === '.' || name === '..' || isGitDir(name)) return this.resolveWhole(path);
    const dirPath = path.slice(0, slash);
    let dir = this.dirs.get(dirPath);
    if (!dir) {
      dir = this.resolveWhole(dirPath);
      this.dirs.set(dirPath, dir);
    }
    if (dir.kind !== 'found' || !dir.stats.isDirectory()) return this.resolveWhole(path);
    const at = join(dir.real, name);
    const found = lstatEntry(at);
    if (found.kind !== 'found') return found;
    // A link is followed (and checked) component by component, as without the cache.
    return found.stats.isSymbolicLink() ? this.resolveWhole(path) : found;
  }

  private resolveWhole(path: string): Resolved {
    const realRoot = this.realRoot;
    if (realRoot === null) return { kind: 'missing' };
    const outside = (): Resolved => ({ kind: 'refused', refusal: { code: 'unsafe-path', message: 'the path leads outside the lab repository (through a symbolic link, or into .git); forseti reads only files inside it' } });
    const pending = path.split('/');
    const current: string[] = [];
    let stats: Stats;
    try {
      stats = lstatSync(realRoot);
    } catch {
      return { kind: 'missing' };
    }
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.shift() ?? '';
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (current.length === 0) return outside();
        current.pop();
        continue;
      }
      if (isGitDir(part)) return outside();
      if (!stats.isDirectory() && current.length > 0) return { kind: 'missing' };
      const at = join(realRoot, ...current, part);
      const entry = lstatEntry(at);
      if (entry.kind !== 'found') return entry;
      stats = entry.stats;
      if (!stats.isSymbolicLink()) {
        current.push(part);
        continue;
      }
      if (++hops > MAX_LINK_HOPS) return { kind: 'refused', refusal: { code: 'unsafe-path', message: 'the path goes through too many levels of symbolic links' } };
      let target: string;
      try {
        target = readlinkSync(at);
      } catch (err) {
        return { kind: 'refused', refusal: readError(err) };
      }
      if (isAbsolute(target)) {
        const rel = relative(realRoot, target);
        if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return outside();
        current.length = 0;
        pending.unshift(...rel.split(sep));
      } else pending.unshift(...target.split('/'));
      try {
        stats = lstatSync(join(realRoot, ...current));
      } catch (err) {
        return { kind: 'refused', refusal: readError(err) };
      }
    }
    return { kind: 'found', real: join(realRoot, ...current), stats };
  }
}

function kindOf(entry: { isFile(): boolean; isSymbolicLink(): boolean; isDirectory(): boolean }): EntryKind {
  if (entry.isFile()) return 'file';
  if (entry.isSymbolicLink()) return 'link';
  if (entry.isDirectory()) return 'dir';
  return 'other';
}

/** Reads at most `limit` bytes: the size fstat gave plus one (to see a file that grew), then more only if it did. */
function readUpTo(fd: number, size: number, limit: number): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < limit) {
    const want = Math.min(total === 0 ? size + 1 : 64 * 1024, limit - total);
    const chunk = Buffer.allocUnsafe(want);
    const n = readSync(fd, chunk, 0, want, null);
    if (n === 0) break;
    chunks.push(n === want ? chunk : chunk.subarray(0, n));
    total += n;
    if (n < want) break; // a regular file read short: its end (one read per file, not two, at 10,000 files)
  }
  return chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, total);
}

function notRegular(stats: Stats): Refusal {
  return notRegularFile(stats.isDirectory() ? 'a directory' : stats.isFIFO() ? 'a FIFO' : stats.isSocket() ? 'a socket' : stats.isCharacterDevice() || stats.isBlockDevice() ? 'a device' : 'not a file');
}

/** `what`: 'a directory', 'a FIFO', ... */
export function notRegularFile(what: string): Refusal {
  return { code: 'unsafe-path', message: `the path names ${what}; forseti reads regular files only` };
}

export function notADirectory(): Refusal {
  return { code: 'read-error', message: 'cannot list it: it is not a directory' };
}

export function tooLarge(size: number, limit: number): Refusal {
  return { code: 'file-too-large', message: `the file is ${formatBytes(size)}, larger than the ${formatBytes(limit)} a lab file may be` };
}

/** An entry as lstat sees it: missing (it or a parent is not there), refused (cannot be read), or found. */
function lstatEntry(at: string): Resolved {
  try {
    return { kind: 'found', real: at, stats: lstatSync(at) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing' };
    return { kind: 'refused', refusal: readError(err) };
  }
}

function readError(err: unknown): Refusal {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return { code: 'read-error', message: `cannot read it: ${code ?? errorMessage(err)}` };
}
