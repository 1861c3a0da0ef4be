// docs/: the reference is what the schemas give today, and the getting-started guide names only commands that exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, runCommand } from './fixtures/cli-run.ts';

test('docs/reference.md is generated from the schemas and up to date', async () => {
  const check = await runCommand([process.execPath, join(REPO, 'scripts/build-reference.mjs'), '--check']);
  assert.equal(check.code, 0, `${check.stderr}run node scripts/build-reference.mjs and commit docs/reference.md`);
  const reference = readFileSync(join(REPO, 'docs/reference.md'), 'utf8');
  // Every top-level field of every lab and status file is there.
  for (const name of ['site', 'host', 'profile', 'image', 'status-host', 'status-site']) {
    const schema = JSON.parse(readFileSync(join(REPO, 'schemas', `${name}.schema.json`), 'utf8')) as { properties: Record<string, unknown> };
    for (const key of Object.keys(schema.properties)) assert.ok(reference.includes(`| \`${key}\` |`), `${name}: ${key}`);
  }
});

test('the getting-started guide uses only commands forseti has', () => {
  const guide = readFileSync(join(REPO, 'docs/getting-started.md'), 'utf8');
  const main = readFileSync(join(REPO, 'src/cli/main.ts'), 'utf8');
  const commands = new Set([...main.matchAll(/^ {2}([a-z]+): async \(argv\)/gm)].map((m) => m[1]));
  // Commands as the reader types them: in code blocks and `code` spans.
  const code = [...guide.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n');
  const used = new Set([...code.matchAll(/^forseti ([a-z]+)/gm), ...guide.matchAll(/`forseti ([a-z]+)/g)].map((m) => m[1] ?? ''));
  for (const c of ['init', 'image', 'doctor', 'validate', 'status', 'render']) assert.ok(used.has(c), `the guide shows forseti ${c}`);
  for (const c of used) assert.ok(commands.has(c), `forseti ${c} is a command`);
});
