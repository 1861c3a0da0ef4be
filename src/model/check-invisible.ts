// Every key and string of a lab document, checked for characters a reviewer cannot see (see invisible-chars.ts):
// names, labels, descriptions, command lines, URLs, inline templates. Each is a problem at the character.

import { firstInvisibleChar, INVISIBLE_MESSAGE } from './invisible-chars.ts';
import { problem } from './problems.ts';
import type { LabProblem } from './types.ts';
import type { YamlFile } from './yaml-source.ts';

/** Printable ASCII and line breaks only, and no backslash (a double-quoted escape could make any character). */
const CANNOT_HOLD_ONE = /^[\t\n\r\x20-\x5b\x5d-\x7e]*$/;

export function checkInvisibleText(yaml: YamlFile): LabProblem[] {
  if (CANNOT_HOLD_ONE.test(yaml.text)) return [];
  const problems: LabProblem[] = [];
  const path: Array<string | number> = [];
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      const found = firstInvisibleChar(value);
      if (found) problems.push(problem(yaml.refInString([...path], found.offset), 'invisible-char', `${path.join('.')}: ${found.name} is ${INVISIBLE_MESSAGE}`));
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => {
        path.push(i);
        visit(item);
        path.pop();
      });
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        path.push(k);
        const found = firstInvisibleChar(k);
        if (found) problems.push(problem(yaml.refOf([...path], 'key'), 'invisible-char', `key "${k}": ${found.name} is ${INVISIBLE_MESSAGE}`));
        visit(v);
        path.pop();
      }
    }
  };
  visit(yaml.value);
  return problems;
}
