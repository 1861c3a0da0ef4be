import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createFileAtomic, readFileIfExists } from '../core/atomic-file.ts';

/** The agent's own secret, from which per-host tokens derive. Created once (whole, mode 0600), kept in the state directory. */
export async function loadAgentKey(stateDir: string): Promise<Buffer> {
  const file = join(stateDir, 'agent.key');
  const text = await readFileIfExists(file);
  if (text !== undefined) return Buffer.from(text.trim(), 'hex');
  // Two agents starting on one state directory: the first key written is the one both use.
  await createFileAtomic(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return Buffer.from((await readFile(file, 'utf8')).trim(), 'hex');
}
