import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BmcState } from '../src/bmc/bmc-state.ts';
import { CommandQueue } from '../src/bmc/command-queue.ts';

/** A clock that only moves when the queue sleeps or a command "takes" time. */
function fakeClock(): { now: () => number; sleep: (ms: number) => Promise<void>; advance: (ms: number) => void; sleeps: number[] } {
  let t = 1000;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: async (ms) => {
      sleeps.push(ms);
      t += ms;
    },
    advance: (ms) => {
      t += ms;
    },
    sleeps,
  };
}

describe('CommandQueue', () => {
  it('runs one command at a time, in the order they were queued', async () => {
    const queue = new CommandQueue({ minIntervalMs: 0 });
    let inFlight = 0;
    let maxInFlight = 0;
    const order: number[] = [];
    const command = (n: number) => async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setImmediate(r));
      order.push(n);
      inFlight--;
      return n;
    };
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => queue.run(command(n))));
    assert.deepEqual(results, [1, 2, 3, 4, 5]);
    assert.deepEqual(order, [1, 2, 3, 4, 5]);
    assert.equal(maxInFlight, 1);
  });

  it('keeps the minimum pause between the end of one command and the start of the next', async () => {
    const clock = fakeClock();
    const queue = new CommandQueue({ minIntervalMs: 50, now: clock.now, sleep: clock.sleep });
    const starts: number[] = [];
    const command = async () => {
      starts.push(clock.now());
      clock.advance(10);
    };
    await Promise.all([queue.run(command), queue.run(command), queue.run(command)]);
    assert.deepEqual(clock.sleeps, [50, 50]);
    assert.deepEqual(starts, [1000, 1060, 1120]);
  });

  it('does not pause when the interval has already passed', async () => {
    const clock = fakeClock();
    const queue = new CommandQueue({ minIntervalMs: 50, now: clock.now, sleep: clock.sleep });
    await queue.run(async () => undefined);
    clock.advance(80);
    await queue.run(async () => undefined);
    assert.deepEqual(clock.sleeps, []);
  });

  it('a failing command rejects its caller only; the queue goes on', async () => {
    const queue = new CommandQueue({ minIntervalMs: 0 });
    const failed = queue.run(async () => {
      throw new Error('boom');
    });
    const next = queue.run(async () => 'ok');
    await assert.rejects(failed, /boom/);
    assert.equal(await next, 'ok');
  });

  it('one queue per BMC key within one owner\'s BMC state, none shared between owners', () => {
    const state = new BmcState();
    assert.equal(state.queue('192.0.2.10:623'), state.queue('192.0.2.10:623'));
    assert.notEqual(state.queue('192.0.2.10:623'), state.queue('192.0.2.11:623'));
    assert.notEqual(new BmcState().queue('192.0.2.10:623'), state.queue('192.0.2.10:623'));
  });
});
