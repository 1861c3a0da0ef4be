// What the BMC layer keeps per BMC in the process, beyond any one driver: the gate's back-off marks and each BMC's
// command queue (keyed alike, see the drivers' *BmcKey functions). Drivers are rebuilt per commit, so this state
// outlives them; its owner drops what belongs to BMCs no longer declared.
import { retainSharedCommandQueues } from './command-queue.ts';
import { resetSharedBmcGate, sharedBmcGate } from './gate.ts';

/** Forgets the back-off and the queue of every BMC whose key is not in `keys`; `[]` forgets every BMC. */
export function retainSharedBmcState(keys: Iterable<string>): void {
  const keep = new Set(keys);
  sharedBmcGate().retain(keep);
  retainSharedCommandQueues(keep);
}

/** Tests: a fresh process-wide gate (default size) and no queues. Call once the drivers that used them are closed. */
export function resetSharedBmcState(): void {
  resetSharedBmcGate();
  retainSharedCommandQueues(new Set());
}
