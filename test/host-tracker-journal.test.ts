// The journal is written before anyone acts on a new state, and many hosts changing at once share writes: each
// record() resolves only once a save holding its change is on disk, and a burst is one or two saves, not one each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../src/log.ts';
import type { ObservedHost } from '../src/core/host-state.ts';
import { HostTracker } from '../src/observe/host-tracker.ts';
import { Journal } from '../src/observe/journal.ts';

class SlowJournal extends Journal {
  readonly saved: Array<Map<string, ObservedHost>> = [];
  constructor() {
    super('/nonexistent/journal.json');
  }
  override async save(hosts: Map<string, ObservedHost>): Promise<void> {
    const copy = new Map(hosts);
    await new Promise((r) => setTimeout(r, 20));
    this.saved.push(copy);
  }
}

test('HostTracker: a burst of 1,000 changes is a few journal saves, and each record waits for a save holding it', async () => {
  const journal = new SlowJournal();
  const tracker = new HostTracker(journal, createLogger({ level: 'silent' }), () => 1000);
  const names = Array.from({ length: 1000 }, (_, i) => `h${i}`);
  const recorded = names.map((name) =>
    tracker.record(name, { kind: 'powered-off' }).then(() => journal.saved.some((saved) => saved.get(name)?.phase === 'Off')),
  );
  assert.deepEqual(new Set(await Promise.all(recorded)), new Set([true]), 'every record resolved after a save that holds it');
  assert.ok(journal.saved.length <= 2, `${journal.saved.length} saves`);
  assert.equal(journal.saved.at(-1)?.size, 1000);
  // A change after those saves began gets a save of its own.
  const before = journal.saved.length;
  await tracker.retain(new Set(names.slice(1)));
  assert.equal(journal.saved.length, before + 1);
  assert.equal(journal.saved.at(-1)?.has('h0'), false);
});
