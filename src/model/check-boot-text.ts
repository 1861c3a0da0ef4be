// Text a commit writes into an iPXE script: the kernel command line template and every URL. iPXE runs a script
// line by line and splits each line into whitespace-separated words, where a word `||`, `&&` or `;` ends one
// command and starts the next and a word starting with `#` ends the line (src/core/exec.c, split_command and
// command_terminator): a line break, such a word, or a space hidden in a file name would let a profile or image run
// iPXE commands of its choosing. Each is a problem at the character that would do it.

import type { DocumentKind } from './schemas.ts';
import { firstControlChar } from './lab-tree.ts';
import { problem, type ProblemCode } from './problems.ts';
import type { LabProblem } from './types.ts';
import type { YamlFile, YamlPath } from './yaml-source.ts';

interface TextProblem {
  offset: number;
  code: ProblemCode;
  message: string;
}

/** Problems of a schema-valid document's boot text (profiles' cmdline and chain URL, images' URLs). */
export function checkBootText(kind: DocumentKind, yaml: YamlFile): LabProblem[] {
  const value = yaml.value as Record<string, unknown>;
  const at = (path: YamlPath, p: TextProblem): LabProblem => problem(yaml.refInString(path, p.offset), p.code, `${path.join('.')}: ${p.message}`);
  const problems: LabProblem[] = [];
  if (kind === 'Profile') {
    const boot = value['boot'] as { cmdline?: string; chain?: string };
    if (boot.cmdline !== undefined) for (const p of cmdlineProblems(boot.cmdline)) problems.push(at(['boot', 'cmdline'], p));
    if (boot.chain !== undefined) for (const p of urlProblems(boot.chain)) problems.push(at(['boot', 'chain'], p));
  } else if (kind === 'Image') {
    const files: Array<[YamlPath, unknown]> = [[['kernel'], value['kernel']], [['initrd'], value['initrd']]];
    const initrds = value['initrds'];
    if (Array.isArray(initrds)) initrds.forEach((f, i) => files.push([['initrds', i], f]));
    for (const [path, file] of files) {
      const url = (file as { url?: unknown } | undefined)?.url;
      if (typeof url !== 'string') continue;
      const found = urlProblems(url);
      for (const p of found.length > 0 ? found : servedNameProblems(url)) problems.push(at([...path, 'url'], p));
    }
  }
  return problems;
}

const IPXE_TERMINATORS: ReadonlySet<string> = new Set(['||', '&&', ';']);

/**
 * A kernel command line template: one line of words, none of which iPXE reads as the end of the command, and no
 * iPXE setting. iPXE expands `${name}` in every word of a command before running it, and again in what a setting
 * expanded to (src/core/exec.c: expand_tokens; src/core/settings.c: expand_settings), and `kernel` joins its words
 * into the kernel's command line: a `${...}` there hands part of it to whatever holds that setting at boot (a DHCP
 * option from whoever answers DHCP, an SMBIOS string; `${x:hex}`-style types turn it into any byte). The lab's own
 * values come through `{{ }}` placeholders instead.
 */
export function cmdlineProblems(cmdline: string): TextProblem[] {
  const control = firstControlChar(cmdline);
  if (control) {
    return [{ offset: control.offset, code: 'script-injection', message: `control character ${control.name} would break the kernel line of the iPXE script (a kernel command line is one line)` }];
  }
  const problems: TextProblem[] = [];
  for (const word of cmdline.matchAll(/\S+/g)) {
    if (IPXE_TERMINATORS.has(word[0]) || word[0].startsWith('#')) {
      problems.push({ offset: word.index, code: 'script-injection', message: `the word "${word[0]}" would end the kernel command in the iPXE script (iPXE reads ||, && and ; as command separators and # as a comment)` });
    }
  }
  for (let at = cmdline.indexOf('${'); at >= 0; at = cmdline.indexOf('${', at + 2)) {
    problems.push({ offset: at, code: 'script-injection', message: '"${" would have iPXE expand one of its settings into the kernel command line, whatever the DHCP server or firmware put there; use a {{ }} placeholder' });
  }
  return problems.sort((a, b) => a.offset - b.offset);
}

/**
 * A URL put into a script: no control characters, none hidden in percent-escapes, and escapes that decode (a
 * malformed one is where `decodeURIComponent` fails: "URI malformed"). Each pass looks at every character a
 * bounded number of times.
 */
export function urlProblems(url: string): TextProblem[] {
  const control = firstControlChar(url);
  if (control) return [{ offset: control.offset, code: 'script-injection', message: `control character ${control.name} in a URL` }];
  if (!URL.canParse(url)) return [{ offset: 0, code: 'image-url', message: 'not a valid URL' }];
  const bad = /%(?![0-9A-Fa-f]{2})/.exec(url);
  if (bad) {
    const start = escapeRunBefore(url, bad.index);
    return [{ offset: start, code: 'image-url', message: `malformed percent-escape "${url.slice(start, bad.index + 3)}" (% must be followed by two hex digits)` }];
  }
  for (const m of url.matchAll(/(?:%[0-9A-Fa-f]{2})+/g)) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(m[0]);
    } catch {
      return [{ offset: m.index, code: 'image-url', message: `malformed percent-escape "${m[0]}" (not UTF-8)` }];
    }
    const hidden = firstControlChar(decoded);
    if (hidden) return [{ offset: m.index, code: 'script-injection', message: `"${m[0]}" hides control character ${hidden.name} in the URL` }];
  }
  return [];
}

const HEX = /^[0-9A-Fa-f]{2}$/;

/** Where the run of well-formed escapes (`%E0%A4`) that ends at `end` starts. */
function escapeRunBefore(url: string, end: number): number {
  let start = end;
  while (start >= 3 && url[start - 3] === '%' && HEX.test(url.slice(start - 2, start))) start -= 3;
  return start;
}

/**
 * The name an image file is served under is the last segment of its URL, decoded (src/render/urls.ts); it becomes
 * one word of the kernel line (`initrd=NAME`) and of a URL, so it may hold no space, slash or `$` (iPXE expands
 * `${...}` in every word).
 */
function servedNameProblems(url: string): TextProblem[] {
  if (!URL.canParse(url)) return [];
  const { pathname } = new URL(url);
  const raw = pathname.slice(pathname.lastIndexOf('/') + 1);
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    return []; // reported by urlProblems
  }
  const bad = /[\s/\\$]/.exec(name);
  if (bad || name === '.' || name === '..') {
    const offset = Math.max(0, url.lastIndexOf(raw));
    const why = bad ? `holds ${bad[0] === '$' ? '"$"' : bad[0] === '/' || bad[0] === '\\' ? 'a slash' : 'white space'}` : 'is a directory name';
    return [{ offset, code: 'image-url', message: `the file name this URL is served under ("${name}") ${why}; it must be one word of the iPXE kernel line` }];
  }
  return [];
}
