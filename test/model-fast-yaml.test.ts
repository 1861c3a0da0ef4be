import { deepStrictEqual, equal, ok } from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fastParseYaml } from '../src/core/fast-yaml.ts';
import { YamlFile } from '../src/model/yaml-source.ts';

const TEMPLATE = new URL('../lab-repo-template/', import.meta.url);

function templateFiles(): string[] {
  return ['site.yaml', ...['hosts', 'profiles', 'images'].flatMap((d) => readdirSync(new URL(d, TEMPLATE)).map((n) => `${d}/${n}`))];
}

function assertSameAsYaml(file: string, text: string): void {
  const fast = fastParseYaml(text, file);
  const slow = YamlFile.parse(file, text, { fast: false }).yaml;
  ok(slow, `${file} parses with yaml`);
  if (!fast) return;
  deepStrictEqual(fast.value, slow.value, `${file}: value`);
  deepStrictEqual(fast.refs, slow.refs, `${file}: refs`);
}

test('the fast reader agrees with yaml on every template file, and reads all host files', () => {
  for (const file of templateFiles()) {
    const text = readFileSync(new URL(file, TEMPLATE), 'utf8');
    assertSameAsYaml(file, text);
    if (file.startsWith('hosts/')) ok(fastParseYaml(text, file), `${file} is inside the fast subset`);
  }
});

test('the fast reader agrees with yaml on scalars, flow collections and nesting', () => {
  const text = [
    '# comment',
    'a: 1',
    'b: -2.5e3',
    'c: true',
    'd: ~',
    'e: "quoted # not a comment"',
    "f: 'it''s'",
    'g: 10.77.0.1',
    'h: 9c:8e:99:4a:10:01 # trailing',
    'i: [1, two, "three", {x: 1, y: [a, b]}]',
    'j: {}',
    'k: []',
    'l:',
    '- x',
    '- y: 1',
    '  z: 2',
    '- - nested',
    '  - seq',
    'm:',
    '  n:',
    '    o: off',
    'p: 010',
    'q: +5',
    'r: .5',
    "s: don't",
    'url: https://example.com/a#b',
    '',
  ].join('\n');
  ok(fastParseYaml(text, 'x.yaml'));
  assertSameAsYaml('x.yaml', text);
});

test('the fast reader gives up outside its subset', () => {
  for (const text of [
    'a: |\n  block\n',
    'a: &x 1\nb: *x\n',
    'a: !!str 1\n',
    'a:\n',
    'a: b: c\n',
    'a: "esc\\"aped"\n',
    'a: 1\na: 2\n',
    'a: 0x1F\n',
    'a: multi\n  line\n',
    '---\na: 1\n',
    'a:\t1\n',
    'a: [1,\n  2]\n',
    '"quoted key": 1\n',
    '1: one\n',
  ]) {
    equal(fastParseYaml(text, 'x.yaml'), null, JSON.stringify(text));
  }
});

test('stripUndefined drops undefined values only, keeps key order, and keeps a key named __proto__ as an own property', async () => {
  const { stripUndefined } = await import('../src/core/objects.ts');
  const input = JSON.parse('{"a":1,"__proto__":{"polluted":true},"b":null,"c":0}') as Record<string, unknown>;
  input.d = undefined;
  const out = stripUndefined(input);
  deepStrictEqual(Object.keys(out), ['a', '__proto__', 'b', 'c']);
  equal(Object.getPrototypeOf(out), Object.prototype);
  equal((out as { polluted?: unknown }).polluted, undefined);
  deepStrictEqual(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, { polluted: true });
});

test('without refs the fast reader gives the same value and no positions', () => {
  const text = 'host: h1\nphase: Off\nhistory:\n  - {phase: Off, at: "2026-12-01T10:00:02.000Z"}\nlabels: {rack: r1}\n';
  const withRefs = fastParseYaml(text, 'h1.yaml');
  const without = fastParseYaml(text, 'h1.yaml', Infinity, false);
  ok(withRefs && without);
  deepStrictEqual(without.value, withRefs.value);
  deepStrictEqual(without.refs, {});
  ok(Object.keys(withRefs.refs).length > 0);
});
