// Characters that change what a reviewer sees without showing themselves: bidirectional controls (U+202E turns
// `init=/bin/sh` around on screen, the "Trojan Source" attack, CVE-2021-42574), zero-width characters and joiners,
// other format characters (Unicode category Cf: soft hyphen, word joiner, tags, BOM), lone surrogates, private-use
// characters, line and paragraph separators, spaces that are not U+0020 (two kernel arguments on screen, one to
// the kernel), and the fillers and selectors that render as nothing. A pull request's plan comment shows lab text
// to the reviewer who approves it, so such a character is refused wherever the lab writes text.

const INVISIBLE = '\\p{Cf}\\p{Cs}\\p{Co}\\p{Zl}\\p{Zp}\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u034F\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u2800\\u3164\\uFE00-\\uFE0F\\uFFA0\\u{E0100}-\\u{E01EF}';
const INVISIBLE_CHAR = new RegExp(`[${INVISIBLE}]`, 'u');
/** Invisible characters and control characters (C0, DEL, C1): what `visible` escapes. */
const UNSHOWABLE = new RegExp(`[${INVISIBLE}\\p{Cc}]`, 'gu');
const INVISIBLE_CHARS = new RegExp(`[${INVISIBLE}]`, 'gu');
/** Nothing but printable ASCII, tab and line breaks: no invisible character can be in it. */
const PLAIN_ASCII = /^[\t\n\r\x20-\x7e]*$/;

export function codePointName(c: string): string {
  return `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The first invisible or format character of `text`, if any, as `U+202E`. */
export function firstInvisibleChar(text: string): { offset: number; name: string } | undefined {
  if (PLAIN_ASCII.test(text)) return undefined;
  const m = INVISIBLE_CHAR.exec(text);
  return m ? { offset: m.index, name: codePointName(m[0]) } : undefined;
}

/** `text` with every invisible and control character written as `\u{202E}`, so what is printed is what is there. */
export function visible(text: string): string {
  if (!/[^\x20-\x7e]/.test(text)) return text;
  return text.replace(UNSHOWABLE, (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16).toUpperCase()}}`);
}

/** `text` with every invisible character (not line breaks or tabs) written as `\u{202E}`: for multi-line output. */
export function showInvisible(text: string): string {
  if (PLAIN_ASCII.test(text)) return text;
  return text.replace(INVISIBLE_CHARS, (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16).toUpperCase()}}`);
}

export const INVISIBLE_MESSAGE = 'an invisible or format character (bidirectional override, zero-width, non-ASCII space); it changes what a reviewer sees without showing itself';
