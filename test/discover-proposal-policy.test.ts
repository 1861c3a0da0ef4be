// The discovery rate limit and the memory of proposed machines, by tables: N proposals per sliding interval, a MAC
// proposed once is never proposed again, and both survive a restart through the store the owner gives.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideProposal, ProposalPolicy } from '../src/discover/proposal-policy.ts';
import type { ProposalDecision, ProposalLimits, ProposalMemory, ProposalStore } from '../src/discover/proposal-policy.ts';

/** An in-memory store that keeps what was saved as JSON text, as a file would. */
class TextStore implements ProposalStore {
  text: string | undefined;
  saves = 0;
  failNext = false;
  constructor(text?: string) {
    this.text = text;
  }
  async load(): Promise<unknown> {
    return this.text === undefined ? undefined : (JSON.parse(this.text) as unknown);
  }
  async save(memory: ProposalMemory): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('disk full');
    }
    this.saves++;
    this.text = JSON.stringify(memory);
  }
}

const S = 1000;
const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';
const C = '52:54:00:00:00:0c';
const D = '52:54:00:00:00:0d';

type Step =
  | { at: number; begin: string; expect: ProposalDecision['kind']; retryAt?: number }
  | { at: number; remember: string }
  | { at: number; restart: true };

const limits: ProposalLimits = { maxProposals: 2, intervalSeconds: 60 };

const table: Array<{ what: string; limits?: ProposalLimits; steps: Step[] }> = [
  {
    what: 'two per minute: the third waits until the first start leaves the window',
    steps: [
      { at: 0, begin: A, expect: 'propose' },
      { at: 10 * S, begin: B, expect: 'propose' },
      { at: 20 * S, begin: C, expect: 'rate-limited', retryAt: 60 * S },
      { at: 59 * S, begin: C, expect: 'rate-limited', retryAt: 60 * S },
      { at: 60 * S, begin: C, expect: 'propose' },
      { at: 65 * S, begin: D, expect: 'rate-limited', retryAt: 70 * S },
      { at: 70 * S, begin: D, expect: 'propose' },
    ],
  },
  {
    what: 'a machine proposed is never proposed again, whatever the time, and is not counted against the rate',
    steps: [
      { at: 0, begin: A, expect: 'propose' },
      { at: 1 * S, remember: A },
      { at: 2 * S, begin: A, expect: 'already-proposed' },
      { at: 10_000 * S, begin: '52-54-00-00-00-0A', expect: 'already-proposed' },
      { at: 10_000 * S, begin: B, expect: 'propose' },
      { at: 10_000 * S, begin: C, expect: 'propose' },
      { at: 10_000 * S, begin: A, expect: 'already-proposed' },
    ],
  },
  {
    what: 'an attempt that did not end in a proposal (a push failed) counts against the rate, and may be tried again later',
    steps: [
      { at: 0, begin: A, expect: 'propose' },
      { at: 1 * S, begin: A, expect: 'propose' },
      { at: 2 * S, begin: A, expect: 'rate-limited', retryAt: 60 * S },
      { at: 61 * S, begin: A, expect: 'propose' },
    ],
  },
  {
    what: 'across a restart: the memory and the rate window are what the store held',
    steps: [
      { at: 0, begin: A, expect: 'propose' },
      { at: 1 * S, remember: A },
      { at: 2 * S, begin: B, expect: 'propose' },
      { at: 3 * S, restart: true },
      { at: 4 * S, begin: A, expect: 'already-proposed' },
      { at: 5 * S, begin: C, expect: 'rate-limited', retryAt: 60 * S },
      { at: 60 * S, restart: true },
      { at: 60 * S, begin: C, expect: 'propose' },
    ],
  },
  {
    what: 'the clock went back: a start stamped in the future counts as now, then leaves the window an interval later',
    steps: [
      { at: 1000 * S, begin: A, expect: 'propose' },
      { at: 1001 * S, begin: B, expect: 'propose' },
      { at: 10 * S, begin: C, expect: 'rate-limited', retryAt: 70 * S },
      { at: 70 * S, begin: C, expect: 'propose' },
    ],
  },
  {
    what: 'one per hour',
    limits: { maxProposals: 1, intervalSeconds: 3600 },
    steps: [
      { at: 0, begin: A, expect: 'propose' },
      { at: 3599 * S, begin: B, expect: 'rate-limited', retryAt: 3600 * S },
      { at: 3600 * S, begin: B, expect: 'propose' },
    ],
  },
];

describe('ProposalPolicy by tables', () => {
  for (const row of table) {
    it(row.what, async () => {
      const store = new TextStore();
      const l = row.limits ?? limits;
      let policy = await ProposalPolicy.open(store, l);
      for (const [i, step] of row.steps.entries()) {
        if ('restart' in step) policy = await ProposalPolicy.open(store, l);
        else if ('remember' in step) await policy.remember(step.remember, step.at, `forseti/discovered/${step.remember.replace(/:/g, '-')}`);
        else {
          const pure = policy.decide(step.begin, step.at);
          const decision = await policy.begin(step.begin, step.at);
          assert.deepEqual(decision, pure, `step ${i}: decide and begin agree`);
          assert.equal(decision.kind, step.expect, `step ${i}: ${JSON.stringify(decision)}`);
          if (step.retryAt !== undefined) assert.equal(decision.kind === 'rate-limited' && decision.retryAt, step.retryAt, `step ${i}`);
        }
      }
    });
  }
});

describe('ProposalPolicy: memory and store', () => {
  it('decideProposal is pure: the memory is not changed', () => {
    const memory: ProposalMemory = { version: 1, proposed: [{ mac: A, at: 5, branch: 'forseti/discovered/x' }], started: [1, 2, 3] };
    const copy = structuredClone(memory);
    assert.deepEqual(decideProposal(memory, A.toUpperCase(), 10, limits), { kind: 'already-proposed', mac: A, at: 5, branch: 'forseti/discovered/x' });
    assert.deepEqual(decideProposal(memory, B, 10, limits), { kind: 'rate-limited', retryAt: 60_002, why: '2 proposals per 60 s already started' });
    assert.deepEqual(memory, copy);
  });

  it('saved before it answers; a store that fails changes nothing and the caller is told', async () => {
    const store = new TextStore();
    const policy = await ProposalPolicy.open(store, limits);
    store.failNext = true;
    await assert.rejects(policy.begin(A, 0), /disk full/);
    assert.deepEqual(policy.snapshot(), { version: 1, proposed: [], started: [] });
    assert.equal((await policy.begin(A, 0)).kind, 'propose');
    await policy.remember(A, 1, 'forseti/discovered/52-54-00-00-00-0a');
    assert.deepEqual(JSON.parse(store.text!), { version: 1, proposed: [{ mac: A, at: 1, branch: 'forseti/discovered/52-54-00-00-00-0a' }], started: [0] });
    assert.equal(store.saves, 2);
    assert.equal((await policy.begin(A, 2)).kind, 'already-proposed');
    assert.equal(store.saves, 2, 'a refusal saves nothing');
  });

  it('what the store holds is taken where well-formed: bad entries, another version or garbage give an empty memory', async () => {
    const held = JSON.stringify({ version: 1, proposed: [{ mac: A, at: 1 }, { mac: 'zz', at: 2 }, { mac: B }, { mac: A, at: 9 }, 'x'], started: [1, 'two', null, 3] });
    const policy = await ProposalPolicy.open(new TextStore(held), limits);
    assert.deepEqual(policy.snapshot(), { version: 1, proposed: [{ mac: A, at: 1 }], started: [1, 3] });
    for (const text of [JSON.stringify({ version: 2, proposed: [{ mac: A, at: 1 }] }), '"text"', 'null', '[]']) {
      assert.deepEqual((await ProposalPolicy.open(new TextStore(text), limits)).snapshot(), { version: 1, proposed: [], started: [] }, text);
    }
  });

  it('at most maxRemembered machines, the oldest forgotten first; forget() lets one be proposed again', async () => {
    const policy = await ProposalPolicy.open(new TextStore(), { ...limits, maxRemembered: 2 });
    await policy.remember(A, 1);
    await policy.remember(B, 2);
    await policy.remember(C, 3);
    assert.deepEqual(policy.snapshot().proposed.map((p) => p.mac), [B, C]);
    await policy.forget(B.toUpperCase());
    assert.equal(policy.decide(B, 4).kind, 'propose');
    assert.equal(policy.decide(C, 4).kind, 'already-proposed');
  });

  it('limits that make no sense are refused', async () => {
    await assert.rejects(ProposalPolicy.open(new TextStore(), { maxProposals: 0, intervalSeconds: 60 }), RangeError);
    await assert.rejects(ProposalPolicy.open(new TextStore(), { maxProposals: 1.5, intervalSeconds: 60 }), RangeError);
    await assert.rejects(ProposalPolicy.open(new TextStore(), { maxProposals: 1, intervalSeconds: 0 }), RangeError);
  });
});
