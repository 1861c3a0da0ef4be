// Where proposed host files go, and the proof that they validate before they go anywhere. Every run works on a
// staging copy of the lab: the working tree (into the lab's hosts/, or to an output directory) or the tree of the
// lab repository's HEAD commit (onto a new branch). The proposals are written into the copy and the whole lab is
// validated there; only a valid result leaves it. A file is created only where none exists (never overwritten); a
// branch only where none exists, never the branch HEAD is on, never main or master; HEAD, the index and the working
// tree of the repository are left as they were.
import * as fs from 'node:fs';
import { cp, mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import git from 'isomorphic-git';
import { LabTooLargeError, LabTree, printablePath } from '../model/lab-tree.ts';
import { loadLab } from '../model/load.ts';
import type { LoadResult } from '../model/load.ts';
import { resolveRevision } from '../source/resolve-revision.ts';
import { findGitdir, writeRevisionTree } from '../source/write-revision-tree.ts';
import { applyFiles } from '../source/tree-with-files.ts';
import { BranchRefusedError, FileExistsError } from './errors.ts';

export type Destination = { kind: 'lab' } | { kind: 'out'; dir: string } | { kind: 'branch'; name: string };

export interface Stage {
  /** The staging copy of the lab. */
  dir: string;
  labDir: string;
  destination: Destination;
  /** Branch mode: the repository and the commit the branch starts from. */
  git?: { gitdir: string; base: string };
  /** The host files present in the copy before discovery (any extension). */
  hostFiles: string[];
  /** The first line of the lab's host files, when it points editors at a schema. */
  schemaComment: string | undefined;
  close(): Promise<void>;
}

const PROTECTED: ReadonlySet<string> = new Set(['main', 'master', 'HEAD']);

/** Copies the lab (the working tree, or HEAD's tree for a branch) into a temporary directory. */
export async function openStage(labDir: string, destination: Destination): Promise<Stage> {
  const tmp = await mkdtemp(join(tmpdir(), 'forseti-discover-'));
  const dir = join(tmp, 'lab');
  try {
    let gitInfo: Stage['git'];
    if (destination.kind === 'branch') {
      const gitdir = await findGitdir(labDir);
      if (!fs.existsSync(join(gitdir, 'objects'))) throw new BranchRefusedError(destination.name, `${labDir} is not a Git repository (--branch commits into the lab repository given as --lab)`);
      await checkNewBranch(gitdir, destination.name);
      const base = await resolveRevision(gitdir, 'HEAD');
      await writeRevisionTree(gitdir, base, dir);
      gitInfo = { gitdir, base };
    } else {
      // Links are copied as written (cp would make a relative one absolute, into the original: outside the copy).
      await cp(labDir, dir, { recursive: true, verbatimSymlinks: true, filter: (src) => basename(src) !== '.git' && copyable(labDir, src) });
    }
    // Through the lab's tree reader, like every load: a hosts/ or host file that leads out of the lab, a FIFO or
    // /dev/zero is neither listed nor read (the validation of the staged lab names it).
    const tree = new LabTree(dir);
    const hostFiles = tree.listDir('hosts').entries.map((e) => e.name);
    return { dir, labDir, destination, ...(gitInfo ? { git: gitInfo } : {}), hostFiles, schemaComment: schemaCommentOf(tree, hostFiles), close: () => rm(tmp, { recursive: true, force: true }) };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Files, directories and links are copied; a FIFO, socket or device in the lab stops the run, named. */
function copyable(labDir: string, src: string): boolean {
  const stats = fs.lstatSync(src);
  if (stats.isFile() || stats.isDirectory() || stats.isSymbolicLink()) return true;
  const what = stats.isFIFO() ? 'a FIFO' : stats.isSocket() ? 'a socket' : 'a device';
  throw new Error(`${printablePath(relative(labDir, src))} is ${what}; forseti reads regular files only`);
}

/** A branch name git takes, that does not exist yet and is not the main line or the branch HEAD is on. */
async function checkNewBranch(gitdir: string, name: string): Promise<void> {
  // git check-ref-format, the parts a branch name meets in practice: no "..", "//", "@{", leading "-", trailing "/", "." or ".lock".
  if (!/^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[A-Za-z0-9._/-]+(?<![./])$/.test(name) || name.endsWith('.lock')) throw new BranchRefusedError(name, 'not a valid branch name');
  if (PROTECTED.has(name)) throw new BranchRefusedError(name, 'proposals never go on the main line: name a new branch');
  const current = await git.currentBranch({ fs, gitdir, fullname: false }).catch(() => undefined);
  if (current === name) throw new BranchRefusedError(name, 'HEAD is on it: name a new branch');
  const exists = await git.resolveRef({ fs, gitdir, ref: `refs/heads/${name}` }).then(
    () => true,
    () => false,
  );
  if (exists) throw new BranchRefusedError(name, 'exists already: proposals go on a new branch (delete it or name another)');
}

/**
 * `# yaml-language-server: $schema=…host.schema.json` as the lab's host files start, else derived from site.yaml's
 * (one directory up); undefined when neither has one.
 */
function schemaCommentOf(tree: LabTree, hostFiles: string[]): string | undefined {
  const firstLine = (path: string): string => {
    try {
      return (tree.read(path).text ?? '').split('\n', 1)[0] ?? '';
    } catch (err) {
      if (err instanceof LabTooLargeError) return '';
      throw err;
    }
  };
  for (const file of hostFiles.filter((f) => /\.ya?ml$/.test(f)).sort()) {
    const first = firstLine(`hosts/${file}`);
    if (/^# yaml-language-server: \$schema=\S+$/.test(first)) return first;
  }
  const site = firstLine('site.yaml');
  const m = /^# yaml-language-server: \$schema=(\S*?)site\.schema\.json$/.exec(site);
  if (!m) return undefined;
  const base = /^[a-z]+:\/\//i.test(m[1]!) || m[1]!.startsWith('/') ? m[1]! : `../${m[1]!}`;
  return `# yaml-language-server: $schema=${base}host.schema.json`;
}

export async function loadStage(stage: Stage): Promise<LoadResult> {
  return loadLab(stage.dir);
}

/** Writes the proposals into the staging copy and validates the whole lab there. */
export async function stageProposals(stage: Stage, files: ReadonlyMap<string, string>): Promise<LoadResult> {
  await mkdir(join(stage.dir, 'hosts'), { recursive: true });
  for (const [path, text] of files) await writeFile(join(stage.dir, path), text, { flag: 'wx' });
  return loadLab(stage.dir);
}

export interface Published {
  /** Where the files are now: paths in the lab, in the output directory, or on the branch. */
  paths: string[];
  /** Branch mode: the new branch's commit. */
  commit?: string;
  /** Lab mode: the lab loaded again after the files landed. */
  after?: LoadResult;
}

/** Puts the staged proposals where the destination says. */
export async function publish(stage: Stage, files: ReadonlyMap<string, string>, message: string): Promise<Published> {
  const d = stage.destination;
  if (d.kind === 'branch') return commitBranch(stage, d.name, files, message);
  const root = d.kind === 'lab' ? stage.labDir : d.dir;
  const target = (path: string): string => (d.kind === 'lab' ? join(root, path) : join(root, basename(path)));
  await mkdir(d.kind === 'lab' ? join(root, 'hosts') : root, { recursive: true });
  const written: string[] = [];
  try {
    for (const [path, text] of files) {
      try {
        await writeFile(target(path), text, { flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new FileExistsError(target(path));
        throw err;
      }
      written.push(target(path));
    }
  } catch (err) {
    // Someone wrote a file of the same name meanwhile: the run leaves nothing behind.
    for (const path of written) await unlink(path).catch(() => undefined);
    throw err;
  }
  return { paths: written, ...(d.kind === 'lab' ? { after: await loadLab(stage.labDir) } : {}) };
}

async function commitBranch(stage: Stage, branch: string, files: ReadonlyMap<string, string>, message: string): Promise<Published> {
  const { gitdir, base } = stage.git!;
  await checkNewBranch(gitdir, branch);
  const cache = {};
  const baseTree = (await git.readCommit({ fs, gitdir, oid: base, cache })).commit.tree;
  const tree = await applyFiles(gitdir, baseTree, new Map(files), cache);
  const name = (await git.getConfig({ fs, gitdir, path: 'user.name' }).catch(() => undefined)) as string | undefined;
  const email = (await git.getConfig({ fs, gitdir, path: 'user.email' }).catch(() => undefined)) as string | undefined;
  const signature = { name: name || 'forseti discover', email: email || 'forseti@localhost', timestamp: Math.floor(Date.now() / 1000), timezoneOffset: 0 };
  const commit = await git.writeCommit({ fs, gitdir, commit: { message, tree, parent: [base], author: signature, committer: signature } });
  await git.writeRef({ fs, gitdir, ref: `refs/heads/${branch}`, value: commit, force: false });
  return { paths: [...files.keys()], commit };
}
