import { BmcState } from '../bmc/bmc-state.ts';
import type { BmcDriver } from '../bmc/driver.ts';
import { createDriver, retainBmcState, type BmcSettings } from '../bmc/driver-factory.ts';
import { instrumentBmcDriver, type BmcCallObserver } from '../bmc/instrumented-driver.ts';
import type { Logger } from '../log.ts';
import type { Lab } from '../model/types.ts';
import type { Secrets } from '../secrets/secrets.ts';
import type { SshHostKeyStore } from '../bmc/oa/index.ts';

/**
 * The BMC driver of each host of the served commit, made on first use. Drivers are rebuilt per commit (a BMC address
 * or credential may have changed); the BMC state (back-off, queues, OA sessions) outlives them, for the BMCs the
 * commit still declares.
 */
export class HostDrivers {
  private readonly drivers = new Map<string, BmcDriver>();
  private readonly state: BmcState;

  constructor(
    private readonly settings: BmcSettings,
    private readonly log: Logger,
    private readonly metrics: BmcCallObserver,
    /** The served lab and the secrets of its commit. */
    private readonly served: () => { lab: Lab; secrets: Secrets } | null,
    /** Onboard Administrators' SSH host keys first seen (trust on first use). */
    private readonly sshHostKeys?: SshHostKeyStore,
  ) {
    this.state = new BmcState(settings.maxConcurrent !== undefined ? { maxConcurrent: settings.maxConcurrent } : {});
  }

  driverFor(host: string): BmcDriver {
    let driver = this.drivers.get(host);
    if (!driver) {
      const served = this.served();
      const declared = served?.lab.hosts.get(host);
      if (!served || !declared) throw new Error(`host ${host} is not declared`);
      driver = instrumentBmcDriver(createDriver(declared, served.secrets, this.settings, this.log, { state: this.state, site: served.lab.site, ...(this.sshHostKeys ? { oa: { hostKeyStore: this.sshHostKeys } } : {}) }), this.metrics);
      this.drivers.set(host, driver);
    }
    return driver;
  }

  /** A commit switched: every driver is closed (Redfish sessions logged out), the state of BMCs it no longer declares forgotten. */
  async switchedTo(lab: Lab): Promise<void> {
    await this.close();
    retainBmcState(this.state, lab.hosts.values());
  }

  async close(): Promise<void> {
    const old = [...this.drivers.values()];
    this.drivers.clear();
    for (const driver of old) await driver.close?.().catch(() => undefined);
  }
}
