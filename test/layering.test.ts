// The direction of dependencies between the folders of src/, read from the imports themselves. Each folder may
// import only the self-contained packages and the folders before it in ORDER; a folder that is in neither list fails
// the test until it is placed, so a new folder is checked from its first commit. README.md says the same order.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SRC = join(ROOT, 'src');

/**
 * Import nothing of the product: the protocol packages (each its own package, as in pixiecore), the redactor, the
 * logger, the release bundle's asset root and the OS image builder. serve/talos-events (Talos' event sink and
 * installer reports) is a protocol package like serve/dhcp.
 */
const SELF_CONTAINED = [
  'serve/dhcp', 'serve/tftp', 'serve/http', 'serve/talos-events',
  'bmc/ipmi', 'bmc/redfish', 'bmc/oa', 'bmc/wol',
  'redact', 'log.ts', 'child-env.ts', 'release', 'os-image',
] as const;

/**
 * The product, lowest first: each imports only folders before it (and the self-contained packages). core is the
 * leaf (the shared vocabulary and utilities) and imports nothing of the product either; converge interprets converge
 * signals with core and the event sink's payload types alone.
 */
const ORDER = ['core', 'converge', 'source', 'model', 'secrets', 'render', 'plan', 'bmc', 'discover', 'observe', 'status', 'alerts', 'serve', 'agent', 'cli'] as const;

/** Folders narrower than their place in ORDER: they may import only these. */
const ONLY: Readonly<Record<string, readonly string[]>> = { core: [], converge: ['core', 'serve/talos-events'] };

/** Sub-folders that are packages of their own; any other sub-folder belongs to its top-level folder. */
const PACKAGES: ReadonlySet<string> = new Set(SELF_CONTAINED.filter((u) => u.includes('/')));

interface Import {
  from: string;
  to: string;
  /** Repository paths, for messages. */
  file: string;
  target: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|js|mjs)$/.test(e.name) ? [path] : [];
  });
}

/** The unit a file of src/ belongs to: `serve/dhcp` for a package, else its top-level folder (or `log.ts`). */
function unitOf(path: string): string {
  const parts = relative(SRC, path).split(sep);
  if (parts.length === 1) return parts[0] as string;
  const pkg = `${parts[0]}/${parts[1]}`;
  return parts.length > 2 && PACKAGES.has(pkg) ? pkg : (parts[0] as string);
}

const IMPORT = /(?:^|[^\w.])(?:import|export)\s+(?:type\s+)?(?:[\w*\s{},$]+?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: Import[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    if (spec === undefined) continue;
    const target = normalize(join(dirname(file), spec));
    out.push({ from: unitOf(file), to: target.startsWith(SRC + sep) ? unitOf(target) : `outside src: ${relative(ROOT, target)}`, file: relative(ROOT, file), target: relative(ROOT, target) });
  }
  return out;
}

const FILES = sourceFiles(SRC);
const IMPORTS = FILES.flatMap(importsOf).filter((i) => i.from !== i.to);
const KNOWN: ReadonlySet<string> = new Set([...SELF_CONTAINED, ...ORDER]);

/** Whether `from` may import `to`; a reason when not. */
function refusal(from: string, to: string): string | null {
  if (to.startsWith('outside src')) return 'src imports nothing outside src';
  // child-env.ts (what a started program's environment holds) is one rule for every package that starts one.
  if (to === 'child-env.ts') return null;
  const only = ONLY[from];
  if ((SELF_CONTAINED as readonly string[]).includes(from) || only?.length === 0) return `${from} imports nothing of the product`;
  if (only && !only.includes(to)) return `${from} imports only ${only.join(', ')}`;
  if ((SELF_CONTAINED as readonly string[]).includes(to)) return null;
  const a = ORDER.indexOf(from as (typeof ORDER)[number]);
  const b = ORDER.indexOf(to as (typeof ORDER)[number]);
  return b < a ? null : `${from} comes before ${to} in the order`;
}

test('the scan sees the imports (a sanity check of the reader itself)', () => {
  assert.ok(FILES.length > 200, `${FILES.length} files`);
  assert.ok(IMPORTS.some((i) => i.from === 'agent' && i.to === 'render'));
  assert.ok(IMPORTS.some((i) => i.from === 'render' && i.to === 'core'));
  assert.equal(unitOf(join(SRC, 'serve/dhcp/server.ts')), 'serve/dhcp');
  assert.equal(unitOf(join(SRC, 'serve/dashboard/dashboard-route.ts')), 'serve');
  assert.equal(unitOf(join(SRC, 'serve/boot-http.ts')), 'serve');
  assert.deepEqual(refusal('model', 'plan'), 'model comes before plan in the order');
  assert.equal(refusal('plan', 'model'), null);
  assert.equal(refusal('serve/dhcp', 'core'), 'serve/dhcp imports nothing of the product');
  assert.equal(refusal('converge', 'model'), 'converge imports only core, serve/talos-events');
});

test('every folder of src/ has its place in the order', () => {
  const unplaced = [...new Set(FILES.map(unitOf))].filter((u) => !KNOWN.has(u)).sort();
  assert.deepEqual(unplaced, [], `place these in SELF_CONTAINED or ORDER (test/layering.test.ts) and in README.md's Layout: ${unplaced.join(', ')}`);
});

test('no import goes against the order; protocol packages and the leaf import nothing of the product', () => {
  const wrong = IMPORTS.flatMap((i) => {
    const why = refusal(i.from, i.to);
    return why ? [`${i.file} imports ${i.target}: ${why}`] : [];
  });
  assert.deepEqual(wrong, []);
});

test('no cycle between top-level folders', () => {
  // A self-contained package is a node of its own: it imports nothing, so it closes no cycle through its folder.
  const top = (unit: string): string => (PACKAGES.has(unit) ? unit : (unit.split('/')[0] as string));
  const edges = new Map<string, Set<string>>();
  for (const i of IMPORTS) {
    if (top(i.from) === top(i.to) || i.to.startsWith('outside')) continue;
    const set = edges.get(top(i.from)) ?? new Set<string>();
    set.add(top(i.to));
    edges.set(top(i.from), set);
  }
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const walk = (node: string, path: string[]): void => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'open') {
      cycles.push([...path.slice(path.indexOf(node)), node].join(' -> '));
      return;
    }
    state.set(node, 'open');
    for (const next of [...(edges.get(node) ?? [])].sort()) walk(next, [...path, node]);
    state.set(node, 'done');
  };
  for (const node of [...edges.keys()].sort()) walk(node, []);
  assert.deepEqual(cycles, []);
});

test("README.md states the same order", () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const line = /^Each folder imports only the folders before it: (.+)\.$/m.exec(readme)?.[1];
  assert.ok(line, 'README.md has the line "Each folder imports only the folders before it: core → … ."');
  assert.deepEqual(line.split(' → ').map((s) => s.replace(/`/g, '').trim()), [...ORDER]);
  // The pipeline under the diagram names the main folders in the same order.
  const pipeline = /\(`test\/layering\.test\.ts`; see\s+\[Layout\]\(#layout\)\): ([^,]+),/.exec(readme)?.[1];
  assert.ok(pipeline, 'README.md names the pipeline under its diagram');
  const named = pipeline.split(' → ').map((s) => s.replace(/`/g, '').trim());
  assert.deepEqual(named, ORDER.filter((u) => named.includes(u)), 'the pipeline is in the order');
  const contained = /^Self-contained \(import nothing of the product\): (.+)\.$/m.exec(readme)?.[1];
  assert.ok(contained, 'README.md has the line "Self-contained (import nothing of the product): … ."');
  assert.deepEqual(contained.split(', ').map((s) => s.replace(/`/g, '').trim()).sort(), [...SELF_CONTAINED].sort());
});
