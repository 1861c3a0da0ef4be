import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ObservedHost } from '../plan/types.ts';

/**
 * The agent's own record of what it observed, written atomically on every change, so that a restarted agent
 * knows which hosts it already power-cycled for which digest and never does it twice for one change.
 */
export class Journal {
  constructor(private readonly file: string) {}

  async load(): Promise<Map<string, ObservedHost>> {
    try {
      const data = JSON.parse(await readFile(this.file, 'utf8')) as { hosts?: Record<string, ObservedHost> };
      return new Map(Object.entries(data.hosts ?? {}));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw err;
    }
  }

  async save(hosts: Map<string, ObservedHost>): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}`;
    await writeFile(tmp, `${JSON.stringify({ hosts: Object.fromEntries(hosts) }, null, 1)}\n`);
    await rename(tmp, this.file);
  }
}
