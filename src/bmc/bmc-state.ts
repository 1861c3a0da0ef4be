// What the BMC layer keeps per BMC beyond any one driver: the gate (the bound on exchanges in flight and each
// unreachable BMC's back-off), each BMC's command queue, the Onboard Administrator sessions shared by the blades of
// an enclosure, and which BMCs were warned about once. Drivers are rebuilt per commit, so this outlives them. Its
// owner creates it and hands it to every driver it makes: the agent one for its life, each `forseti bmc`, `bmc
// probe`, `discover` and `doctor` run its own. Two owners in one process share nothing.
import { CommandQueue, type CommandQueueOptions } from './command-queue.ts';
import { BmcGate, type BmcGateOptions } from './gate.ts';
import { OaSessionPool } from './oa/pool.ts';

/** What an IPMI driver found out about one BMC, for the drivers built after it. */
export interface IpmiLearned {
  /** The cipher suite the BMC took. */
  cipherSuite?: number;
  /** Get Device ID's manufacturer ID (null: it gave none). */
  manufacturerId?: number | null;
  /** The BMC does not implement boot option parameter 3 (valid bit clearing). */
  noValidBitClearing?: boolean;
}

export class BmcState {
  readonly gate: BmcGate;
  readonly oaSessions = new OaSessionPool();
  /** Per IPMI BMC key (see ipmiBmcKey): what its drivers learnt. */
  readonly ipmi = new Map<string, IpmiLearned>();
  private readonly queues = new Map<string, CommandQueue>();
  private readonly told = new Set<string>();

  constructor(options: BmcGateOptions = {}) {
    this.gate = new BmcGate(options);
  }

  /** The command queue of one BMC (key: "address:port", see the drivers' *BmcKey functions); the first caller's options create it. */
  queue(bmc: string, options?: CommandQueueOptions): CommandQueue {
    let queue = this.queues.get(bmc);
    if (queue === undefined) {
      queue = new CommandQueue(options);
      this.queues.set(bmc, queue);
    }
    return queue;
  }

  /** True the first time `what` is asked about: something said once per BMC (an insecure TLS setting, say). */
  once(what: string): boolean {
    if (this.told.has(what)) return false;
    this.told.add(what);
    return true;
  }

  /** Forgets the back-off and the queue of every BMC whose key is not in `keys` (no longer declared); `[]` forgets all. */
  retain(keys: Iterable<string>): void {
    const keep = new Set(keys);
    this.gate.retain(keep);
    for (const bmc of this.queues.keys()) if (!keep.has(bmc)) this.queues.delete(bmc);
    for (const bmc of this.ipmi.keys()) if (!keep.has(bmc)) this.ipmi.delete(bmc);
  }
}
