import { readFile } from 'node:fs/promises';
import { writeJsonAtomic } from '../core/atomic-file.ts';
import type { Logger } from '../log.ts';
import type { HostSighting } from './drift.ts';

interface SightingsFile {
  version: 1;
  /** Epoch ms of the write: the agent was listening until at least then. */
  savedAt: number;
  hosts: Record<string, HostSighting>;
}

/**
 * When each host was last heard of outside its BMC (DHCP packets, phone-homes), for the `host-silent` and
 * `role-mismatch` drifts. With persistTo() the sightings survive a restart (stateDir/sightings.json, written in
 * batches, atomically). Silence is measured over the time the agent was listening: on load every `lastSeen` moves
 * forward by the time between the last write and this start, so neither a restart nor the downtime before it
 * makes a quiet host look silent, while a host that was already silent before the restart is still found. A host
 * never seen counts from the agent's start.
 */
export class HostSightings {
  private readonly seen = new Map<string, HostSighting>();
  private readonly started: number;
  private file: string | null = null;
  private log: Logger | null = null;
  private timer: NodeJS.Timeout | null = null;
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(private readonly clock: () => number = Date.now, private readonly saveDelayMs = 5000) {
    this.started = clock();
  }

  /** Loads what an earlier run saved in `file` and saves changes there from now on. A damaged file is ignored. */
  async persistTo(file: string, log?: Logger): Promise<void> {
    this.file = file;
    this.log = log ?? null;
    const saved = await readSaved(file).catch((err: unknown) => {
      this.log?.warn({ err, file }, 'host sightings unreadable; silence is measured from this start');
      return null;
    });
    if (!saved) return;
    const now = this.clock();
    const downtime = Math.max(0, now - saved.savedAt);
    for (const [host, sighting] of Object.entries(saved.hosts)) {
      if (this.seen.has(host)) continue; // seen during the load: newer than the file
      const lastSeen = sighting.lastSeen === undefined ? undefined : Math.min(now, sighting.lastSeen + downtime);
      this.seen.set(host, { ...(lastSeen !== undefined ? { lastSeen } : {}), ...(sighting.lastPhoneHome ? { lastPhoneHome: sighting.lastPhoneHome } : {}) });
    }
  }

  /** A DHCP packet (discover, request, renewal) from the host's MAC. */
  dhcp(host: string): void {
    this.seen.set(host, { ...this.seen.get(host), lastSeen: this.clock() });
    this.changed();
  }

  /** A phone-home with the host's token, whatever role it reported, in whatever phase the host was. */
  phoneHome(host: string, role: string): void {
    const now = this.clock();
    this.seen.set(host, { lastSeen: now, lastPhoneHome: { at: now, role } });
    this.changed();
  }

  get(host: string): HostSighting {
    return this.seen.get(host) ?? { lastSeen: this.started };
  }

  retain(names: ReadonlySet<string>): void {
    let removed = false;
    for (const name of [...this.seen.keys()]) {
      if (names.has(name)) continue;
      this.seen.delete(name);
      removed = true;
    }
    if (removed) this.changed();
  }

  /** Writes pending changes now (the agent stops). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.dirty) this.save();
    await this.saving;
  }

  private changed(): void {
    if (!this.file) return;
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.save();
    }, this.saveDelayMs);
    this.timer.unref();
  }

  private save(): void {
    const file = this.file;
    if (!file) return;
    this.dirty = false;
    const body: SightingsFile = { version: 1, savedAt: this.clock(), hosts: Object.fromEntries(this.seen) };
    this.saving = this.saving
      .then(() => writeJsonAtomic(file, body))
      .catch((err: unknown) => {
        this.dirty = true;
        this.log?.warn({ err, file }, 'cannot save host sightings; retried with the next change');
      });
  }
}

async function readSaved(file: string): Promise<SightingsFile | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const raw: unknown = JSON.parse(text);
  if (typeof raw !== 'object' || raw === null) throw new Error('not a JSON object');
  const { version, savedAt, hosts } = raw as Partial<SightingsFile>;
  if (version !== 1 || typeof savedAt !== 'number' || typeof hosts !== 'object' || hosts === null) throw new Error('unexpected shape');
  const clean: Record<string, HostSighting> = {};
  for (const [host, s] of Object.entries(hosts)) {
    if (typeof s !== 'object' || s === null) continue;
    const lastSeen = typeof s.lastSeen === 'number' ? s.lastSeen : undefined;
    const p = s.lastPhoneHome;
    const lastPhoneHome = p && typeof p.at === 'number' && typeof p.role === 'string' ? { at: p.at, role: p.role } : undefined;
    clean[host] = { ...(lastSeen !== undefined ? { lastSeen } : {}), ...(lastPhoneHome ? { lastPhoneHome } : {}) };
  }
  return { version, savedAt, hosts: clean };
}
