// Host names from a pattern: `bld-{bay:02}`, `{serial}`, `{model}-{serial}`. Placeholders take the machine's facts;
// `:0N` pads a number with zeros to N digits. The result is made a host name (a lower-case DNS label): letters
// lower-cased, every run of other characters one `-`, at most 63 characters.

export class NamePatternError extends Error {
  override readonly name = 'NamePatternError';
}

const PLACEHOLDER = /\{([a-z]+)(?::0(\d))?\}/g;

/** The placeholders a pattern uses; throws NamePatternError on a malformed one. */
export function placeholdersOf(pattern: string, known: readonly string[]): string[] {
  const used: string[] = [];
  const rest = pattern.replace(PLACEHOLDER, (_m, name: string) => {
    if (!known.includes(name)) throw new NamePatternError(`--name-pattern: unknown placeholder {${name}} (known: ${known.map((k) => `{${k}}`).join(' ')})`);
    used.push(name);
    return '';
  });
  if (/[{}]/.test(rest)) throw new NamePatternError(`--name-pattern: "${pattern}" has a brace that is no placeholder ({name} or {name:0N})`);
  return used;
}

/**
 * The pattern with the facts filled in, as a host name; `missing` names the placeholder a machine has no value for
 * (the name cannot be made), `empty` a pattern that leaves nothing.
 */
export function expandNamePattern(pattern: string, values: Readonly<Record<string, string | number | undefined>>): { name: string } | { missing: string } | { empty: true } {
  let missing: string | undefined;
  const text = pattern.replace(PLACEHOLDER, (_m, key: string, width: string | undefined) => {
    const value = values[key];
    if (value === undefined || value === '') {
      missing ??= key;
      return '';
    }
    if (width !== undefined && typeof value === 'number') return String(value).padStart(Number(width), '0');
    return String(value);
  });
  if (missing !== undefined) return { missing };
  const name = hostName(text);
  return name === '' ? { empty: true } : { name };
}

/** Any text as a lower-case DNS label (schemas/host.schema.json `name`); '' when nothing is left. */
export function hostName(text: string): string {
  const label = text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return label.slice(0, 63).replace(/-+$/, '');
}
