// Caps checked on a YAML file before the `yaml` package composes it: composing, toJS and every walk after it recurse
// once per level of nesting (5,000 levels of `[` exhaust the process), aliases can make a small file expand
// into an enormous value, and every node costs memory and time in each check after it (60,000 keys in one 830 KB
// file froze the agent for minutes). `yaml`'s lexer is a flat loop, so it can measure all three safely on any input.

import { CST, Lexer } from 'yaml';
import type { ScanMeter } from '../core/template.ts';
import { firstControlChar } from './lab-tree.ts';

export interface YamlLimitHit {
  /** Offset in the text where the cap is reached. */
  offset: number;
  message: string;
}

/** Characters YAML does not allow in a stream (YAML 1.2 §5.1, c-printable): C0 controls but tab, LF and CR; DEL. */
const NOT_PRINTABLE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** A character YAML does not allow in a file, by offset; checked before either reader sees the text. */
export function unprintableChar(text: string): YamlLimitHit | undefined {
  const m = NOT_PRINTABLE.exec(text);
  if (!m) return undefined;
  const name = firstControlChar(m[0])?.name ?? 'a control character';
  return { offset: m.index, message: `control character ${name} is not allowed in a YAML file` };
}

export function depthMessage(maxDepth: number): string {
  return `nesting deeper than ${maxDepth} levels (mappings and sequences inside each other); a lab file needs a handful`;
}

export function nodesMessage(maxNodes: number): string {
  return `more than ${maxNodes.toLocaleString('en-US')} YAML nodes (keys, values and list items); a lab file needs a few hundred`;
}

/** Tokens that make a node: plain (typed null), quoted and block scalars, aliases, flow collections, `-` items. */
const NODE_TOKENS: ReadonlySet<string | null> = new Set<string | null>([null, 'single-quoted-scalar', 'double-quoted-scalar', 'block-scalar-header', 'alias', 'flow-map-start', 'flow-seq-start', 'seq-item-ind']);

export function aliasMessage(maxAliases: number): string {
  return `more than ${maxAliases} YAML aliases (*name) or what they expand to; a lab file needs few if any`;
}

/**
 * The first place where `text` nests deeper than `maxDepth`, uses more than `maxAliases` aliases or holds more than
 * `maxNodes` nodes. Depth counts open flow collections plus the columns of open block nodes, which is within a
 * level or two of the real nesting for any layout, and never lower than half of it. Every node counted is at
 * least one character of the text, so a text no longer than `maxNodes` cannot hold too many. It stops at the
 * first cap reached: `meter` counts the characters lexed up to there.
 */
export function yamlLimitHit(text: string, maxDepth: number, maxAliases: number, maxNodes = Infinity, meter?: ScanMeter): YamlLimitHit | undefined {
  const columns: number[] = [];
  let offset = 0;
  let lineStart = 0;
  let atLineStart = true;
  let afterIndicator = false;
  let flow = 0;
  let aliases = 0;
  let nodes = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === '\x02' || token === '\x18' || token === '\x1f') continue; // markers the lexer adds, not in the text
    const start = offset;
    const column = start - lineStart;
    offset += token.length;
    if (meter) meter.steps += token.length;
    const type = CST.tokenType(token);
    if (token.length > 0 && NODE_TOKENS.has(type) && ++nodes > maxNodes) return { offset: start, message: nodesMessage(maxNodes) };
    const newline = token.lastIndexOf('\n');
    const startsLine = atLineStart;
    if (newline >= 0) {
      lineStart = start + newline + 1;
      atLineStart = newline === token.length - 1;
    } else if (type !== 'space' && type !== 'comment') atLineStart = false;
    switch (type) {
      case 'newline':
      case 'space':
      case 'comment':
      case 'byte-order-mark':
      case 'directive-line':
        continue;
      case 'doc-start':
      case 'doc-end':
        columns.length = 0;
        flow = 0;
        continue;
      case 'alias':
        if (++aliases > maxAliases) return { offset: start, message: aliasMessage(maxAliases) };
        break;
      case 'flow-map-end':
      case 'flow-seq-end':
        flow = Math.max(0, flow - 1);
        continue;
    }
    if (flow === 0 && (startsLine || afterIndicator)) {
      while (columns.length > 0 && (columns.at(-1) ?? 0) > column) columns.pop();
      if (columns.at(-1) !== column) columns.push(column);
    }
    afterIndicator = flow === 0 && (type === 'seq-item-ind' || type === 'explicit-key-ind' || type === 'map-value-ind');
    if (type === 'flow-map-start' || type === 'flow-seq-start') flow++;
    if (columns.length + flow > maxDepth + 1) return { offset: start, message: depthMessage(maxDepth) };
  }
  return undefined;
}
