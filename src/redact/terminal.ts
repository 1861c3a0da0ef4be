// Text from a BMC, a machine or a lab reaches the operator's terminal through the command line's output. A terminal
// acts on control characters: ESC starts sequences that set the window title, move the cursor, erase lines and
// repaint what the operator sees ("\x1b[2K\r\x1b[32mall hosts Converged"), C1 codes (U+009B is CSI on its own) do
// the same in terminals that take them, and bidirectional overrides (U+202E) reorder what is shown. Every CLI line
// that can carry remote text goes through these, as the \uXXXX escape of each such character: valid inside a JSON
// string too, so JSON output stays JSON with the same meaning.

/** C0 and C1 controls, DEL, the line and paragraph separators, and the bidirectional formatting characters. */
const UNSAFE = /[\p{Cc}\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

function escape(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** A whole output (lines of it, or a JSON document): every unsafe character escaped except line feeds and tabs. */
export function terminalSafe(output: string): string {
  return output.replace(UNSAFE, (c) => (c === '\n' || c === '\t' ? c : escape(c)));
}

/** One value printed within a line (a table cell, a message): every unsafe character escaped, line feeds too. */
export function printable(value: string): string {
  return value.replace(UNSAFE, escape);
}

/** A copy of `value` with every string in it (keys too) made `printable`; other values as they are. */
export function printableDeep<T>(value: T): T {
  return deep(value) as T;
}

function deep(value: unknown): unknown {
  if (typeof value === 'string') return printable(value);
  if (Array.isArray(value)) return value.map(deep);
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [printable(k), deep(v)]));
  }
  return value;
}
