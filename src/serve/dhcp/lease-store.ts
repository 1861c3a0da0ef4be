// The pool's leases on disk: one JSON file, replaced atomically (write a temporary file beside it,
// fsync, rename), so a crash leaves the old file or the new one, never half of one. Saves are
// coalesced: a burst of DHCP traffic costs one write in flight plus one pending, not one per packet.
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DhcpLeaseStoreError } from './errors.ts';
import type { Lease } from './lease-pool.ts';
import type { DhcpLogger } from './types.ts';

const FORMAT = 'forseti-dhcp-leases/v1';

interface LeaseFile {
  format: string;
  leases: Lease[];
}

export class LeaseStore {
  private pending: Lease[] | null = null;
  private writing: Promise<void> | null = null;

  constructor(readonly file: string, private readonly log?: DhcpLogger) {}

  /** The saved leases; none when the file does not exist yet. A damaged file is logged and ignored (the pool starts empty). */
  async load(): Promise<Lease[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new DhcpLeaseStoreError(`cannot read DHCP leases from ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const parsed = JSON.parse(text) as Partial<LeaseFile>;
      if (parsed.format !== FORMAT || !Array.isArray(parsed.leases)) throw new Error(`not a ${FORMAT} file`);
      return parsed.leases.filter(isLease);
    } catch (err) {
      this.log?.warn({ file: this.file, err: (err as Error).message }, 'DHCP lease file is damaged; starting with no pool leases');
      return [];
    }
  }

  /** Schedules a write of these leases; returns at once. */
  save(leases: Lease[]): void {
    this.pending = leases;
    this.writing ??= this.drain();
  }

  /** Resolves once everything saved so far is on disk. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending) {
        const leases = this.pending;
        this.pending = null;
        try {
          await this.write(leases);
        } catch (err) {
          this.log?.warn({ file: this.file, err: (err as Error).message }, 'cannot write DHCP leases; they live in memory until the next write works');
        }
      }
    } finally {
      this.writing = null;
    }
  }

  private async write(leases: Lease[]): Promise<void> {
    const tmp = join(dirname(this.file), `.${basename(this.file)}.${process.pid}.tmp`);
    const body: LeaseFile = { format: FORMAT, leases };
    const handle = await open(tmp, 'w', 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(body, null, 1)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(tmp, this.file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}

function isLease(v: unknown): v is Lease {
  if (typeof v !== 'object' || v === null) return false;
  const l = v as Record<string, unknown>;
  return typeof l.ip === 'string' && typeof l.mac === 'string' && typeof l.expires === 'number'
    && (l.state === 'offered' || l.state === 'bound' || l.state === 'declined');
}
