// One YAML file of the lab: its value, where each field was written, and (parsed lazily with
// `yaml`, only when an error needs it) the node tree for precise positions of keys and templates.

import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, Scalar, visit, type Document, type Node, type Pair } from 'yaml';
import { fastParseYaml, YamlDepthError } from '../core/fast-yaml.ts';
import { DEFAULT_LAB_LIMITS, type LabLimits } from './lab-limits.ts';
import { problem } from './problems.ts';
import type { LabProblem } from './types.ts';
import type { FieldRefs, SourceRef } from '../core/source-ref.ts';
import { aliasMessage, depthMessage, unprintableChar, yamlLimitHit } from './yaml-limits.ts';

export type YamlLimits = Pick<LabLimits, 'maxYamlDepth' | 'maxYamlAliases'>;

export type YamlPath = ReadonlyArray<string | number>;

interface ParsedTree {
  doc: Document;
  lines: LineCounter;
}

export class YamlFile {
  private tree: ParsedTree | undefined;

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
    const { maxYamlDepth, maxYamlAliases } = options.limits ?? DEFAULT_LAB_LIMITS;
    const refused = (offset: number, code: 'yaml-syntax' | 'yaml-limit', message: string): { problems: LabProblem[] } => ({ problems: [problem(refInText(file, text, offset), code, message)] });
    const unprintable = unprintableChar(text);
    if (unprintable) return refused(unprintable.offset, 'yaml-syntax', unprintable.message);
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
    if (tree.doc.errors.length > 0) {
      return { problems: tree.doc.errors.map((e) => problem(refAt(file, tree.lines, e.pos[0]), 'yaml-syntax', e.message.split('\n')[0] ?? e.message)) };
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
        pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(segment));
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
    const { doc, lines } = this.parsedTree();
    const node = doc.getIn(path, true);
    if (!isScalar(node) || !node.range || typeof node.value !== 'string') return this.refOf(path);
    const start = node.range[0];
    const source = this.text.slice(start, node.range[1]);
    const exact = sourceOffset(node.type, source, node.value, offset);
    return refAt(this.file, lines, start + (exact ?? 0));
  }

  private parsedTree(): ParsedTree {
    this.tree ??= parseTree(this.text);
    return this.tree;
  }
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
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  return { doc, lines };
}

export function refAt(file: string, lines: LineCounter, offset: number): SourceRef {
  const { line, col } = lines.linePos(offset);
  return { file, line, col };
}

/** Line and column of `offset` in plain text (template files read from disk). */
export function refInText(file: string, text: string, offset: number): SourceRef {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { file, line, col: offset - lineStart + 1 };
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

/** Offset within `source` (the scalar as written) of character `offset` of its value, if certain. */
function sourceOffset(type: Scalar.Type | undefined, source: string, value: string, offset: number): number | undefined {
  switch (type) {
    case Scalar.PLAIN:
      return source.includes('\n') ? undefined : offset;
    case Scalar.QUOTE_DOUBLE:
      return source.includes('\n') || source.includes('\\') ? undefined : offset + 1;
    case Scalar.QUOTE_SINGLE:
      return source.includes('\n') || source.slice(1, -1).includes("''") ? undefined : offset + 1;
    case Scalar.BLOCK_LITERAL:
    case Scalar.BLOCK_FOLDED:
      return blockScalarOffset(source, value, offset);
    default:
      return undefined;
  }
}

/**
 * Each body line of a block scalar appears verbatim in its value; only the line breaks between
 * them change (folding, chomping). Walk the lines, find each in the value, and map the offset.
 */
function blockScalarOffset(source: string, value: string, offset: number): number | undefined {
  const bodyStart = source.indexOf('\n') + 1;
  if (bodyStart === 0) return undefined;
  const bodyLines = source.slice(bodyStart).split('\n');
  const indent = Math.min(...bodyLines.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length));
  let searchFrom = 0;
  let lineStart = bodyStart;
  for (const line of bodyLines) {
    const content = line.slice(indent);
    if (content.trim() !== '') {
      const at = value.indexOf(content, searchFrom);
      if (at < 0) return undefined;
      if (offset >= at && offset < at + content.length) return lineStart + indent + (offset - at);
      searchFrom = at + content.length;
    }
    lineStart += line.length + 1;
  }
  return undefined;
}
