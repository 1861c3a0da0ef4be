import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { writeFileAtomic } from '../core/atomic-file.ts';

/**
 * Queued status files that could not be pushed, kept on disk so an agent restart (state dir kept)
 * still delivers them. Best effort: a wiped state dir loses only what the agent re-derives anyway.
 */
export class PendingStore {
  constructor(private readonly file: string) {}

  load(): Map<string, string | null> {
    try {
      const parsed: unknown = JSON.parse(readFileSync(this.file, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null) return new Map();
      return new Map(Object.entries(parsed).filter((e): e is [string, string | null] => typeof e[1] === 'string' || e[1] === null));
    } catch {
      return new Map();
    }
  }

  async save(files: Map<string, string | null>): Promise<void> {
    if (files.size === 0) {
      await rm(this.file, { force: true });
      return;
    }
    await writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(files)));
  }
}
