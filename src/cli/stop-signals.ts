/** The signals that stop a long-running command. */
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/**
 * Listens for SIGTERM and SIGINT from the moment it is created: `first` resolves with the first, `second` with the
 * next one. While it listens, neither signal kills the process by itself.
 */
export class StopSignals {
  readonly first: Promise<StopSignal>;
  readonly second: Promise<StopSignal>;
  private received: StopSignal[] = [];
  private resolvers: Array<(signal: StopSignal) => void> = [];
  private readonly handlers = new Map<StopSignal, () => void>();

  constructor() {
    this.first = new Promise((resolve) => this.resolvers.push(resolve));
    this.second = new Promise((resolve) => this.resolvers.push(resolve));
    for (const signal of STOP_SIGNALS) {
      const handler = (): void => {
        this.received.push(signal);
        this.resolvers.shift()?.(signal);
      };
      this.handlers.set(signal, handler);
      process.on(signal, handler);
    }
  }

  /** The first signal received, if any. */
  get signal(): StopSignal | null {
    return this.received[0] ?? null;
  }

  dispose(): void {
    for (const [signal, handler] of this.handlers) process.off(signal, handler);
    this.handlers.clear();
  }

  /**
   * Ends the process by the signal itself, the default action once nobody listens. process.exit() cannot be used
   * here: Node joins the libuv thread pool on exit, and a thread stuck in a read (a FIFO, a hung network file system)
   * would hold it forever. A parent (systemd) sees the process ended by the signal it sent.
   */
  exitBy(signal: StopSignal): Promise<never> {
    this.dispose();
    process.kill(process.pid, signal);
    // Should the signal not end it (someone else still listens for it), it must not run on.
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), 1000);
    return new Promise<never>(() => undefined);
  }
}
