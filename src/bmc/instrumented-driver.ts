import type { BmcDriver } from './driver.ts';

/** What counts BMC calls (src/observe/metrics.ts Metrics is one). */
export interface BmcCallObserver {
  observeBmcCall(kind: string, op: string, seconds: number, ok: boolean): void;
}

/** Not BMC round trips: closing a session is bookkeeping. */
const UNTIMED: ReadonlySet<string> = new Set(['close', 'constructor']);

/**
 * The same driver, with the latency and failure of every method call counted under (driver kind, method
 * name). A proxy rather than a list of methods: operations added to BmcDriver later are timed too, and
 * optional methods a driver lacks stay absent, so feature checks (`driver.softOff?.()`) keep working.
 */
export function instrumentBmcDriver<D extends BmcDriver>(driver: D, metrics: BmcCallObserver, now: () => number = () => performance.now()): D {
  const wrappers = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  return new Proxy(driver, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof prop !== 'string' || typeof value !== 'function' || UNTIMED.has(prop)) return value;
      let wrapper = wrappers.get(prop);
      if (!wrapper) {
        const method = value as (...args: unknown[]) => unknown;
        wrapper = async (...args: unknown[]): Promise<unknown> => {
          const start = now();
          try {
            const result = await method.apply(target, args);
            metrics.observeBmcCall(target.kind, prop, (now() - start) / 1000, true);
            return result;
          } catch (err) {
            metrics.observeBmcCall(target.kind, prop, (now() - start) / 1000, false);
            throw err;
          }
        };
        wrappers.set(prop, wrapper);
      }
      return wrapper;
    },
  });
}
