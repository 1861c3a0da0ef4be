// Small helpers for plain data read from files and documents.

/**
 * The object without its undefined-valued keys (optional fields stay absent in YAML and JSON). A key named
 * `__proto__` (read from a file) stays an own property, as Object.fromEntries would make it; a plain assignment
 * would set the new object's prototype instead. A loop: entries and fromEntries cost ~5 µs an object, a restart
 * builds 10,000 host statuses.
 */
export function stripUndefined<T extends object>(obj: T): T {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(obj)) {
    const value = (obj as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    else out[key] = value;
  }
  return out as T;
}

/** A mapping (not null, not a list). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
