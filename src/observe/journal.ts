import { readFileIfExists, writeJsonAtomic } from '../core/atomic-file.ts';
import type { ObservedHost } from '../core/host-state.ts';

/**
 * The agent's own record of what it observed, written atomically on every change, so that a restarted agent
 * knows which hosts it already power-cycled for which digest and never does it twice for one change.
 */
export class Journal {
  constructor(private readonly file: string) {}

  async load(): Promise<Map<string, ObservedHost>> {
    const text = await readFileIfExists(this.file);
    if (text === undefined) return new Map();
    const data = JSON.parse(text) as { hosts?: Record<string, ObservedHost> };
    return new Map(Object.entries(data.hosts ?? {}));
  }

  save(hosts: Map<string, ObservedHost>): Promise<void> {
    return writeJsonAtomic(this.file, { hosts: Object.fromEntries(hosts) }, { indent: 1 });
  }
}
