// The pool's leases on disk: one JSON file, replaced atomically (write a temporary file beside it,
// fsync, rename), so a crash leaves the old file or the new one, never half of one. Saves are
// coalesced: a burst of DHCP traffic costs one write in flight plus one pending, not one per packet,
// and nothing on the packet path waits for the disk.
//
// What a stop or a crash costs: the server sends its ACK before the lease is on disk. `flush()` after
// stopping the server (the agent and `forseti serve` do) writes everything, so a clean restart loses
// no lease. A crash (SIGKILL, power) loses what was ACKed since the last completed write, at most the
// writes of a few milliseconds; such a client keeps its address and REQUESTs it again at renewal
// (T1, half the lease time), which the pool grants while nobody else holds it. Should the address have
// gone to another machine meanwhile, the client's ARP probe and DECLINE sort it out.
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DhcpLeaseStoreError } from './errors.ts';
import type { Lease } from './lease-pool.ts';
import type { DhcpLogger } from './types.ts';

const FORMAT = 'forseti-dhcp-leases/v2';
/**
 * v1 keyed every lease by MAC and had no `client`; such a lease is its MAC's (what v1 meant), whatever
 * client identifier that MAC sends now. It loads as `legacy` (saved so, until its client comes back and
 * the pool re-keys it; see LeasePool).
 */
const FORMAT_V1 = 'forseti-dhcp-leases/v1';

interface LeaseFile {
  format: string;
  leases: readonly Lease[];
}

export class LeaseStore {
  private pending: readonly Lease[] | null = null;
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
      const parsed = JSON.parse(text) as { format?: unknown; leases?: unknown };
      if ((parsed.format !== FORMAT && parsed.format !== FORMAT_V1) || !Array.isArray(parsed.leases)) throw new Error(`not a ${FORMAT} (or v1) file`);
      const leases: unknown[] = parsed.leases;
      const v1 = parsed.format === FORMAT_V1;
      return leases.flatMap((v) => {
        const lease = toLease(v1 ? fromV1(v) : v);
        return lease === undefined ? [] : [lease];
      });
    } catch (err) {
      this.log?.warn({ file: this.file, err: (err as Error).message }, 'DHCP lease file is damaged; starting with no pool leases');
      return [];
    }
  }

  /**
   * Schedules a write of these leases; returns at once. The array is read when the write starts (it
   * may be the pool's live list), so the file gets the newest state, not one snapshot per change.
   */
  save(leases: readonly Lease[]): void {
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

  private async write(leases: readonly Lease[]): Promise<void> {
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

/** Only the fields a lease has; anything else in the file is dropped, a record that is no lease is skipped. */
function toLease(v: unknown): Lease | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const l = v as Record<string, unknown>;
  if (typeof l.ip !== 'string' || typeof l.client !== 'string' || typeof l.mac !== 'string' || typeof l.expires !== 'number') return undefined;
  if (l.state !== 'offered' && l.state !== 'bound' && l.state !== 'declined') return undefined;
  const lease: Lease = { ip: l.ip, client: l.client, mac: l.mac, state: l.state, expires: l.expires };
  if (l.legacy === true) lease.legacy = true;
  return lease;
}

function fromV1(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  const l = v as Record<string, unknown>;
  return { ip: l.ip, client: l.mac, mac: l.mac, state: l.state, expires: l.expires, legacy: true };
}
