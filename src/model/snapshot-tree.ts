// The lab as a load reads it, from a commit's files in memory (src/source/commit-snapshot.ts) instead of the working
// tree: a process's first load, whose tree git writes only after it. Every answer is the one
// LabTree gives for that commit checked out (the same refusals, limits and byte counts); a snapshot holds no links
// (a commit with one is read from the working tree), so no path can lead anywhere else.
import { join, resolve } from 'node:path';
import type { CommitSnapshot } from '../source/commit-snapshot.ts';
import { DEFAULT_LAB_LIMITS, type LabLimits } from './lab-limits.ts';
import {
  CONTROL_CHAR,
  isGitDir,
  LabTooLargeError,
  LabTree,
  notADirectory,
  notRegularFile,
  pathRefusal,
  printablePath,
  tooLarge,
  type DirEntry,
  type EntryKind,
  type FileRead,
  type LabFiles,
  type LabTreeOptions,
  type Refusal,
} from './lab-tree.ts';

export class SnapshotTree implements LabFiles {
  readonly root: string;
  readonly limits: LabLimits;
  used = 0;
  private readonly onOpen: ((realPath: string) => void) | undefined;
  /** Each directory's entries, sorted by name: made at the first listing. */
  private children: Map<string, DirEntry[]> | null = null;

  /** `dir`: the working tree that holds (or will hold) the snapshot's commit (named in messages, as LabTree's root). */
  constructor(dir: string, private readonly snapshot: CommitSnapshot, options: LabTreeOptions = {}) {
    this.root = resolve(dir);
    this.limits = options.limits ?? DEFAULT_LAB_LIMITS;
    this.onOpen = options.onOpen;
  }

  read(path: string): FileRead {
    const unsafe = pathRefusal(path);
    if (unsafe) return { refusal: unsafe, bytes: 0 };
    const key = normalized(path);
    const content = this.snapshot.files.get(key);
    if (content === undefined) return this.snapshot.dirs.has(key) ? { refusal: notRegularFile('a directory'), bytes: 0 } : { bytes: 0 };
    const { maxFileBytes, maxLabBytes } = this.limits;
    if (content.length > maxFileBytes) return { refusal: tooLarge(content.length, maxFileBytes), bytes: 0 };
    if (this.used + content.length > maxLabBytes) throw new LabTooLargeError(path, maxLabBytes);
    this.onOpen?.(join(this.root, key));
    this.used += content.length;
    return { text: content.toString('utf8'), bytes: content.length };
  }

  listDir(path: string): { entries: DirEntry[]; refusal?: Refusal } {
    const unsafe = pathRefusal(path);
    if (unsafe) return { entries: [], refusal: unsafe };
    const key = normalized(path);
    if (this.snapshot.files.has(key)) return { entries: [], refusal: notADirectory() };
    return { entries: [...(this.listing().get(key) ?? [])] };
  }

  entryKind(path: string): EntryKind {
    if (pathRefusal(path)) return 'missing';
    const key = normalized(path);
    return this.snapshot.files.has(key) ? 'file' : this.snapshot.dirs.has(key) ? 'dir' : 'missing';
  }

  pathsWithControlChars(): string[] {
    const found = new Set<string>();
    for (const path of [...this.snapshot.files.keys(), ...this.snapshot.dirs]) {
      if (!CONTROL_CHAR.test(path)) continue;
      const parts = path.split('/');
      if (isGitDir(parts[0] ?? '')) continue;
      const bad = parts.findIndex((part) => CONTROL_CHAR.test(part));
      found.add(printablePath(parts.slice(0, bad + 1).join('/')));
    }
    return [...found].sort();
  }

  private listing(): Map<string, DirEntry[]> {
    if (this.children) return this.children;
    const children = new Map<string, DirEntry[]>();
    const add = (path: string, kind: EntryKind): void => {
      const slash = path.lastIndexOf('/');
      const parent = slash < 0 ? '' : path.slice(0, slash);
      const list = children.get(parent);
      const entry = { name: path.slice(slash + 1), kind };
      if (list) list.push(entry);
      else children.set(parent, [entry]);
    };
    for (const path of this.snapshot.files.keys()) add(path, 'file');
    for (const path of this.snapshot.dirs) if (path !== '') add(path, 'dir');
    for (const list of children.values()) list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.children = children;
    return children;
  }
}

/** The tree a load reads `dir` through: the snapshot of its commit when one is given, else the working tree. */
export function labFiles(dir: string, options: LabTreeOptions = {}, snapshot?: CommitSnapshot): LabFiles {
  return snapshot ? new SnapshotTree(dir, snapshot, options) : new LabTree(dir, options);
}

/** An empty or `.` component. */
const EMPTY_OR_DOT = /(^|\/)\.?(\/|$)/;

/** `path` as the snapshot keys it: empty and `.` components dropped (the working tree resolves them so). */
function normalized(path: string): string {
  if (!EMPTY_OR_DOT.test(path)) return path;
  return path
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
}
