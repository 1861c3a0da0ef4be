// The agent keeps V8's young generation at its first size (src/cli/young-generation.ts): after an allocation burst
// that grows it without the cap, it stays the size it had (1 MB per semi-space in the release forms; tsx's loading
// has grown it a little before the source run gets there). Sizes, not timings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MODULE = fileURLToPath(new URL('../src/cli/young-generation.ts', import.meta.url));

/** The new space's size in MiB before and after a burst of short-lived allocations, in a fresh process. */
function newSpaceAfterBurst(capped: boolean): { before: number; after: number } {
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    const size = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576;
    ${capped ? `const { capYoungGeneration } = await import(${JSON.stringify(MODULE)}); capYoungGeneration();` : ''}
    const before = size();
    let keep = [];
    for (let r = 0; r < 40; r++) { const a = []; for (let i = 0; i < 100000; i++) a.push({ i, s: 'x' + i }); keep.push(a); if (keep.length > 3) keep.shift(); }
    keep = null;
    process.stdout.write(JSON.stringify({ before, after: size() }));`;
  return JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' })) as { before: number; after: number };
}

test('capYoungGeneration keeps the new space at its size through an allocation burst that grows it otherwise', () => {
  const uncapped = newSpaceAfterBurst(false);
  assert.ok(uncapped.after > uncapped.before, `the burst grows an uncapped new space (${JSON.stringify(uncapped)})`);
  const capped = newSpaceAfterBurst(true);
  assert.ok(capped.after <= capped.before, `capped: it stays as it was (${JSON.stringify(capped)})`);
});
