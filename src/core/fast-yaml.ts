// A fast reader for the plain subset of YAML that lab files are written in: block mappings and
// sequences, one-line flow collections, plain and simple quoted scalars, comments.
// The `yaml` package costs ~170 µs per small file, too slow for 10,000 hosts; this costs a few µs.
// It must never disagree with `yaml`: anything outside the subset (anchors, tags, block scalars,
// multi-line scalars, escapes, odd keys, empty values, errors) makes it give up, and the caller
// parses the file with `yaml` instead.

import type { FieldRefs } from './source-ref.ts';

export interface FastParse {
  value: unknown;
  /** Position of every value node, keyed by dotted path (`` for the document). */
  refs: FieldRefs;
}

/** Internal signal: the text is outside the subset; never escapes `fastParseYaml`. */
class OutsideSubset extends Error {
  override readonly name = 'OutsideSubset';
}

/** The text nests deeper than allowed: a problem of the file, not a reason to try the full parser. */
export class YamlDepthError extends Error {
  override readonly name = 'YamlDepthError';
  constructor(readonly line: number, readonly col: number, readonly maxDepth: number) {
    super(`nesting deeper than ${maxDepth} levels at line ${line}`);
  }
}

const outside = (): never => {
  throw new OutsideSubset();
};

interface Line {
  no: number;
  indent: number;
  /** Content after the indentation, comment removed, trailing spaces trimmed. */
  text: string;
}

const KEY = /^([A-Za-z0-9_][A-Za-z0-9_./-]*):(?: +|$)/;
const FLOW_KEY = /^([A-Za-z0-9_][A-Za-z0-9_./-]*): +/;
const NULL = /^(?:~|[Nn]ull|NULL)$/;
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT = /^[-+]?[0-9]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const EXOTIC_NUMBER = /^(?:0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const PLAIN_START_FORBIDDEN: ReadonlySet<string> = new Set([',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', "'", '"', '%', '@', '`', '?', ':']);

/**
 * Parses `text` if it is inside the subset; returns null if the full parser is needed. Throws YamlDepthError when
 * collections nest deeper than `maxDepth` (the readers recurse once per level). `withRefs` false: `refs` stays empty
 * (a reader that reports no positions, such as the status branch's, saves their cost).
 */
export function fastParseYaml(text: string, file: string, maxDepth = Infinity, withRefs = true): FastParse | null {
  if (/[\t\r\uFEFF]/.test(text)) return null;
  try {
    const lines = splitLines(text);
    if (lines.length === 0 || lines[0]!.indent !== 0) return null;
    const reader = new BlockReader(lines, file, maxDepth, withRefs);
    const value = reader.block(0, '');
    if (reader.pos !== lines.length) return null;
    return { value, refs: reader.refs };
  } catch (e) {
    if (e instanceof OutsideSubset) return null;
    throw e;
  }
}

function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  const raw = text.split('\n');
  for (let i = 0; i < raw.length; i++) {
    const content = stripComment(raw[i]!).trimEnd();
    if (content === '') continue;
    const indent = content.length - content.trimStart().length;
    const body = content.slice(indent);
    if (indent === 0 && (body.startsWith('---') || body.startsWith('...') || body.startsWith('%'))) outside();
    lines.push({ no: i + 1, indent, text: body });
  }
  return lines;
}

/** Removes a `#` comment, skipping quoted scalars; quotes that do not close on the line are outside the subset. */
function stripComment(s: string): string {
  if (!s.includes('#')) return s; // quotes left open are caught when the scalar is read
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '#' && (i === 0 || s[i - 1] === ' ')) return s.slice(0, i);
    if ((c === '"' || c === "'") && (i === 0 || ' [{,'.includes(s[i - 1]!))) {
      let j = i + 1;
      for (;;) {
        const close = s.indexOf(c, j);
        if (close < 0) outside();
        if (c === '"' && s[close - 1] === '\\') outside();
        if (c === "'" && s[close + 1] === "'") {
          j = close + 2;
          continue;
        }
        i = close;
        break;
      }
    }
  }
  return s;
}

const isSeqEntry = (text: string): boolean => text === '-' || text.startsWith('- ');

class BlockReader {
  pos = 0;
  readonly refs: FieldRefs = {};
  private depth = 0;

  constructor(private readonly lines: Line[], private readonly file: string, private readonly maxDepth: number, private readonly withRefs: boolean) {}

  /** A collection opens at line:col; `leave` when it is done. */
  enter(line: number, col: number): void {
    if (++this.depth > this.maxDepth) throw new YamlDepthError(line, col, this.maxDepth);
  }

  leave(): void {
    this.depth--;
  }

  block(indent: number, path: string): unknown {
    const line = this.lines[this.pos]!;
    return isSeqEntry(line.text) ? this.seq(indent, path) : this.map(indent, path);
  }

  private at(path: string, line: number, col: number): void {
    if (this.withRefs) this.refs[path] = { file: this.file, line, col };
  }

  private map(indent: number, path: string): Record<string, unknown> {
    const first = this.lines[this.pos]!;
    this.at(path, first.no, indent + 1);
    this.enter(first.no, indent + 1);
    const map: Record<string, unknown> = {};
    while (this.pos < this.lines.length) {
      const line = this.lines[this.pos]!;
      if (line.indent < indent) break;
      if (line.indent > indent || isSeqEntry(line.text)) outside();
      const m = KEY.exec(line.text) ?? outside();
      const key = checkedKey(m[1]!, map);
      const rest = line.text.slice(m[0].length);
      const childPath = path === '' ? key : `${path}.${key}`;
      this.pos++;
      if (rest !== '') {
        map[key] = inlineValue(rest, line.no, line.indent + m[0].length + 1, childPath, this);
        continue;
      }
      const next = this.lines[this.pos];
      if (next && next.indent > indent) map[key] = this.block(next.indent, childPath);
      else if (next && next.indent === indent && isSeqEntry(next.text)) map[key] = this.seq(indent, childPath);
      else outside(); // an empty value is null; leave that to the full parser
    }
    this.leave();
    return map;
  }

  private seq(indent: number, path: string): unknown[] {
    const first = this.lines[this.pos]!;
    this.at(path, first.no, indent + 1);
    this.enter(first.no, indent + 1);
    const items: unknown[] = [];
    while (this.pos < this.lines.length) {
      const line = this.lines[this.pos]!;
      if (line.indent < indent || (line.indent === indent && !isSeqEntry(line.text))) break;
      if (line.indent > indent) outside();
      const itemPath = `${path}.${items.length}`;
      const rest = line.text.slice(1).trimStart();
      const contentIndent = line.indent + line.text.length - rest.length;
      if (rest === '') {
        this.pos++;
        const next = this.lines[this.pos];
        if (!next || next.indent <= indent) outside();
        items.push(this.block(next!.indent, itemPath));
      } else if (isSeqEntry(rest) || KEY.test(rest)) {
        // A compact nested collection (`- name: x`): reread the rest of the line as if it started a block.
        this.lines[this.pos] = { no: line.no, indent: contentIndent, text: rest };
        items.push(this.block(contentIndent, itemPath));
      } else {
        this.pos++;
        items.push(inlineValue(rest, line.no, contentIndent + 1, itemPath, this));
      }
    }
    this.leave();
    return items;
  }

  record(path: string, line: number, col: number): void {
    this.at(path, line, col);
  }
}

function checkedKey(key: string, map: Record<string, unknown>): string {
  if (key === '__proto__' || Object.hasOwn(map, key) || typeof plainScalar(key) !== 'string') outside();
  return key;
}

/** A value that starts and ends on one line. */
function inlineValue(text: string, line: number, col: number, path: string, reader: BlockReader): unknown {
  const c = text[0];
  if (c === '[' || c === '{') {
    const flow = new FlowReader(text, line, col, reader);
    const value = flow.value(path);
    flow.skipSpaces();
    if (flow.i !== text.length) outside();
    return value;
  }
  reader.record(path, line, col);
  if (c === '"' || c === "'") return quoted(text);
  if (text.includes(': ') || text.endsWith(':')) outside();
  return plainScalar(text);
}

function quoted(text: string): string {
  const q = text[0]!;
  if (text.length < 2 || text[text.length - 1] !== q) outside();
  const inner = text.slice(1, -1);
  if (q === '"') {
    if (inner.includes('"') || inner.includes('\\')) outside();
    return inner;
  }
  if (!/^(?:[^']|'')*$/.test(inner)) outside();
  return inner.replaceAll("''", "'");
}

/** Resolves a plain scalar the way the YAML 1.2 core schema does. */
function plainScalar(text: string): unknown {
  const c = text[0]!;
  if (PLAIN_START_FORBIDDEN.has(c) || (c === '-' && (text.length === 1 || text[1] === ' '))) outside();
  if (NULL.test(text)) return null;
  if (BOOL.test(text)) return text[0] === 't' || text[0] === 'T';
  if (EXOTIC_NUMBER.test(text)) outside();
  if (INT.test(text) || FLOAT.test(text)) {
    if (text.length > 15) outside();
    return Number(text);
  }
  return text;
}

class FlowReader {
  i = 0;

  constructor(private readonly text: string, private readonly line: number, private readonly col: number, private readonly reader: BlockReader) {}

  skipSpaces(): void {
    while (this.text[this.i] === ' ') this.i++;
  }

  value(path: string): unknown {
    this.skipSpaces();
    this.reader.record(path, this.line, this.col + this.i);
    const c = this.text[this.i];
    if (c === '[') return this.seq(path);
    if (c === '{') return this.map(path);
    if (c === '"' || c === "'") {
      const close = this.text.indexOf(c, this.i + 1);
      if (close < 0 || (c === "'" && this.text[close + 1] === "'")) outside();
      const value = quoted(this.text.slice(this.i, close + 1));
      this.i = close + 1;
      return value;
    }
    const start = this.i;
    while (this.i < this.text.length && !',[]{}'.includes(this.text[this.i]!)) this.i++;
    const plain = this.text.slice(start, this.i).trimEnd();
    if (plain === '' || /:(?: |$)/.test(plain)) outside();
    return plainScalar(plain);
  }

  private seq(path: string): unknown[] {
    this.reader.enter(this.line, this.col + this.i);
    this.i++;
    const items: unknown[] = [];
    this.skipSpaces();
    while (this.text[this.i] !== ']') {
      items.push(this.value(`${path}.${items.length}`));
      this.separator(']');
    }
    this.i++;
    this.reader.leave();
    return items;
  }

  private map(path: string): Record<string, unknown> {
    this.reader.enter(this.line, this.col + this.i);
    this.i++;
    const map: Record<string, unknown> = {};
    this.skipSpaces();
    while (this.text[this.i] !== '}') {
      const m = FLOW_KEY.exec(this.text.slice(this.i)) ?? outside();
      const key = checkedKey(m[1]!, map);
      this.i += m[0].length;
      map[key] = this.value(path === '' ? key : `${path}.${key}`);
      this.separator('}');
    }
    this.i++;
    this.reader.leave();
    return map;
  }

  private separator(close: string): void {
    this.skipSpaces();
    const c = this.text[this.i];
    if (c === ',') {
      this.i++;
      this.skipSpaces();
    } else if (c !== close) outside();
  }
}
