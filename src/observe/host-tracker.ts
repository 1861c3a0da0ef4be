import type { Logger } from '../log.ts';
import { Journal } from './journal.ts';
import { applyEvent, initialState, type HostEvent } from '../core/host-lifecycle.ts';
import type { ObservedHost } from '../core/host-state.ts';

export type HostChangeListener = (host: string, state: ObservedHost, event: HostEvent) => void;

/**
 * Owns the observed state of every host. Every event goes through here: the state moves by the pure
 * `applyEvent`, the journal is written before the caller acts on the new state, and listeners publish status.
 */
export class HostTracker {
  private states = new Map<string, ObservedHost>();
  private listeners: HostChangeListener[] = [];
  private saving: Promise<void> = Promise.resolve();
  /** The save queued behind the one in flight, not begun yet: every change until it begins is written by it. */
  private queued: Promise<void> | null = null;
  private closed = false;

  /**
   * Events are recorded as they happened: the state is what the agent decides with (roles, steps, revisions), so no
   * redaction touches it. Error texts and inventories from BMCs may carry a secret; each way out redacts them (the
   * log destination, the status branch, the API bodies, the alert payloads).
   */
  constructor(
    private readonly journal: Journal,
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  async load(): Promise<void> {
    this.states = await this.journal.load();
  }

  onChange(listener: HostChangeListener): void {
    this.listeners.push(listener);
  }

  get(host: string): ObservedHost {
    return this.states.get(host) ?? initialState(this.clock());
  }

  all(): Map<string, ObservedHost> {
    return this.states;
  }

  /**
   * No event counts any more: an action a stop left behind must not write the journal of a stopped agent (a new one
   * may own it by then). What it did not record is what a crash would not have recorded.
   */
  close(): void {
    this.closed = true;
  }

  /** Applies an event and waits until the journal holds the result. */
  async record(host: string, event: HostEvent): Promise<ObservedHost> {
    const before = this.get(host);
    if (this.closed) return before;
    const after = applyEvent(before, event, this.clock());
    if (after === before && this.states.has(host)) return before;
    this.states.set(host, after);
    if (after.phase !== before.phase || after.step !== before.step) {
      this.log.info({ host, phase: after.phase, step: after.step, from: before.phase, event: event.kind, error: after.lastError?.message }, 'host state changed');
    }
    await this.persist();
    for (const listener of this.listeners) listener(host, after, event);
    return after;
  }

  /** Hosts no longer declared are dropped from the journal. */
  async retain(names: Set<string>): Promise<void> {
    let changed = false;
    for (const name of [...this.states.keys()]) {
      if (!names.has(name)) {
        this.states.delete(name);
        changed = true;
      }
    }
    if (changed) await this.persist();
  }

  /**
   * Resolves once a save that began after this call's change is on disk. Saves are grouped: while one is written,
   * the changes meanwhile wait for one next save, not one each (10,000 hosts changing at once wrote the whole
   * journal 10,000 times in turn, minutes during which a new commit could not switch).
   */
  private persist(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.saving
      .catch(() => undefined)
      .then(() => {
        this.queued = null; // changes from here on need a save after this one
        return this.journal.save(this.states);
      });
    this.queued = next;
    this.saving = next;
    return next;
  }
}
