// OA sessions shared by the drivers of one enclosure's blades: one per OA address, port and user. A lease per
// driver; the session logs out when the last lease is released. Whoever owns the BMC state creates the pool.
import { createHash } from 'node:crypto';
import { OaSession } from './session.ts';
import type { OaSessionOptions } from './session.ts';

interface Entry {
  session: OaSession;
  leases: number;
}

export interface OaSessionLease {
  readonly session: OaSession;
  /** Once per lease; the last release logs out. */
  release(): Promise<void>;
}

/**
 * OA address, port and user; plus a digest of the password, so a wrong password never rides a good session, and the
 * pinned host key, so a blade pinning another key never rides a session checked against the first one.
 */
export function oaSessionKey(opts: Pick<OaSessionOptions, 'address' | 'port' | 'username' | 'password' | 'hostKey'>): string {
  const credential = createHash('sha256').update(opts.password).digest('hex').slice(0, 16);
  return `${opts.address}:${opts.port ?? 22} ${opts.username} ${credential}${opts.hostKey?.pin ? ` ${opts.hostKey.pin}` : ''}`;
}

export class OaSessionPool {
  private readonly sessions = new Map<string, Entry>();

  /** The shared session of this OA and user; the first lease's options create it. */
  lease(opts: OaSessionOptions): OaSessionLease {
    const key = oaSessionKey(opts);
    let entry = this.sessions.get(key);
    if (!entry) {
      entry = { session: new OaSession(opts), leases: 0 };
      this.sessions.set(key, entry);
    }
    entry.leases++;
    const held = entry;
    let released = false;
    return {
      session: held.session,
      release: async () => {
        if (released) return;
        released = true;
        held.leases--;
        if (held.leases > 0) return;
        if (this.sessions.get(key) === held) this.sessions.delete(key);
        await held.session.close();
      },
    };
  }
}
