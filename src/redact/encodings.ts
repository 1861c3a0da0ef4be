// The forms a secret takes once some layer has escaped it, as one regular expression per secret. Rather than
// listing whole encoded strings (and missing the encoder that escapes `'` but not `!`), each character of the
// secret may appear in any of its escapes, so mixed and partial escaping is found as well:
//   raw                 p"w
//   JSON / JS / YAML    \"  \\  \/  \n  \u0022  \x22, nested (\\\" …), and '' inside single-quoted YAML
//   URL                 %22 %2f %2F (UTF-8 bytes, either hex case), + for a space, %25-doubled, ISO-8859-1
//   HTML / XML          &quot; &#34; &#x22; &#X22; (any leading zeros), the Latin-1 named entities
// Basic credentials travel as base64 of `user:password` (RFC 7617), which no per-character rule can see:
// basicForms lists those strings.

/** Backslash, raw or percent-encoded, as an escape prefix; bounded so a run of backslashes cannot backtrack long. */
const BACKSLASH = String.raw`(?:\\|%(?:25)*5[cC])`;
const ESCAPE_PREFIX = `${BACKSLASH}{1,16}`;

/** JSON's short escapes (RFC 8259 section 7), also what JavaScript and YAML double-quoted scalars use. */
const SHORT_ESCAPES: Record<string, string> = { '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't', '"': '"', '\\': '\\\\', '/': '/' };

/** The named character references of HTML 4 / XML for ASCII, matched in any letter case (HTML parsers do). */
const ASCII_ENTITIES: Record<string, string[]> = { '&': ['amp'], '<': ['lt'], '>': ['gt'], '"': ['quot'], "'": ['apos'] };

/** HTML's named references for U+00A0..U+00FF, in code point order (case matters for these). */
const LATIN1_ENTITIES = (
  'nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute micro ' +
  'para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil ' +
  'Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave ' +
  'Uacute Ucirc Uuml Yacute THORN szlig agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml ' +
  'igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml'
).split(' ');

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** `[aA][bB]…`: the letters of `text` in either case, everything else literal. */
function anyCase(text: string): string {
  return [...text].map((c) => (c.toLowerCase() !== c.toUpperCase() ? `[${c.toLowerCase()}${c.toUpperCase()}]` : escapeRegExp(c))).join('');
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** Percent-encodings of these bytes (`%` possibly itself encoded again as `%25`), hex in either case. */
function percent(bytes: Iterable<number>): string {
  return [...bytes].map((b) => `%(?:25)*${anyCase(hex(b, 2))}`).join('');
}

/** Every way one character (code point) of a secret may be written. */
function characterForms(char: string): string {
  const cp = char.codePointAt(0) ?? 0;
  const forms = new Set<string>([escapeRegExp(char), percent(Buffer.from(char, 'utf8'))]);
  if (cp >= 0x80 && cp <= 0xff) forms.add(percent([cp]));
  if (char === ' ') forms.add(String.raw`\+`);
  if (char === "'") forms.add("''");
  const short = SHORT_ESCAPES[char];
  if (short !== undefined) forms.add(char === '\\' ? ESCAPE_PREFIX : `${ESCAPE_PREFIX}${escapeRegExp(short)}`);
  if (char === '"' || char === '/') forms.add(`${BACKSLASH}{0,16}${percent([cp])}`);
  const units = [...Array(char.length).keys()].map((i) => char.charCodeAt(i));
  forms.add(units.map((u) => `${ESCAPE_PREFIX}u${anyCase(hex(u, 4))}`).join(''));
  if (cp <= 0xff) forms.add(`${ESCAPE_PREFIX}x${anyCase(hex(cp, 2))}`);
  forms.add(`&#0*${cp};`);
  forms.add(`&#[xX]0*${anyCase(hex(cp, 1))};`);
  for (const name of ASCII_ENTITIES[char] ?? []) forms.add(`&${anyCase(name)};`);
  const latin1 = cp >= 0xa0 && cp <= 0xff ? LATIN1_ENTITIES[cp - 0xa0] : undefined;
  if (latin1) forms.add(`&${latin1};`);
  return `(?:${[...forms].join('|')})`;
}

/** The source of a regular expression that matches `secret` raw or in any of the escapes above. */
export function secretPattern(secret: string): string {
  return [...secret].map(characterForms).join('');
}

/**
 * The Authorization header's Basic credentials for this user and password (RFC 7617): base64 of `user:password`
 * in UTF-8, in ISO-8859-1 where that differs (what older clients send), and base64url.
 */
export function basicForms(username: string, password: string): string[] {
  const pair = `${username}:${password}`;
  const encodings = [Buffer.from(pair, 'utf8')];
  if ([...pair].every((c) => (c.codePointAt(0) ?? 0) <= 0xff)) encodings.push(Buffer.from(pair, 'latin1'));
  const forms = new Set<string>();
  for (const bytes of encodings) {
    const b64 = bytes.toString('base64');
    forms.add(b64);
    // Without the padding too: a header cut short, or a base64url one, still carries the secret.
    forms.add(b64.replace(/=+$/, ''));
    forms.add(bytes.toString('base64url'));
  }
  return [...forms];
}
