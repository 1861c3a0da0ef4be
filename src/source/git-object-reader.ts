// One long-running `git cat-file --batch` per repository: a commit's trees are read without starting a process for
// each read. Started from an agent holding a 10,000-host lab, each git process costs ~5-8 ms before it reads
// anything, and a commit's check reads a tree per depth (the root, then `hosts/`): ~12 ms of a push's way to its first
// BMC action. The process is started at the first read and kept while reads come (a commit's reads come within
// milliseconds, a burst of pushes within seconds); after IDLE_MS without one it ends, so an idle agent does not hold
// its ~5 MB, and it never keeps Node running. close() ends it for good. A read that fails or runs past its time ends
// the process, and the next read starts another.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { GitCliError } from './git-cli-error.ts';

const OID = /^[0-9a-f]{40}$/;
const IDLE_MS = 3000;

export interface GitObjectReaderOptions {
  /** The git command line: argv before `cat-file`, and the environment (GIT_DIR included). */
  command: { args: readonly string[]; env: Record<string, string> };
  /** Longest a read may take before the process is ended (default 60 s). */
  timeoutMs?: number;
  /**
   * A process per read, its input closed once the ids are written and its output buffered (`--buffer`): for one
   * large read (a whole commit's blobs), where the kept process would flush each object on its own (10,000 blobs:
   * ~250 ms of small pipe writes, against ~50 ms buffered).
   */
  processPerRead?: boolean;
}

interface PendingRead {
  oids: readonly string[];
  type: string;
  maxBytes: number;
  /** Bytes of answer so far, and how many of `oids` were answered. */
  received: number;
  answered: number;
  objects: Map<string, Buffer>;
  resolve: (objects: Map<string, Buffer>) => void;
  reject: (err: Error) => void;
}

export class GitObjectReader {
  private child: ChildProcessWithoutNullStreams | null = null;
  private pending: PendingRead | null = null;
  /** What arrived and is not parsed yet, joined only once it can hold the next whole object (`need` bytes). */
  private chunks: Buffer[] = [];
  private length = 0;
  private need = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: GitObjectReaderOptions) {}

  /**
   * The contents of `oids` (40 hexadecimal digits each), each of which must be an object of `type`; reads are served
   * one after the other. At most `maxBytes` of answer per read.
   */
  read(oids: readonly string[], type: 'tree' | 'blob', maxBytes: number): Promise<Map<string, Buffer>> {
    const run = this.queue.then(() => this.readNow(oids, type, maxBytes));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Starts the kept process ahead of reads expected soon (a fetch in flight: the new commit's trees are read once it
   * ends), so a read does not wait for git to start. It idles out as after a read. A process started before objects
   * arrive still finds them: git looks loose objects up by name, and a pack it does not know yet once it misses.
   */
  warm(): void {
    if (this.closed || this.options.processPerRead || this.pending) return;
    if (!this.child) this.start();
    this.hold(false);
    this.idleOut();
  }

  /** The process ends IDLE_MS from now unless a read comes first. */
  private idleOut(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.end(new GitCliError(['cat-file'], 'idle')), IDLE_MS);
    this.idleTimer.unref();
  }

  /** False once closed: a read then starts no process and fails. */
  get open(): boolean {
    return !this.closed;
  }

  /** Ends the process; a read after this starts none and fails. */
  close(): void {
    this.closed = true;
    this.end(new GitCliError(['cat-file'], 'the object reader was closed'));
  }

  private readNow(oids: readonly string[], type: string, maxBytes: number): Promise<Map<string, Buffer>> {
    if (this.closed) return Promise.reject(new GitCliError(['cat-file'], 'the object reader was closed'));
    const bad = oids.find((oid) => !OID.test(oid));
    if (bad !== undefined) return Promise.reject(new GitCliError(['cat-file'], `not an object id: ${JSON.stringify(bad.slice(0, 60))}`));
    if (oids.length === 0) return Promise.resolve(new Map());
    clearTimeout(this.idleTimer);
    const child = this.options.processPerRead || !this.child ? this.start() : this.child;
    return new Promise<Map<string, Buffer>>((resolve, reject) => {
      const timer = setTimeout(() => this.end(new GitCliError(['cat-file'], `no answer within ${this.options.timeoutMs ?? 60_000} ms`)), this.options.timeoutMs ?? 60_000);
      const settle = (): void => {
        clearTimeout(timer);
        this.pending = null;
        this.hold(false);
        this.idleOut();
      };
      this.pending = {
        oids,
        type,
        maxBytes,
        received: 0,
        answered: 0,
        objects: new Map(),
        resolve: (objects) => {
          settle();
          resolve(objects);
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      };
      this.hold(true);
      // A process per read ends once it has answered: its input ends here.
      if (this.options.processPerRead) child.stdin.end(`${oids.join('\n')}\n`);
      else child.stdin.write(`${oids.join('\n')}\n`);
    });
  }

  private start(): ChildProcessWithoutNullStreams {
    const { args, env } = this.options.command;
    const child = spawn('git', [...args, 'cat-file', '--batch', ...(this.options.processPerRead ? ['--buffer'] : [])], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.dropBuffered();
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (this.child === child) this.received(chunk); // not what a process ended for a failure still had to say
    });
    child.stderr.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString('utf8')).slice(-2000)));
    child.stdin.on('error', () => undefined); // the process's end says what happened
    const gone = (reason: string): void => {
      if (this.child !== child) return;
      this.child = null;
      this.pending?.reject(new GitCliError(['cat-file'], reason));
    };
    child.on('error', (err) => gone(err.message));
    child.on('close', (code, signal) => gone(stderr.trim() || `exited (${signal ?? code})`));
    return child;
  }

  /** Keeps Node running while a read waits for its answer, and not while the process idles. */
  private hold(reading: boolean): void {
    const child = this.child;
    if (!child) return;
    // The pipes are net.Socket objects (Node's child_process documentation), typed as plain streams.
    for (const handle of [child, child.stdin, child.stdout, child.stderr] as unknown as Array<{ ref(): void; unref(): void }>) {
      if (reading) handle.ref();
      else handle.unref();
    }
  }

  /** `<oid> SP <type> SP <size> LF <content> LF` per object asked, in order; `<oid> missing LF` for one not there. */
  private received(chunk: Buffer): void {
    const read = this.pending;
    if (!read) return this.end(new GitCliError(['cat-file'], 'an answer nobody asked for'));
    this.chunks.push(chunk);
    this.length += chunk.length;
    read.received += chunk.length;
    if (read.received > read.maxBytes + 64 * read.oids.length) return this.end(new GitCliError(['cat-file'], `more than ${read.maxBytes} bytes of objects`));
    if (this.length < this.need) return;
    let buffered = this.chunks.length === 1 ? (this.chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(this.chunks);
    while (read.answered < read.oids.length) {
      const oid = read.oids[read.answered] ?? '';
      const eol = buffered.indexOf(0x0a);
      if (eol < 0) {
        this.need = buffered.length + 1;
        break;
      }
      const [name, kind, sizeText] = buffered.toString('latin1', 0, eol).split(' ');
      if (name !== oid || kind !== read.type || !/^\d+$/.test(sizeText ?? '')) {
        return this.end(new GitCliError(['cat-file'], `object ${oid}: ${kind === 'missing' ? 'missing' : `expected a ${read.type}, got ${JSON.stringify(buffered.toString('latin1', 0, Math.min(eol, 100)))}`}`));
      }
      const end = eol + 1 + Number(sizeText);
      if (buffered.length < end + 1) {
        this.need = end + 1;
        break;
      }
      read.objects.set(oid, buffered.subarray(eol + 1, end));
      read.answered++;
      buffered = buffered.subarray(end + 1);
      this.need = 1;
    }
    this.chunks = buffered.length > 0 ? [buffered] : [];
    this.length = buffered.length;
    if (read.answered === read.oids.length) read.resolve(read.objects);
  }

  private dropBuffered(): void {
    this.chunks = [];
    this.length = 0;
    this.need = 1;
  }

  /** The process ended (its next read starts another) and the read waiting, if any, failed with `err`. */
  private end(err: GitCliError): void {
    clearTimeout(this.idleTimer);
    const child = this.child;
    this.child = null;
    this.dropBuffered();
    child?.kill('SIGKILL');
    this.pending?.reject(err);
  }
}
