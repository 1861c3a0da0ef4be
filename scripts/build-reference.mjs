// Writes docs/reference.md from the JSON Schemas in schemas/ (the lab repository's files, the status branch's
// files) and the OpenAPI document, so the reference cannot drift from what forseti checks and writes.
//   node scripts/build-reference.mjs           write docs/reference.md
//   node scripts/build-reference.mjs --check   exit 1 when docs/reference.md is not what the schemas give
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'docs/reference.md');

const FILES = [
  { schema: 'site.schema.json', file: 'site.yaml', part: 'lab' },
  { schema: 'host.schema.json', file: 'hosts/<name>.yaml', part: 'lab' },
  { schema: 'profile.schema.json', file: 'profiles/<name>.yaml', part: 'lab' },
  { schema: 'image.schema.json', file: 'images/<name>.yaml', part: 'lab' },
  { schema: 'status-site.schema.json', file: 'site.yaml (status branch)', part: 'status' },
  { schema: 'status-host.schema.json', file: 'hosts/<name>.yaml (status branch)', part: 'status' },
];

const readFile = (name) => JSON.parse(readFileSync(join(ROOT, 'schemas', name), 'utf8'));

/** A schema with the schema files it refers to ({"$ref": "converge.schema.json"}) taken in, their definitions merged. */
function read(name) {
  const root = readFile(name);
  let taken = {};
  const inline = (node) => {
    if (Array.isArray(node)) return node.map(inline);
    if (!node || typeof node !== 'object') return node;
    if (typeof node.$ref === 'string' && node.$ref.endsWith('.schema.json')) {
      const { $schema: _s, title: _t, definitions = {}, ...body } = readFile(node.$ref);
      taken = { ...taken, ...definitions };
      const { $ref: _r, ...own } = node;
      return { ...body, ...own };
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, inline(v)]));
  };
  const schema = inline(root);
  return { ...schema, definitions: { ...schema.definitions, ...taken } };
}

/**
 * Follows a local $ref (#/definitions/x, #/$defs/x, #/components/schemas/x), or one to another file of schemas/ by
 * its name (site-discovery.schema.json), keeping the referring node's own keywords.
 */
function deref(root, node) {
  if (node && typeof node === 'object' && typeof node.$ref === 'string' && /^[a-z-]+\.schema\.json$/.test(node.$ref)) {
    const { $ref: file, ...own } = node;
    const { $schema: _schema, title: _title, ...part } = read(file);
    return { ...part, ...own };
  }
  if (!node || typeof node !== 'object' || typeof node.$ref !== 'string' || !node.$ref.startsWith('#/')) return node;
  const target = node.$ref.slice(2).split('/').reduce((o, k) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], root);
  const { $ref: _ref, ...own } = node;
  return { ...deref(root, target), ...own };
}

function typeOf(root, node) {
  const n = deref(root, node);
  if (n.const !== undefined) return `\`${JSON.stringify(n.const)}\``;
  if (n.enum) return n.enum.map((v) => `\`${v}\``).join(' \\| ');
  const alts = n.oneOf ?? n.anyOf;
  if (alts && !n.type) return [...new Set(alts.map((a) => typeOf(root, a)))].join(' or ');
  const types = Array.isArray(n.type) ? n.type : n.type ? [n.type] : [];
  if (types.includes('array')) return `list of ${n.items ? typeOf(root, n.items) : 'any'}`;
  if (types.length === 1 && types[0] === 'object' && !n.properties && n.additionalProperties && typeof n.additionalProperties === 'object') {
    return `map of ${typeOf(root, n.additionalProperties)}`;
  }
  if (n.format) return `${types.join(' or ')} (${n.format})`;
  return types.join(' or ') || (n.properties ? 'object' : 'any');
}

function constraints(root, node) {
  const n = deref(root, node);
  const out = [];
  if (n.minimum !== undefined) out.push(`≥ ${n.minimum}`);
  if (n.exclusiveMinimum !== undefined) out.push(`> ${n.exclusiveMinimum}`);
  if (n.maximum !== undefined) out.push(`≤ ${n.maximum}`);
  if (n.minLength !== undefined) out.push(`at least ${n.minLength} characters`);
  if (n.maxLength !== undefined) out.push(`at most ${n.maxLength} characters`);
  if (n.minItems !== undefined) out.push(`at least ${n.minItems}`);
  if (n.maxItems !== undefined) out.push(`at most ${n.maxItems}`);
  if (n.uniqueItems) out.push('no duplicates');
  if (n.patternErrorMessage) out.push(n.patternErrorMessage);
  else if (n.pattern) out.push(`matches \`${n.pattern.replace(/\|/g, '\\|')}\``);
  return out;
}

const cell = (text) => String(text ?? '').replace(/\n+/g, ' ').replace(/\|/g, '\\|').trim();

/** One row per field, depth first: `network.subnet`, `disks[].sizeGB`, `labels.<key>`. */
function rows(root, node, path, required, out) {
  const n = deref(root, node);
  if (path) {
    const def = n.default !== undefined ? `\`${JSON.stringify(n.default)}\`` : '';
    const notes = [cell(n.description).replace(/\.$/, ''), ...constraints(root, n)].filter(Boolean).join('; ');
    out.push(`| \`${path}\` | ${typeOf(root, n)} | ${required ? 'yes' : ''} | ${def} | ${cell(notes)} |`);
  }
  const objects = [n, ...(n.oneOf ?? []), ...(n.anyOf ?? [])].map((x) => deref(root, x));
  const seen = new Set();
  for (const o of objects) {
    for (const [key, child] of Object.entries(o.properties ?? {})) {
      if (seen.has(key)) continue;
      seen.add(key);
      rows(root, child, path ? `${path}.${key}` : key, (o.required ?? []).includes(key), out);
    }
  }
  const items = n.items && deref(root, n.items);
  if (items && (items.properties || items.oneOf)) itemRows(root, items, path, out);
  const extra = n.additionalProperties;
  if (extra && typeof extra === 'object' && deref(root, extra).properties) rows(root, { ...deref(root, extra), description: undefined }, `${path}.<key>`, false, out);
  return out;
}

function itemRows(root, items, path, out) {
  const objects = [items, ...(items.oneOf ?? [])].map((x) => deref(root, x));
  const seen = new Set();
  for (const o of objects) {
    for (const [key, child] of Object.entries(o.properties ?? {})) {
      if (seen.has(key)) continue;
      seen.add(key);
      rows(root, child, `${path}[].${key}`, (o.required ?? []).includes(key), out);
    }
  }
}

function section({ schema, file }) {
  const root = read(schema);
  const lines = rows(root, root, '', false, []);
  return [
    `### \`${file}\``,
    '',
    `${cell(root.description)} Schema: [\`schemas/${schema}\`](../schemas/${schema}).`,
    '',
    '| field | type | required | default | notes |',
    '|---|---|---|---|---|',
    ...lines,
    '',
  ].join('\n');
}

function apiSection() {
  const doc = read('openapi.json');
  const lines = ['| method | path | what | answers |', '|---|---|---|---|'];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [verb, op] of Object.entries(item)) {
      if (verb === 'head') continue;
      const methods = item.head ? 'GET, HEAD' : verb.toUpperCase();
      lines.push(`| ${methods} | \`${path}\` | ${cell(op.summary)} | ${Object.keys(op.responses).join(', ')} |`);
    }
  }
  return ['## The agent\'s HTTP API', '', `${cell(doc.info.description)} The full description, with every schema: [\`schemas/openapi.json\`](../schemas/openapi.json), served by the agent at \`/v1/openapi.json\`.`, '', ...lines, ''].join('\n');
}

export function renderReference() {
  return [
    '# forseti reference',
    '',
    '<!-- Generated by scripts/build-reference.mjs from schemas/*.json; do not edit. `node scripts/build-reference.mjs` rewrites it, and a test fails when it is stale. -->',
    '',
    'Every field of every file forseti reads or writes, from the JSON Schemas it checks them with. Paths are dotted;',
    '`[]` is an item of a list, `<key>` a key of a map. Editors complete and check the same fields through',
    '`# yaml-language-server: $schema=…` lines (`forseti init` writes them).',
    '',
    '## The lab repository',
    '',
    ...FILES.filter((f) => f.part === 'lab').map(section),
    '## The status branch',
    '',
    'Written by the agent only (default branch `forseti-status`), one commit per batch; other tools can read the',
    'lab\'s state from it without forseti.',
    '',
    ...FILES.filter((f) => f.part === 'status').map(section),
    apiSection(),
  ].join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = renderReference();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(OUT, 'utf8');
    } catch {
      // missing: stale
    }
    if (current !== text) {
      process.stderr.write('docs/reference.md is stale: run node scripts/build-reference.mjs\n');
      process.exit(1);
    }
  } else {
    writeFileSync(OUT, text);
    process.stdout.write(`wrote ${OUT}\n`);
  }
}
