import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export async function waitForText(file: string, pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = readText(file);
    const match = text.match(pattern);
    if (match) return match;
    if (Date.now() > deadline) {
      throw new Error(`${what}: no match for ${pattern} within ${timeoutMs} ms; last output:\n${text.slice(-2000)}`);
    }
    await sleep(200);
  }
}
