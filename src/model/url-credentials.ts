// URLs with a password in them (`scheme://user:password@host`), found in one pass over a text. The regular
// expression this replaces (/\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:[^\s/@]+@/gi) tried a scheme at every word start
// of a run like `a.a.a.a…` and backtracked over the rest of it each time: quadratic, minutes on a 1 MiB file.
// Here every `://` is found once, the scheme is read backwards from it and the user and password forwards, and
// none of those stretches can contain another `://`, so no character is looked at more than a few times.

import type { ScanMeter } from '../core/template.ts';

export interface UrlCredential {
  /** Where the URL's scheme starts. */
  start: number;
  /** Where the password starts (just after `user:`). */
  password: number;
  /** The `@` that ends the password. */
  at: number;
}

const isSchemeChar = (c: string): boolean => /^[a-z0-9+.-]$/i.test(c);
const isLetter = (c: string): boolean => /^[a-z]$/i.test(c);
const isWordChar = (c: string | undefined): boolean => c !== undefined && /^\w$/.test(c);
const isSpace = (c: string): boolean => /^\s$/.test(c);

/** Every `scheme://user:password@` in `text`, in order, none overlapping (as a global regular expression would). */
export function urlCredentials(text: string, meter?: ScanMeter): UrlCredential[] {
  const found: UrlCredential[] = [];
  let from = 0;
  for (let sep = text.indexOf('://', from); sep >= 0; sep = text.indexOf('://', from)) {
    if (meter) meter.steps += sep + 3 - from;
    const start = schemeStart(text, sep, from, meter);
    const end = start >= 0 ? userinfoEnd(text, sep + 3, meter) : undefined;
    if (start >= 0 && end) {
      found.push({ start, password: end.password, at: end.at });
      from = end.at + 1;
    } else from = sep + 1;
  }
  return found;
}

/**
 * The leftmost `i` in the run of scheme characters that ends at `sep` (not before `from`) where a scheme may start:
 * a letter at a word boundary. -1 if none.
 */
function schemeStart(text: string, sep: number, from: number, meter?: ScanMeter): number {
  let i = sep;
  while (i > from && isSchemeChar(text[i - 1] ?? '')) i--;
  if (meter) meter.steps += sep - i;
  for (let s = i; s < sep; s++) if (isLetter(text[s] ?? '') && !isWordChar(text[s - 1])) return s;
  return -1;
}

/** `user:password@` from `i`: a user without `:`, `/`, `@` or space, then a password without `/`, `@` or space. */
function userinfoEnd(text: string, i: number, meter?: ScanMeter): { password: number; at: number } | undefined {
  let j = i;
  while (j < text.length && !isSpace(text[j] ?? '') && !'/:@'.includes(text[j] ?? '')) j++;
  if (meter) meter.steps += j - i + 1;
  if (j === i || text[j] !== ':') return undefined;
  const password = j + 1;
  let k = password;
  while (k < text.length && !isSpace(text[k] ?? '') && !'/@'.includes(text[k] ?? '')) k++;
  if (meter) meter.steps += k - password + 1;
  if (k === password || text[k] !== '@') return undefined;
  return { password, at: k };
}
