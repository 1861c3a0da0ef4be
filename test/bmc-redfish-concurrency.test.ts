// The global limit on BMC work in flight (src/bmc/concurrency.ts), used to converge many Redfish hosts at once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConcurrencyLimit } from '../src/bmc/concurrency.ts';

describe('ConcurrencyLimit', () => {
  it('runs at most `limit` tasks at once, starting them in FIFO order', async () => {
    const limit = new ConcurrencyLimit(2);
    const started: number[] = [];
    const release: Array<() => void> = [];
    let peak = 0;
    const tasks = [0, 1, 2, 3, 4].map((i) =>
      limit.run(async () => {
        started.push(i);
        peak = Math.max(peak, limit.running);
        await new Promise<void>((resolve) => release.push(resolve));
        return i;
      }),
    );
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [0, 1]);
    assert.equal(limit.queued, 3);
    while (started.length < 5 || release.length > 0) {
      release.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await Promise.all(tasks), [0, 1, 2, 3, 4]);
    assert.deepEqual(started, [0, 1, 2, 3, 4]);
    assert.equal(peak, 2);
    assert.equal(limit.running, 0);
  });

  it('frees the slot of a task that fails', async () => {
    const limit = new ConcurrencyLimit(1);
    await assert.rejects(limit.run(async () => Promise.reject(new Error('BMC said no'))), /BMC said no/);
    assert.equal(await limit.run(async () => 'next'), 'next');
    assert.equal(limit.running, 0);
  });

  it('refuses a limit below one', () => {
    assert.throws(() => new ConcurrencyLimit(0), /positive integer/);
  });
});
