// Rules of src/ that a type checker does not enforce: no module-level mutable state (whoever owns state creates it
// and passes it in), and one layout for error classes.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * Not checked here, with the reason. The release bundle's asset root is the process's own directory of run-time
 * files: made on first use (a `forseti --help` makes none), removed when the process exits.
 */
const NOT_CHECKED: Readonly<Record<string, string>> = {
  'src/release/asset-root.ts': "the single executable's asset directory belongs to the process",
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

const FILES = sourceFiles(join(ROOT, 'src'))
  .map((path) => ({ path: relative(ROOT, path), text: readFileSync(path, 'utf8') }))
  .filter((f) => !Object.keys(NOT_CHECKED).some((prefix) => f.path.startsWith(prefix)));

/** Declarations at the top level of a module (formatted code: they start in column 0). */
function topLevelDeclarations(text: string): Array<{ line: number; text: string }> {
  return text.split('\n').flatMap((line, i) => (/^(export\s+)?(const|let|var)\s/.test(line) ? [{ line: i + 1, text: line }] : []));
}

/** A top-level declaration that holds state a module could change: a `let`, or a fresh mutable container. */
function mutable(decl: string): boolean {
  if (/^(export\s+)?(let|var)\s/.test(decl)) return true;
  const [, type = '', value = ''] = /^(?:export\s+)?const\s+[\w$]+\s*(?::\s*([^=]+))?=\s*(.*)$/.exec(decl) ?? [];
  if (/\bReadonly|\breadonly\b|as const|Object\.freeze/.test(type + value)) return false;
  return /^new (Map|Set|WeakMap|WeakSet|Array)\b/.test(value) || /^\[\s*\];?$/.test(value) || /^\{\s*\};?$/.test(value);
}

test('no module-level mutable state in src/', () => {
  const found = FILES.flatMap((f) => topLevelDeclarations(f.text).filter((d) => mutable(d.text)).map((d) => `${f.path}:${d.line}: ${d.text.trim()}`));
  assert.deepEqual(found, []);
});

test('the state check sees what it is after (a sanity check of the check)', () => {
  assert.ok(mutable('let shared: BmcGate | undefined;'));
  assert.ok(mutable('const sessions = new Map<string, Entry>();'));
  assert.ok(mutable("const root: { value?: Root } = {};"));
  assert.ok(!mutable("const KINDS: ReadonlySet<string> = new Set(['a']);"));
  assert.ok(!mutable("export const FULL: Readonly<Capabilities> = Object.freeze({ powerOff: true });"));
  assert.ok(!mutable('const MAX = 5;'));
});

test('one error-class layout: `override readonly name` equal to the class name, never assigned (abstract bases excepted)', () => {
  const wrong: string[] = [];
  for (const f of FILES) {
    for (const m of f.text.matchAll(/(abstract\s+)?class (\w+) extends (\w*Error)\b[^{]*\{/g)) {
      // An abstract base is never thrown itself: its subclasses name themselves.
      if (m[1]) continue;
      const name = m[2] as string;
      const body = f.text.slice((m.index ?? 0) + m[0].length, f.text.indexOf('\n}', m.index));
      const line = f.text.slice(0, m.index).split('\n').length;
      if (!new RegExp(`override readonly name(: string)? = '${name}'`).test(body)) wrong.push(`${f.path}:${line}: ${name} declares no \`override readonly name = '${name}'\``);
      if (/this\.name\s*=/.test(body)) wrong.push(`${f.path}:${line}: ${name} assigns this.name`);
    }
  }
  assert.deepEqual(wrong, []);
});
