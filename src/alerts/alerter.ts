import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import { backoffMs, DEFAULT_RETRY, isRetriableStatus, type RetryPolicy } from './backoff.ts';
import { AlertStateCorruptError } from './errors.ts';
import { isProblem, keyMatches, keyOf, keyString, resolvedLine, summaryLine } from './format.ts';
import { describeSink, requestFor, sinkWants } from './sinks.ts';
import { AlertStore, emptyState, type AlertState, type Delivery } from './store.ts';
import type { Alert, AlertEvent, AlertKey, ResolvedSink } from './types.ts';
import type { AlertKind } from '../model/site-alerts.ts';

export interface AlerterOptions {
  /** The site's name, at the start of every line. */
  site: string;
  sinks: ResolvedSink[];
  /** The alert state (queue, deduplication) is kept in `<stateDir>/alerts.json`. */
  stateDir: string;
  log: Logger;
  dedupMs?: number;
  retry?: RetryPolicy;
  /** Per HTTP request. */
  timeoutMs?: number;
  clock?: () => number;
  fetch?: typeof fetch;
  newId?: () => string;
  /** Applied to each alert as it is queued (what is stored and sent), after it was keyed and formatted. */
  redact?: <T>(value: T) => T;
}

/** Problems never re-emitted (a host removed from Git) stop being tracked after this long. */
const FORGET_AFTER_MS = 7 * 24 * 3600 * 1000;
const KEEP_GIVEN_UP = 100;
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Sends each alert once per (host, reason, revision) and window to every sink that wants it, a recovery when the
 * problem clears, and retries failed deliveries with exponential backoff. Every change is persisted before the
 * caller's promise resolves; a delivery finally given up is logged and kept in the state file.
 */
export class Alerter {
  private state: AlertState = emptyState();
  private readonly store: AlertStore;
  private readonly ready: Promise<void>;
  private readonly clock: () => number;
  private readonly fetch: typeof fetch;
  private readonly newId: () => string;
  private readonly dedupMs: number;
  private readonly retry: RetryPolicy;
  private readonly sinks: Map<string, ResolvedSink>;
  private timer: NodeJS.Timeout | null = null;
  private delivering: Promise<void> | null = null;
  private started = false;
  /** Set by stop(): nothing is queued or written after it, so the state directory is the agent's to remove. */
  private closed = false;
  /** emit() and resolve() calls in progress: stop() waits for them before the last save. */
  private readonly inflight = new Set<Promise<boolean>>();

  constructor(private readonly options: AlerterOptions) {
    this.store = new AlertStore(join(options.stateDir, 'alerts.json'));
    this.clock = options.clock ?? Date.now;
    this.fetch = options.fetch ?? globalThis.fetch;
    this.newId = options.newId ?? randomUUID;
    this.dedupMs = options.dedupMs ?? 3600_000;
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.sinks = new Map(options.sinks.map((s) => [s.name, s]));
    this.ready = this.load();
  }

  /** Delivers what is due (a queue left by a previous run included) and keeps delivering until stopped. */
  async start(): Promise<void> {
    await this.ready;
    this.started = true;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.started = false;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.allSettled([...this.inflight]);
    await this.delivering;
    await this.store.save(this.state);
  }

  /** Queues an event for the sinks that want it. False when it was deduplicated or clears nothing, or after stop(). */
  emit(event: AlertEvent): Promise<boolean> {
    return this.tracked(() => this.queueEvent(event));
  }

  /**
   * Clears a problem with no event of its own (a BMC answering again, a rejection superseded by a good commit):
   * a `resolved` alert goes to the sinks that had the problem. Host and revision left out match any.
   */
  resolve(pattern: { host?: string; reason: string; revision?: string }, message?: string): Promise<boolean> {
    return this.tracked(() => this.queueResolved(pattern, message));
  }

  private tracked(work: () => Promise<boolean>): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const done = work().finally(() => this.inflight.delete(done));
    this.inflight.add(done);
    return done;
  }

  private async queueEvent(event: AlertEvent): Promise<boolean> {
    await this.ready;
    const now = this.clock();
    const key = keyOf(event);
    const ks = keyString(key);
    let alert: Alert;
    if (isProblem(event)) {
      const active = this.state.active[ks];
      if (active && now - active.sentAt < this.dedupMs) return false;
      this.state.active[ks] = { key, kind: event.kind, sentAt: now };
      alert = this.alert(event, key, now, false);
    } else {
      const cleared = this.takeActive({ ...(key.host !== undefined && { host: key.host }), reason: key.reason });
      if (cleared) {
        alert = { ...this.alert(event, key, now, true), resolves: { ...cleared.key, kind: cleared.kind } };
      } else if (event.kind === 'host-converged') {
        const sent = this.state.notified[ks];
        if (sent !== undefined && now - sent < this.dedupMs) return false;
        this.state.notified[ks] = now;
        alert = this.alert(event, key, now, false);
      } else {
        return false;
      }
    }
    this.enqueue(alert, now);
    await this.persist();
    return true;
  }

  private async queueResolved(pattern: { host?: string; reason: string; revision?: string }, message?: string): Promise<boolean> {
    await this.ready;
    const cleared = this.takeActive(pattern);
    if (!cleared) return false;
    const now = this.clock();
    const alert: Alert = this.redact({
      id: this.newId(),
      kind: 'resolved',
      site: this.options.site,
      revision: cleared.key.revision,
      reason: cleared.key.reason,
      summary: resolvedLine(this.options.site, cleared.key, message),
      recovery: true,
      resolves: { ...cleared.key, kind: cleared.kind },
      at: new Date(now).toISOString(),
      ...(cleared.key.host !== undefined && { host: cleared.key.host }),
    });
    this.enqueue(alert, now);
    await this.persist();
    return true;
  }

  /** Deliveries waiting for their next attempt. */
  pending(): readonly Delivery[] {
    return this.state.queue;
  }

  givenUp(): readonly Delivery[] {
    return this.state.givenUp;
  }

  /** Attempts every delivery that is due now. Concurrent calls share one pass. */
  deliverDue(): Promise<void> {
    this.delivering ??= this.ready
      .then(() => this.deliverPass())
      .finally(() => {
        this.delivering = null;
        this.scheduleNext();
      });
    return this.delivering;
  }

  private async deliverPass(): Promise<void> {
    const due = this.state.queue.filter((d) => d.nextAt <= this.clock());
    for (const delivery of due) {
      await this.attempt(delivery);
      await this.store.save(this.state);
    }
  }

  private async attempt(delivery: Delivery): Promise<void> {
    const sink = this.sinks.get(delivery.sink);
    const request = sink ? requestFor(sink, delivery.alert) : null;
    if (!sink || !request) return this.giveUp(delivery, sink ? 'the sink no longer takes this alert' : 'the sink is no longer configured');
    delivery.attempts += 1;
    const context = { sink: describeSink(sink), alert: delivery.alert.kind, host: delivery.alert.host, revision: delivery.alert.revision, attempt: delivery.attempts };
    let error: string;
    let retriable: boolean;
    try {
      const res = await this.fetch(request.url, { method: request.method, headers: request.headers, body: request.body, signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000) });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        this.remove(delivery);
        this.options.log.info(context, 'alert delivered');
        return;
      }
      error = `HTTP ${res.status}`;
      retriable = isRetriableStatus(res.status);
    } catch (err) {
      error = networkError(err);
      retriable = true;
    }
    delivery.lastError = error;
    if (!retriable || delivery.attempts >= this.retry.maxAttempts) return this.giveUp(delivery, error);
    delivery.nextAt = this.clock() + backoffMs(delivery.attempts, this.retry);
    this.options.log.warn({ ...context, error, retryInMs: delivery.nextAt - this.clock() }, 'alert delivery failed; will retry');
  }

  private giveUp(delivery: Delivery, reason: string): void {
    this.remove(delivery);
    delivery.lastError = reason;
    this.state.givenUp = [...this.state.givenUp, delivery].slice(-KEEP_GIVEN_UP);
    this.options.log.error(
      { sink: delivery.sink, alert: delivery.alert.kind, host: delivery.alert.host, revision: delivery.alert.revision, attempts: delivery.attempts, error: reason, summary: delivery.alert.summary },
      'alert delivery given up; kept in the alert state file',
    );
  }

  private remove(delivery: Delivery): void {
    this.state.queue = this.state.queue.filter((d) => d !== delivery);
  }

  private redact(alert: Alert): Alert {
    return this.options.redact ? this.options.redact(alert) : alert;
  }

  private alert(event: AlertEvent, key: AlertKey, now: number, recovery: boolean): Alert {
    return this.redact({
      id: this.newId(),
      kind: event.kind,
      site: this.options.site,
      revision: event.revision,
      reason: key.reason,
      summary: summaryLine(this.options.site, event, recovery),
      recovery,
      event,
      at: new Date(now).toISOString(),
      ...(key.host !== undefined && { host: key.host }),
    });
  }

  private enqueue(alert: Alert, now: number): void {
    for (const sink of this.sinks.values()) {
      if (!sinkWants(sink, alert) || !requestFor(sink, alert)) continue;
      this.state.queue.push({ id: `${alert.id}/${sink.name}`, sink: sink.name, alert, attempts: 0, nextAt: now, firstAt: now });
    }
  }

  /** Removes the active problems matching the pattern; returns the first (the one the recovery names). */
  private takeActive(pattern: { host?: string; reason: string; revision?: string }): { key: AlertKey; kind: AlertKind } | null {
    let first: { key: AlertKey; kind: AlertKind } | null = null;
    for (const [ks, problem] of Object.entries(this.state.active)) {
      if (!keyMatches(problem.key, pattern)) continue;
      first ??= problem;
      delete this.state.active[ks];
    }
    return first;
  }

  private async persist(): Promise<void> {
    this.forgetOld();
    await this.store.save(this.state);
    if (this.started) this.schedule(0);
  }

  private forgetOld(): void {
    const now = this.clock();
    for (const [ks, p] of Object.entries(this.state.active)) if (now - p.sentAt > FORGET_AFTER_MS) delete this.state.active[ks];
    for (const [ks, at] of Object.entries(this.state.notified)) if (now - at > this.dedupMs) delete this.state.notified[ks];
  }

  private scheduleNext(): void {
    if (!this.started || this.state.queue.length === 0) return;
    const next = Math.min(...this.state.queue.map((d) => d.nextAt));
    this.schedule(Math.max(0, next - this.clock()));
  }

  private schedule(delayMs: number): void {
    if (!this.started) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.deliverDue().catch((err: unknown) => this.options.log.error({ err }, 'alert delivery pass failed'));
    }, Math.min(delayMs, MAX_TIMER_MS));
    this.timer.unref();
  }

  private async load(): Promise<void> {
    try {
      this.state = await this.store.load();
    } catch (err) {
      if (!(err instanceof AlertStateCorruptError)) throw err;
      const aside = await this.store.quarantine(this.clock());
      this.options.log.error({ err, movedTo: aside }, 'alert state unreadable; moved aside, starting with an empty queue');
      this.state = emptyState();
    }
  }
}

/** A network failure in words, without the URL (a Slack URL is a secret). */
function networkError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
    const code = (err.cause as { code?: unknown } | undefined)?.code;
    if (typeof code === 'string') return code;
    return err.name;
  }
  return 'request failed';
}
