// One YAML file of the lab: its value, where each field was written, and (parsed lazily with
// `yaml`, only when an error needs it) the node tree for precise positions of keys and templates.

import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, Scalar, visit, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import { fastParseYaml, YamlDepthError } from '../core/fast-yaml.ts';
import { DEFAULT_LAB_LIMITS, type LabLimits } from './lab-limits.ts';
import { problem } from './problems.ts';
import type { LabProblem } from './types.ts';
import type { FieldRefs, SourceRef } from '../core/source-ref.ts';
import { aliasMessage, depthMessage, unprintableChar, yamlLimitHit } from './yaml-limits.ts';

export type YamlLimits = Pick<LabLimits, 'maxYamlDepth' | 'maxYamlAliases' | 'maxYamlNodes'>;

export type YamlPath = ReadonlyArray<string | number>;

interface ParsedTree {
  doc: Document;
  lines: LineCounter;
}

export class YamlFile {
  private tree: ParsedTree | undefined;
  /** Each mapping's pairs by key, built the first time a path goes through it (a lookup per problem stays cheap). */
  private readonly pairsByKey = new WeakMap<YAMLMap, Map<string, Pair>>();
  /** Where each character of a string value is in the file, by path, built the first time a problem needs one. */
  private readonly stringOffsets = new Map<string, (offset: number) => number>();

  private constructor(
    /** Path relative to the lab root, forward slashes. */
    readonly file: string,
    readonly text: string,
    readonly value: unknown,
    readonly refs: FieldRefs,
    tree?: ParsedTree,
  ) {
    this.tree = tree;
  }

  /**
   * Parses a file; syntax errors and reached caps (nesting depth, aliases) come back as problems and no file.
   * `fast: false` skips the fast reader (tests compare the two).
   */
  static parse(file: string, text: string, options: { fast?: boolean; limits?: YamlLimits } = {}): { yaml?: YamlFile; problems: LabProblem[] } {
    const { maxYamlDepth, maxYamlAliases, maxYamlNodes } = options.limits ?? DEFAULT_LAB_LIMITS;
    const refused = (offset: number, code: 'yaml-syntax' | 'yaml-limit', message: string): { problems: LabProblem[] } => ({ problems: [problem(refInText(file, text, offset), code, message)] });
    const unprintable = unprintableChar(text);
    if (unprintable) return refused(unprintable.offset, 'yaml-syntax', unprintable.message);
    // Every node is at least one character: only a longer text can hold too many, and it is counted before either reader.
    const crowded = text.length > maxYamlNodes ? yamlLimitHit(text, maxYamlDepth, maxYamlAliases, maxYamlNodes) : undefined;
    if (crowded) return refused(crowded.offset, 'yaml-limit', crowded.message);
    let fast;
    try {
      fast = options.fast === false ? null : fastParseYaml(text, file, maxYamlDepth);
    } catch (err) {
      if (!(err instanceof YamlDepthError)) throw err;
      return { problems: [problem({ file, line: err.line, col: err.col }, 'yaml-limit', depthMessage(maxYamlDepth))] };
    }
    if (fast) return { yaml: new YamlFile(file, text, fast.value, fast.refs), problems: [] };
    const hit = yamlLimitHit(text, maxYamlDepth, maxYamlAliases);
    if (hit) return refused(hit.offset, 'yaml-limit', hit.message);
    const tree = parseTree(text);
    const errors = [...tree.doc.errors.map((e) => ({ offset: e.pos[0], message: e.message.split('\n')[0] ?? e.message })), ...duplicateKeys(tree.doc)];
    if (errors.length > 0) {
      return { problems: errors.sort((a, b) => a.offset - b.offset).map((e) => problem(refAt(file, tree.lines, e.offset), 'yaml-syntax', e.message)) };
    }
    let value: unknown;
    try {
      value = tree.doc.toJS({ maxAliasCount: maxYamlAliases });
    } catch (err) {
      const at = firstAliasOffset(tree.doc);
      const excessive = err instanceof ReferenceError && /excessive alias/i.test(err.message);
      return refused(at, excessive ? 'yaml-limit' : 'yaml-syntax', excessive ? aliasMessage(maxYamlAliases) : String(err instanceof Error ? err.message : err).split('\n')[0] ?? '');
    }
    return { yaml: new YamlFile(file, text, value, collectRefs(file, tree), tree), problems: [] };
  }

  /** Where the file's document starts: for problems about the file as a whole. */
  get documentRef(): SourceRef {
    return this.refs[''] ?? { file: this.file, line: 1, col: 1 };
  }

  /** Position of a field's value (or of its key, for unknown-key problems); the closest existing ancestor if it is missing. */
  refOf(path: YamlPath, target: 'value' | 'key' = 'value'): SourceRef {
    const { doc, lines } = this.parsedTree();
    let node: unknown = doc.contents;
    let pair: Pair | undefined;
    let best = this.documentRef;
    for (const segment of path) {
      pair = undefined;
      if (isMap(node)) {
        pair = this.pairOf(node, String(segment));
        node = pair?.value;
        if (!pair) return best;
        best = nodeRef(this.file, lines, (pair.value as Node | null) ?? (pair.key as Node)) ?? best;
      } else if (isSeq(node)) {
        node = node.items[Number(segment)];
        if (!node) return best;
        best = nodeRef(this.file, lines, node as Node) ?? best;
      } else return best;
    }
    if (target === 'key' && pair && isPair(pair)) return nodeRef(this.file, lines, pair.key as Node) ?? best;
    return best;
  }

  /**
   * Position of character `offset` of the string at `path`: exact inside block scalars and simple
   * one-line scalars, the scalar's start where escapes or folding make the mapping uncertain.
   */
  refInString(path: YamlPath, offset: number): SourceRef {
    const key = path.join('\0');
    let locate = this.stringOffsets.get(key);
    if (!locate) {
      locate = this.stringLocator(path);
      this.stringOffsets.set(key, locate);
    }
    const at = locate(offset);
    return at < 0 ? this.refOf(path) : refAt(this.file, this.parsedTree().lines, at);
  }

  /** Maps an offset in the string at `path` to an offset in the file (-1: the string is not a scalar string node). */
  private stringLocator(path: YamlPath): (offset: number) => number {
    const node = this.nodeAt(path);
    if (!isScalar(node) || !node.range || typeof node.value !== 'string') return () => -1;
    const start = node.range[0];
    const source = this.text.slice(start, node.range[1]);
    const exact = sourceOffsets(node.type, source, node.value);
    return (offset) => start + (exact?.(offset) ?? 0);
  }

  /** The node at `path` (`doc.getIn` scans each mapping for the key; this looks it up). */
  private nodeAt(path: YamlPath): unknown {
    let node: unknown = this.parsedTree().doc.contents;
    for (const segment of path) {
      if (isMap(node)) node = this.pairOf(node, String(segment))?.value;
      else if (isSeq(node)) node = node.items[Number(segment)];
      else return undefined;
    }
    return node;
  }

  /** The pair of `map` whose key reads `key`: the first one, as a scan in order would find it. */
  private pairOf(map: YAMLMap, key: string): Pair | undefined {
    let index = this.pairsByKey.get(map);
    if (!index) {
      index = new Map();
      for (const pair of map.items) {
        const name = String(isScalar(pair.key) ? pair.key.value : pair.key);
        if (!index.has(name)) index.set(name, pair);
      }
      this.pairsByKey.set(map, index);
    }
    return index.get(key);
  }

  private parsedTree(): ParsedTree {
    this.tree ??= parseTree(this.text);
    return this.tree;
  }
}

/**
 * "Map keys must be unique", at each repeated key, as `yaml` would say it: keys are the same when both are scalars
 * with the same value (collections and aliases as keys only when they are the same node). One pass with a set per
 * mapping; `yaml`'s own check compared each key with every earlier one (quadratic in a mapping's size).
 */
function duplicateKeys(doc: Document): Array<{ offset: number; message: string }> {
  const found: Array<{ offset: number; message: string }> = [];
  const pending: unknown[] = [doc.contents];
  while (pending.length > 0) {
    const node = pending.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) && !Number.isNaN(pair.key.value) ? pair.key.value : pair.key;
        if (seen.has(key)) found.push({ offset: (pair.key as Node | null)?.range?.[0] ?? 0, message: 'Map keys must be unique' });
        seen.add(key);
        pending.push(pair.key, pair.value);
      }
    } else if (isSeq(node)) for (const item of node.items) pending.push(item); // no spread: a sequence may be long
  }
  return found;
}

function firstAliasOffset(doc: Document): number {
  let offset = 0;
  visit(doc, {
    Alias: (_key, node) => {
      if (isAlias(node)) offset = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return offset;
}

function parseTree(text: string): ParsedTree {
  const lines = new LineCounter();
  // uniqueKeys: false, because duplicateKeys does the same check in linear time
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  return { doc, lines };
}

export function refAt(file: string, lines: LineCounter, offset: number): SourceRef {
  const { line, col } = lines.linePos(offset);
  return { file, line, col };
}

/** Line and column of `offset` in plain text, for one lookup (`textRefs` for many). */
export function refInText(file: string, text: string, offset: number): SourceRef {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { file, line, col: offset - lineStart + 1 };
}

/**
 * Line and column of any offset in `text`: the line starts are found once, then each lookup is a binary search,
 * so a text with 100,000 problems is not rescanned for each.
 */
export function textRefs(file: string, text: string): (offset: number) => SourceRef {
  let lines: LineCounter | undefined;
  return (offset) => {
    if (!lines) {
      lines = new LineCounter();
      lines.addNewLine(0);
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines.addNewLine(i + 1);
    }
    return refAt(file, lines, offset);
  };
}

function nodeRef(file: string, lines: LineCounter, node: Node | null | undefined): SourceRef | undefined {
  const range = node?.range;
  return range ? refAt(file, lines, range[0]) : undefined;
}

/** The same dotted-path → position map the fast reader builds, from the node tree. */
function collectRefs(file: string, { doc, lines }: ParsedTree): FieldRefs {
  const refs: FieldRefs = {};
  const visit = (node: unknown, path: string): void => {
    const ref = nodeRef(file, lines, node as Node | null);
    if (ref) refs[path] = ref;
    const prefix = path === '' ? '' : `${path}.`;
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        visit(pair.value ?? pair.key, `${prefix}${key}`);
      }
    } else if (isSeq(node)) node.items.forEach((item, i) => visit(item, `${prefix}${i}`));
  };
  visit(doc.contents, '');
  return refs;
}

/** Maps character offsets of a scalar's value to offsets within `source` (the scalar as written), where certain. */
function sourceOffsets(type: Scalar.Type | undefined, source: string, value: string): ((offset: number) => number | undefined) | undefined {
  switch (type) {
    case Scalar.PLAIN:
      return source.includes('\n') ? undefined : (offset) => offset;
    case Scalar.QUOTE_DOUBLE:
      return source.includes('\n') || source.includes('\\') ? undefined : (offset) => offset + 1;
    case Scalar.QUOTE_SINGLE:
      return source.includes('\n') || source.slice(1, -1).includes("''") ? undefined : (offset) => offset + 1;
    case Scalar.BLOCK_LITERAL:
    case Scalar.BLOCK_FOLDED:
      return blockScalarOffsets(source, value);
    default:
      return undefined;
  }
}

/**
 * Each body line of a block scalar appears verbatim in its value; only the line breaks between them change
 * (folding, chomping). The lines are found in the value once; each offset is then a binary search among them.
 */
function blockScalarOffsets(source: string, value: string): ((offset: number) => number | undefined) | undefined {
  const bodyStart = source.indexOf('\n') + 1;
  if (bodyStart === 0) return undefined;
  const bodyLines = source.slice(bodyStart).split('\n');
  let indent = Infinity;
  for (const l of bodyLines) if (l.trim() !== '') indent = Math.min(indent, l.length - l.trimStart().length);
  /** Per non-blank line: where its content starts in the value, its length, and where it starts in the source. */
  const spans: Array<{ at: number; length: number; source: number }> = [];
  let searchFrom = 0;
  let lineStart = bodyStart;
  for (const line of bodyLines) {
    const content = line.slice(indent);
    if (content.trim() !== '') {
      const at = value.indexOf(content, searchFrom);
      if (at < 0) break;
      spans.push({ at, length: content.length, source: lineStart + indent });
      searchFrom = at + content.length;
    }
    lineStart += line.length + 1;
  }
  return (offset) => {
    let lo = 0;
    let hi = spans.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const span = spans[mid]!;
      if (offset < span.at) hi = mid - 1;
      else if (offset >= span.at + span.length) lo = mid + 1;
      else return span.source + (offset - span.at);
    }
    return undefined;
  };
}
