// How much a commit may make forseti read and parse. Each cap reached is a validation problem, never a crash:
// a lab is a few hundred kilobytes of YAML, so the defaults leave ample room while keeping one load's memory and
// time bounded whatever a commit holds.

export interface LabLimits {
  /** Bytes of one file forseti reads (a YAML document, a config template, a CA file, the SOPS file). */
  maxFileBytes: number;
  /** Bytes of all files one load reads together. */
  maxLabBytes: number;
  /** Alias nodes (`*name`) in one YAML file; also bounds what they expand to. */
  maxYamlAliases: number;
  /** Nested collections (mappings, sequences) in one YAML file. */
  maxYamlDepth: number;
  /** Nodes (keys, values, list items) in one YAML file. */
  maxYamlNodes: number;
  /** Problems reported for one load (a commit): the first ones, then one line saying how many more. */
  maxProblems: number;
}

export const DEFAULT_LAB_LIMITS: Readonly<LabLimits> = Object.freeze({
  maxFileBytes: 1024 * 1024,
  maxLabBytes: 64 * 1024 * 1024,
  maxYamlAliases: 100,
  maxYamlDepth: 64,
  maxYamlNodes: 20_000,
  maxProblems: 100,
});

const KEYS = Object.keys(DEFAULT_LAB_LIMITS) as Array<keyof LabLimits>;

/** `partial` over the defaults; throws RangeError naming the setting that is not a positive whole number. */
export function labLimits(partial: Partial<Record<keyof LabLimits, unknown>> = {}): LabLimits {
  const limits = { ...DEFAULT_LAB_LIMITS };
  for (const key of KEYS) {
    const value = partial[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new RangeError(`${key} must be a whole number of at least 1`);
    limits[key] = value;
  }
  for (const key of Object.keys(partial)) if (!KEYS.includes(key as keyof LabLimits)) throw new RangeError(`unknown limit ${key} (known: ${KEYS.join(', ')})`);
  return limits;
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}
